//! Replicas benchmark (issue 24): `/books` and a search through the whole app with 0, 1 and 2
//! streaming replicas (real standbys, `pg_basebackup -R` of the bench cluster), and the
//! primary's CPU time per request (its postmaster and every backend, from /proc).
//!
//!     cargo bench --bench replicas
//!
//! Settings: BENCH_SECONDS (per measurement, default 10), BENCH_CONCURRENCY (default 16).
//! On one machine the replicas share its cores with the primary and the app: the throughput
//! gain is bounded by them; the primary's CPU share per request is what replicas take away.

mod support;

use std::{path::Path, time::Duration};

use bookstore::{db::cluster::ClusterOptions, domain::catalog::bulk::insert_new_entries};
use diesel::RunQueryDsl;
use support::{BenchDatabase, env_number, http_load, ms, start_app_with};

/// CPU seconds used so far by the server whose data folder is `pgdata`: its postmaster and
/// all of its children (backends, WAL sender, ...).
fn server_cpu_seconds(pgdata: &Path) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Some(postmaster) = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
    else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command's closing parenthesis: state, ppid, ... utime (14th
        // field overall, 12th here), stime.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let pid: u32 = head
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid: u32 = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
        if pid == postmaster || ppid == postmaster {
            let used: f64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
                .sum();
            total += used / ticks;
        }
    }
    total
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 10);
    let concurrency = env_number("BENCH_CONCURRENCY", 16) as usize;
    let duration = Duration::from_secs(seconds);
    let database = BenchDatabase::start("replicas");
    let mut conn = database.connect();
    insert_new_entries(&mut conn, &support::catalog::goodbooks_entries()).expect("importing");
    diesel::sql_query("VACUUM (ANALYZE)")
        .execute(&mut conn)
        .expect("vacuum");
    let standbys: Vec<_> = (1..=2)
        .map(|n| {
            let root = format!("/tmp/bookstore-bench-standby{n}-{}", std::process::id());
            let _ = std::fs::remove_dir_all(&root);
            let standby = database
                .cluster
                .start_standby(&ClusterOptions {
                    root: root.clone().into(),
                    bin_dir: None,
                    durable: false,
                    adopt_orphan: false,
                })
                .expect("starting a standby");
            (standby, root)
        })
        .collect();
    let replica_urls: Vec<String> = standbys.iter().map(|(s, _)| s.conninfo("bench")).collect();
    let primary_pgdata = database.cluster.root().join("pg");
    println!("replicas: {concurrency} concurrent clients; {seconds} s per measurement");
    println!();
    println!("| replicas | scenario | req/s | p50 | p99 | primary CPU ms / request |");
    println!("|---:|---|---:|---:|---:|---:|");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for count in 0..=2 {
        let replicas = &replica_urls[..count];
        let (address, _pool) = runtime.block_on(start_app_with(
            &database.url,
            concurrency as u32,
            |config| config.database_replica_urls = (count > 0).then(|| replicas.join(",")),
        ));
        for (name, path) in [("browse", "/books"), ("search", "/books?q=harry")] {
            let url = format!("{address}{path}");
            // Warm-up: caches, connections, and the replica checker's first round.
            runtime.block_on(http_load(&url, concurrency, Duration::from_secs(3)));
            let cpu_before = server_cpu_seconds(&primary_pgdata);
            let stats = runtime.block_on(http_load(&url, concurrency, duration));
            let cpu = server_cpu_seconds(&primary_pgdata) - cpu_before;
            println!(
                "| {count} | {name} | {:.0} | {} | {} | {:.3} |",
                stats.per_second(),
                ms(stats.percentile(0.50)),
                ms(stats.percentile(0.99)),
                cpu * 1000.0 / stats.count.max(1) as f64,
            );
        }
    }
    drop(runtime);
    for (mut standby, root) in standbys {
        let _ = standby.stop();
        let _ = std::fs::remove_dir_all(root);
    }
}
