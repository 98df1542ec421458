//! The task engine over a year of kept tasks (issue 23): one worker node (the release binary,
//! `--role worker`, default settings) draining a queue on an empty table and beside ten
//! million ended tasks, its queue-to-start latency on both, and a sustained run with pruning.
//!
//!     cargo bench --bench engine_scale
//!
//! Settings:
//! - BENCH_SCALE_ENDED (default 10000000): ended tasks kept, one every 3 seconds up to an
//!   hour ago (`benches/support/kept_tasks.sql`, as `cargo bench --bench scale` makes them).
//! - BENCH_SCALE_QUEUED (default 1000000): noop tasks queued before the worker starts
//!   (`benches/support/queued_tasks.sql`); the rate is theirs, first start to last end.
//! - BENCH_SAMPLES (default 200): queue-to-start samples on the idle worker, 20 ms apart.
//! - BENCH_SUSTAINED_MINUTES (default 10): a producer keeps about 100,000 tasks queued (ten
//!   bulk `run_programs` of 10,000 ahead of the worker), the worker drains them, and once a minute the tasks of the
//!   run that ended over a minute ago are deleted (prune_tasks' statement with a minute for
//!   its days, so the table stays at its kept size); each minute's row gives the rate, the
//!   dead rows, and the sizes of the queue's index and of the table.
//!
//! The empty table and the kept one are two databases of one cluster, drained in turns (two
//! rounds each) so that both see the same machine. Every drain starts from the same state:
//! the queue inserted, vacuumed and analyzed (as autovacuum leaves rows long before a queue
//! this size is drained); what it added is deleted after it.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use diesel::{
    Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query, sql_types::BigInt,
};
use support::{
    BenchDatabase, Stats, env_number, ms,
    task_rows::{idle_latency, keep_ended_tasks},
    worker::WorkerProcess,
};

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::Double)]
    value: f64,
}

fn scalar(conn: &mut PgConnection, sql: &str) -> f64 {
    sql_query(sql)
        .get_result::<Number>(conn)
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .value
}

fn execute(conn: &mut PgConnection, sql: &str) {
    sql_query(sql)
        .execute(conn)
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

fn highest_id(conn: &mut PgConnection) -> i64 {
    scalar(
        conn,
        "SELECT coalesce(max(id), 0)::float8 AS value FROM tasks",
    ) as i64
}

/// Queues `queued` noops, vacuums, drains them with one worker; returns tasks per second
/// (database stamps, first start to last end) and the worker's peak RSS in MB.
fn drain(conn: &mut PgConnection, url: &str, queued: u64) -> (f64, f64) {
    let base = highest_id(conn);
    sql_query(include_str!("support/queued_tasks.sql"))
        .bind::<BigInt, _>(queued as i64)
        .execute(conn)
        .expect("queueing");
    execute(conn, "VACUUM (ANALYZE) tasks");
    let mut worker = WorkerProcess::start(url);
    let deadline = Instant::now() + Duration::from_secs(3600);
    // Through the queue's partial indexes: a count over the kept rows would cost the
    // worker a share of the two cores every time it is asked.
    let left = "SELECT (EXISTS (SELECT 1 FROM tasks WHERE status = 'scheduled') \
                   OR EXISTS (SELECT 1 FROM tasks WHERE status = 'running'))::int::float8 AS value";
    while scalar(conn, left) > 0.0 {
        worker.assert_running();
        assert!(Instant::now() < deadline, "still queued after an hour");
        sleep(Duration::from_millis(200));
    }
    let rss = worker.peak_rss_mb();
    worker.stop();
    let once = scalar(
        conn,
        &format!(
            "SELECT count(*)::float8 AS value FROM tasks \
              WHERE id > {base} AND status = 'finished' AND attempt = 1"
        ),
    );
    assert_eq!(
        once as u64, queued,
        "every task finished on its first attempt"
    );
    let rate = scalar(
        conn,
        &format!(
            "SELECT (count(*) / extract(epoch FROM max(end_time) - min(start_time)))::float8 \
               AS value FROM tasks WHERE id > {base}"
        ),
    );
    (rate, rss)
}

/// Queue-to-start on an idle worker of its own.
fn idle_worker_latency(conn: &mut PgConnection, url: &str, samples: u64) -> Stats {
    let worker = WorkerProcess::start(url);
    sleep(Duration::from_secs(1));
    let latency = idle_latency(conn, samples);
    worker.stop();
    latency
}

/// The sustained run: a producer keeps the queue topped up, one worker drains it, the run's
/// ended tasks are pruned each minute. Prints a row per minute.
fn sustained(database: &BenchDatabase, minutes: u64) {
    let mut conn = database.connect();
    let base = highest_id(&mut conn);
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (stop, mut conn) = (stop.clone(), database.connect());
        thread::spawn(move || {
            // Ten batches ahead of the worker: a batch is queued when the first task of the
            // oldest one started (a lookup by id; counting the queue would scan the table).
            let mut ahead = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                let started = match ahead.front() {
                    None => true,
                    Some(first) => {
                        scalar(
                            &mut conn,
                            &format!(
                                "SELECT (status <> 'scheduled')::int::float8 AS value \
                               FROM tasks WHERE id = {first}"
                            ),
                        ) > 0.0
                    }
                };
                if ahead.len() < 10 || started {
                    if ahead.len() >= 10 {
                        ahead.pop_front();
                    }
                    let first = scalar(
                        &mut conn,
                        "SELECT min(id)::float8 AS value FROM run_programs('noop', \
                           array_fill('{}'::jsonb, ARRAY[10000])) AS id",
                    ) as i64;
                    ahead.push_back(first);
                } else {
                    sleep(Duration::from_millis(20));
                }
            }
        })
    };
    let mut worker = WorkerProcess::start(&database.url);
    println!();
    println!(
        "| minute | tasks/s | dead rows (live / archive) | queue index | tasks_live (heap + indexes) | tasks (both) | pruned |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let ended = format!(
        "SELECT count(*)::float8 AS value FROM tasks \
          WHERE id > {base} AND status = 'finished'"
    );
    let mut pruned_total = 0.0;
    let mut ended_before = 0.0;
    let mut rates = Vec::new();
    for minute in 1..=minutes {
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(60) {
            worker.assert_running();
            sleep(Duration::from_millis(500));
        }
        let ended_now = scalar(&mut conn, &ended) + pruned_total;
        let rate = (ended_now - ended_before) / began.elapsed().as_secs_f64();
        ended_before = ended_now;
        rates.push(rate);
        // `tasks` is partitioned: its sizes are its partitions' (the parent has none).
        let dead_in = |conn: &mut PgConnection, partition: &str| {
            scalar(
                conn,
                &format!(
                    "SELECT coalesce(sum(n_dead_tup), 0)::float8 AS value \
                       FROM pg_stat_user_tables WHERE relname = '{partition}'"
                ),
            )
        };
        let dead_live = dead_in(&mut conn, "tasks_live");
        let dead_archive = dead_in(&mut conn, "tasks_archive");
        let queue_index = scalar(
            &mut conn,
            "SELECT sum(pg_relation_size(relid))::float8 AS value \
               FROM pg_partition_tree('tasks_queue_idx')",
        );
        let live = scalar(
            &mut conn,
            "SELECT pg_total_relation_size('tasks_live')::float8 AS value",
        );
        let table = scalar(
            &mut conn,
            "SELECT sum(pg_total_relation_size(relid))::float8 AS value \
               FROM pg_partition_tree('tasks') WHERE isleaf",
        );
        // prune_tasks' statement, with a minute for its days.
        let pruned = scalar(
            &mut conn,
            &format!(
                "WITH gone AS (DELETE FROM tasks WHERE id > {base} AND archived \
                   AND status IN ('finished', 'error', 'cancelled') \
                   AND end_time < now() - interval '1 minute' RETURNING 1) \
                 SELECT count(*)::float8 AS value FROM gone"
            ),
        );
        pruned_total += pruned;
        println!(
            "| {minute} | {rate:.0} | {dead_live:.0} / {dead_archive:.0} | {:.1} MiB | {:.0} MiB | {:.0} MiB | {pruned:.0} |",
            queue_index / 1048576.0,
            live / 1048576.0,
            table / 1048576.0
        );
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer");
    let rss = worker.peak_rss_mb();
    worker.stop();
    let first = rates.first().copied().unwrap_or_default();
    let last = rates.last().copied().unwrap_or_default();
    println!();
    println!(
        "sustained: {:.0} tasks through the queue; last minute / first: {:.2}; worker peak RSS \
         {rss:.1} MB",
        ended_before,
        last / first.max(1.0)
    );
}

/// A second database in the bench's cluster, migrated, for the empty table.
fn empty_database(database: &BenchDatabase) -> String {
    database
        .cluster
        .ensure_database("empty")
        .expect("creating the empty database");
    let url = database.cluster.conninfo("empty");
    let mut conn = PgConnection::establish(&url).expect("connecting");
    bookstore::startup::prepare(&mut conn, bookstore::config::SeedDemo::Off).expect("migrating");
    url
}

/// Drains, then deletes what the drain added (and vacuums): each round starts alike.
fn drain_and_clear(conn: &mut PgConnection, url: &str, queued: u64) -> (f64, f64) {
    let base = highest_id(conn);
    let measured = drain(conn, url, queued);
    execute(conn, &format!("DELETE FROM tasks WHERE id > {base}"));
    execute(conn, "VACUUM tasks");
    measured
}

fn main() {
    let ended = env_number("BENCH_SCALE_ENDED", 10_000_000);
    let queued = env_number("BENCH_SCALE_QUEUED", 1_000_000);
    let samples = env_number("BENCH_SAMPLES", 200);
    let minutes = env_number("BENCH_SUSTAINED_MINUTES", 10);
    let database = BenchDatabase::start("engine-scale");
    let empty_url = empty_database(&database);
    let (mut kept, mut empty) = (
        database.connect(),
        PgConnection::establish(&empty_url).expect("connecting"),
    );
    // Only the bench's tasks run: no schedule fires (prune_tasks' would delete most of the
    // kept tasks, which reach back a year).
    for conn in [&mut kept, &mut empty] {
        execute(
            conn,
            "UPDATE programs SET schedule = NULL, next_run_at = NULL",
        );
    }
    keep_ended_tasks(&mut kept, ended);

    // The machine is shared: the two tables take turns, twice, and the better round of each
    // is reported (both rounds are printed).
    let mut rounds = Vec::new();
    for round in 1..=2 {
        let (empty_rate, empty_rss) = drain_and_clear(&mut empty, &empty_url, queued);
        let (kept_rate, kept_rss) = drain_and_clear(&mut kept, &database.url, queued);
        eprintln!("  round {round}: empty {empty_rate:.0}, kept {kept_rate:.0} tasks/s");
        rounds.push((empty_rate, kept_rate, empty_rss.max(kept_rss)));
    }
    let empty_latency = idle_worker_latency(&mut empty, &empty_url, samples);
    let kept_latency = idle_worker_latency(&mut kept, &database.url, samples);
    let per_million = scalar(
        &mut kept,
        "SELECT ((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('tasks')) \
                 / 1048576.0 / greatest(count(*) / 1e6, 1e-6))::float8 AS value FROM tasks",
    );

    println!("one worker node, default settings; {queued} noops drained; {ended} ended tasks kept");
    println!();
    println!("| measurement | empty table | {ended} kept | kept / empty |");
    println!("|---|---:|---:|---:|");
    for (round, (empty_rate, kept_rate, _)) in rounds.iter().enumerate() {
        println!(
            "| no-op throughput, round {} | {empty_rate:.0} tasks/s | {kept_rate:.0} tasks/s | {:.2} |",
            round + 1,
            kept_rate / empty_rate
        );
    }
    let best = |pick: fn(&(f64, f64, f64)) -> f64| rounds.iter().map(pick).fold(0.0, f64::max);
    let (empty_best, kept_best) = (best(|r| r.0), best(|r| r.1));
    println!(
        "| no-op throughput, better round of each | {empty_best:.0} tasks/s | {kept_best:.0} tasks/s | {:.2} |",
        kept_best / empty_best
    );
    let (e50, k50) = (empty_latency.percentile(0.5), kept_latency.percentile(0.5));
    println!(
        "| queue-to-start p50 ({samples} samples) | {} | {} | {:.2} |",
        ms(e50),
        ms(k50),
        k50.as_secs_f64() / e50.as_secs_f64()
    );
    println!(
        "| queue-to-start p99 | {} | {} | |",
        ms(empty_latency.percentile(0.99)),
        ms(kept_latency.percentile(0.99))
    );
    println!(
        "| worker peak RSS (most of any drain) | {:.1} MB | | |",
        best(|r| r.2)
    );
    println!("| disk per million tasks (heap + indexes) | | {per_million:.0} MiB | |");

    if minutes > 0 {
        sustained(&database, minutes);
    }
}
