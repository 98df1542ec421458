//! Task engine benchmark: throughput of a no-op program with 1 and 2 worker nodes, and the
//! queue-to-start latency of a single task on an idle node.
//!
//!     cargo bench --bench tasks
//!
//! Settings: BENCH_TASKS (per throughput run, default 5000), BENCH_SAMPLES (latency samples,
//! default 200), BENCH_TASK_CONCURRENCY (tasks at once per node, default 8).

mod support;

use std::time::{Duration, Instant};

use bookstore::{
    config::{Config, Role},
    db,
    startup::{Application, StopHandle},
};
use diesel::{RunQueryDsl, sql_query, sql_types::Double};
use support::{BenchDatabase, env_number, ms};

fn start_worker(
    url: &str,
    concurrency: u32,
) -> (StopHandle, tokio::task::JoinHandle<std::io::Result<()>>) {
    let config = Config {
        database_url: Some(url.to_owned()),
        role: Role::Worker,
        pool_size: concurrency + 4,
        task_concurrency: concurrency,
        log: "warn".into(),
        ..Config::default()
    };
    let pool = db::build_pool(url, config.pool_size).expect("pool");
    let node = Application::build(&config, pool).expect("worker");
    let stop = node.stop_handle();
    (stop, tokio::spawn(node.run_until_stopped()))
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = Double)]
    value: f64,
}

fn scalar(conn: &mut diesel::PgConnection, sql: &str) -> f64 {
    sql_query(sql).get_result::<Number>(conn).expect(sql).value
}

async fn throughput(database: &BenchDatabase, nodes: usize, tasks: u64, concurrency: u32) -> f64 {
    let workers: Vec<_> = (0..nodes)
        .map(|_| start_worker(&database.url, concurrency))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = database.connect();
    sql_query("DELETE FROM tasks").execute(&mut conn).unwrap();
    let started = Instant::now();
    sql_query(format!(
        "SELECT run_program('noop', NULL) FROM generate_series(1, {tasks})"
    ))
    .execute(&mut conn)
    .unwrap();
    loop {
        let left = scalar(
            &mut conn,
            "SELECT count(*)::float8 AS value FROM tasks WHERE status <> 'finished'",
        );
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let twice = scalar(
        &mut conn,
        "SELECT count(*)::float8 AS value FROM tasks WHERE attempt <> 1",
    );
    assert_eq!(twice, 0.0, "every task ran exactly once");
    for (stop, handle) in workers {
        stop.stop();
        handle.await.unwrap().unwrap();
    }
    tasks as f64 / elapsed.as_secs_f64()
}

async fn idle_latency(database: &BenchDatabase, samples: u64) -> (Duration, Duration) {
    let (stop, handle) = start_worker(&database.url, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = database.connect();
    let mut latencies = Vec::new();
    for _ in 0..samples {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let id = sql_query("SELECT run_program('noop', NULL) AS id")
            .get_result::<Id>(&mut conn)
            .unwrap()
            .id;
        // Queue-to-start, both ends stamped by the database clock.
        let latency = loop {
            let value = scalar(
                &mut conn,
                &format!(
                    "SELECT coalesce(extract(epoch FROM start_time - created_at)::float8, -1) AS value \
                       FROM tasks WHERE id = {id}"
                ),
            );
            if value >= 0.0 {
                break value;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        latencies.push(Duration::from_secs_f64(latency));
        // Idle again before the next sample.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.stop();
    handle.await.unwrap().unwrap();
    let stats = support::Stats::new(latencies, Duration::from_secs(1));
    (stats.percentile(0.5), stats.percentile(0.99))
}

fn main() {
    let tasks = env_number("BENCH_TASKS", 5000);
    let samples = env_number("BENCH_SAMPLES", 200);
    let concurrency = env_number("BENCH_TASK_CONCURRENCY", 8) as u32;
    let database = BenchDatabase::start("tasks");
    actix_rt::System::new().block_on(async {
        println!("no-op program, {tasks} tasks per run, {concurrency} at once per node");
        println!();
        println!("| measurement | result |");
        println!("|---|---:|");
        for nodes in [1, 2] {
            let rate = throughput(&database, nodes, tasks, concurrency).await;
            println!(
                "| throughput, {nodes} worker node{} | {rate:.0} tasks/s |",
                if nodes == 1 { "" } else { "s" }
            );
        }
        let (p50, p99) = idle_latency(&database, samples).await;
        println!(
            "| queue-to-start latency when idle, p50 ({samples} samples) | {} |",
            ms(p50)
        );
        println!("| queue-to-start latency when idle, p99 | {} |", ms(p99));
    });
}
