//! The task engine over a year of kept tasks (issue 23): one worker node (the release binary,
//! `--role worker`, default settings) draining a queue on an empty table and then beside ten
//! million ended tasks, its queue-to-start latency in both, and a sustained run with pruning.
//!
//!     cargo bench --bench engine_scale
//!
//! Settings:
//! - BENCH_SCALE_ENDED (default 10000000): ended tasks kept, one every 3 seconds up to an
//!   hour ago (`benches/support/kept_tasks.sql`, as `cargo bench --bench scale` makes them).
//! - BENCH_SCALE_QUEUED (default 1000000): noop tasks queued before the worker starts
//!   (`benches/support/queued_tasks.sql`); the rate is theirs, first start to last end.
//! - BENCH_SAMPLES (default 200): queue-to-start samples on the idle worker, 20 ms apart.
//! - BENCH_SUSTAINED_MINUTES (default 10): a producer keeps about 100,000 tasks queued (bulk
//!   `run_programs` of 10,000), the worker drains them, and once a minute the tasks of the
//!   run that ended over a minute ago are deleted (prune_tasks' statement with a minute for
//!   its days, so the table stays at its kept size); each minute's row gives the rate, the
//!   dead rows, and the sizes of the queue's index and of the table.
//!
//! Both drains start from the same state: rows vacuumed and analyzed (as autovacuum leaves
//! them long before a queue this size is drained).

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use diesel::{PgConnection, QueryableByName, RunQueryDsl, sql_query, sql_types::BigInt};
use support::{BenchDatabase, Stats, env_number, ms, worker::WorkerProcess};

const CHUNK: u64 = 1_000_000;

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

/// Ended tasks in chunks of a million (a progress line each).
fn keep_ended(conn: &mut PgConnection, ended: u64) {
    let began = Instant::now();
    let mut done = 0;
    while done < ended {
        let last = (done + CHUNK).min(ended);
        sql_query(include_str!("support/kept_tasks.sql"))
            .bind::<BigInt, _>(done as i64 + 1)
            .bind::<BigInt, _>(last as i64)
            .bind::<BigInt, _>(ended as i64)
            .execute(conn)
            .expect("generating ended tasks");
        done = last;
        eprintln!(
            "  {done} ended tasks ({:.0} s)",
            began.elapsed().as_secs_f64()
        );
    }
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

/// Queue-to-start of one task at a time on an idle worker.
fn idle_latency(conn: &mut PgConnection, url: &str, samples: u64) -> Stats {
    let worker = WorkerProcess::start(url);
    sleep(Duration::from_secs(1));
    let started = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..samples {
        let id = scalar(conn, "SELECT run_program('noop', NULL)::float8 AS value") as i64;
        let query = format!(
            "SELECT coalesce(extract(epoch FROM start_time - created_at)::float8, -1) AS value \
               FROM tasks WHERE id = {id}"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let latency = loop {
            let value = scalar(conn, &query);
            if value >= 0.0 {
                break value;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not started after 60 s"
            );
            sleep(Duration::from_micros(500));
        };
        latencies.push(Duration::from_secs_f64(latency));
        sleep(Duration::from_millis(20));
    }
    worker.stop();
    Stats::new(latencies, started.elapsed())
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
            let queued = "SELECT count(*)::float8 AS value FROM tasks WHERE status = 'scheduled'";
            while !stop.load(Ordering::Relaxed) {
                if scalar(&mut conn, queued) < 100_000.0 {
                    execute(
                        &mut conn,
                        "SELECT count(*) FROM run_programs('noop', \
                           array_fill('{}'::jsonb, ARRAY[10000]))",
                    );
                } else {
                    sleep(Duration::from_millis(50));
                }
            }
        })
    };
    let mut worker = WorkerProcess::start(&database.url);
    println!();
    println!(
        "| minute | tasks/s | dead rows in tasks | queue index | tasks (heap + indexes) | pruned |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
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
        let dead = scalar(
            &mut conn,
            "SELECT n_dead_tup::float8 AS value FROM pg_stat_user_tables WHERE relname = 'tasks'",
        );
        let queue_index = scalar(
            &mut conn,
            "SELECT pg_relation_size('tasks_queue_idx')::float8 AS value",
        );
        let table = scalar(
            &mut conn,
            "SELECT pg_total_relation_size('tasks')::float8 AS value",
        );
        // prune_tasks' statement, with a minute for its days.
        let pruned = scalar(
            &mut conn,
            &format!(
                "WITH gone AS (DELETE FROM tasks WHERE id > {base} \
                   AND status IN ('finished', 'error', 'cancelled') \
                   AND end_time < now() - interval '1 minute' RETURNING 1) \
                 SELECT count(*)::float8 AS value FROM gone"
            ),
        );
        pruned_total += pruned;
        println!(
            "| {minute} | {rate:.0} | {dead:.0} | {:.1} MiB | {:.0} MiB | {pruned:.0} |",
            queue_index / 1048576.0,
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

fn main() {
    let ended = env_number("BENCH_SCALE_ENDED", 10_000_000);
    let queued = env_number("BENCH_SCALE_QUEUED", 1_000_000);
    let samples = env_number("BENCH_SAMPLES", 200);
    let minutes = env_number("BENCH_SUSTAINED_MINUTES", 10);
    let database = BenchDatabase::start("engine-scale");
    let mut conn = database.connect();
    // Only the bench's tasks run: no schedule fires (prune_tasks' would delete most of the
    // kept tasks, which reach back a year).
    execute(
        &mut conn,
        "UPDATE programs SET schedule = NULL, next_run_at = NULL",
    );

    let (empty_rate, empty_rss) = drain(&mut conn, &database.url, queued);
    let empty_latency = idle_latency(&mut conn, &database.url, samples);
    execute(&mut conn, "DELETE FROM tasks");
    execute(&mut conn, "VACUUM tasks");

    keep_ended(&mut conn, ended);
    let (kept_rate, kept_rss) = drain(&mut conn, &database.url, queued);
    let kept_latency = idle_latency(&mut conn, &database.url, samples);
    let per_million = scalar(
        &mut conn,
        "SELECT (pg_total_relation_size('tasks') / 1048576.0 \
                 / greatest(count(*) / 1e6, 1e-6))::float8 AS value FROM tasks",
    );

    println!("one worker node, default settings; {queued} noops drained; {ended} ended tasks kept");
    println!();
    println!("| measurement | empty table | {ended} kept | kept / empty |");
    println!("|---|---:|---:|---:|");
    println!(
        "| no-op throughput | {empty_rate:.0} tasks/s | {kept_rate:.0} tasks/s | {:.2} |",
        kept_rate / empty_rate
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
    println!("| worker peak RSS | {empty_rss:.1} MB | {kept_rss:.1} MB | |");
    println!("| disk per million tasks (heap + indexes) | | {per_million:.0} MiB | |");

    if minutes > 0 {
        sustained(&database, minutes);
    }
}
