//! Task engine benchmark: the release binary as real worker processes (`bookstore --role
//! worker`, default settings) against a throwaway PostgreSQL cluster, running a no-op program.
//!
//!     cargo bench --bench tasks
//!
//! Settings:
//! - BENCH_TASKS: tasks per throughput run (default 20000), all queued in one statement
//!   before the workers start.
//! - BENCH_SAMPLES: queue-to-start latency samples (default 200).
//! - BENCH_IDLE_SECONDS: how long the idle worker's CPU use is measured (default 60).
//! - BENCH_V3_ONLY=1: only the plain 1-node rate and the engine v3 rates beside it (mixed
//!   priorities, limits, chains), each run twice, alternating: quick to repeat while tuning.
//!
//! Rows:
//! - throughput, 1 / 2 worker nodes: tasks / (last end_time - first start_time), both stamped
//!   by the database; every task must finish on its first attempt.
//! - throughput with a transaction held open: the 1-node run while another session holds a
//!   REPEATABLE READ snapshot (so vacuum can remove nothing) for the whole run; three runs
//!   (one of three once took twice as long as the others), the slowest, median and fastest.
//! - worker peak RSS: VmHWM of the 1-node worker just before it is stopped.
//! - queue-to-start latency when idle: start_time - created_at of one task queued on an idle
//!   node (20 ms apart), p50 and p99.
//! - idle worker CPU: utime + stime of the idle worker over BENCH_IDLE_SECONDS, as a share of
//!   one core.
//! - engine v3 (each on 1 node, as a share of the plain 1-node rate): priorities mixed over
//!   -10..10; 8 programs each limited to max_running 4; chains of 10 (each task after the one
//!   before); the queue-to-start of a priority-10 task queued every 50 ms while the node works
//!   through a backlog of priority -1 ones; the enqueue rate of `run_programs` (one statement)
//!   beside `run_program` per row.

mod support;

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use bookstore::config::Config;
use diesel::{PgConnection, RunQueryDsl, sql_query, sql_types::Double};
use support::{BenchDatabase, Stats, env_number, ms, worker::WorkerProcess};

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = Double)]
    value: f64,
}

fn scalar(conn: &mut PgConnection, sql: &str) -> f64 {
    sql_query(sql).get_result::<Number>(conn).expect(sql).value
}

fn execute(conn: &mut PgConnection, sql: &str) {
    sql_query(sql).execute(conn).expect(sql);
}

/// No tasks, and no dead rows left behind by the previous run.
fn reset(conn: &mut PgConnection) {
    execute(conn, "DELETE FROM tasks");
    execute(conn, "DELETE FROM task_dependencies");
    execute(conn, "VACUUM tasks");
}

/// Queues `tasks` no-ops in one statement, runs them on `nodes` fresh workers until none is
/// left, stops the workers. Returns tasks per second and the first worker's peak RSS in MB.
fn throughput(conn: &mut PgConnection, url: &str, nodes: usize, tasks: u64) -> (f64, f64) {
    execute(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT run_program('noop', NULL) \
               FROM generate_series(1, {tasks})) q"
        ),
    );
    run_queued(conn, url, nodes, tasks, |_| {})
}

/// Runs what is queued on `nodes` fresh workers until nothing is pending, queued or
/// running (calling `meanwhile` every 50 ms), stops them, checks that all `tasks` finished on
/// their first attempt. Returns tasks per second (first start to last end, database stamps)
/// and the first worker's peak RSS in MB.
fn run_queued(
    conn: &mut PgConnection,
    url: &str,
    nodes: usize,
    tasks: u64,
    mut meanwhile: impl FnMut(&mut PgConnection),
) -> (f64, f64) {
    // What autovacuum does soon after a bulk load: without it the planner still sees the
    // statistics of the table the last run emptied (no rows), and picks plans for that.
    execute(conn, "ANALYZE tasks, task_dependencies");
    let mut workers: Vec<_> = (0..nodes).map(|_| WorkerProcess::start(url)).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while scalar(
        conn,
        "SELECT count(*)::float8 AS value FROM tasks \
          WHERE status IN ('pending', 'scheduled', 'running')",
    ) > 0.0
    {
        workers.iter_mut().for_each(WorkerProcess::assert_running);
        assert!(Instant::now() < deadline, "tasks still queued after 600 s");
        meanwhile(conn);
        sleep(Duration::from_millis(50));
    }
    let peak_rss = workers[0].peak_rss_mb();
    workers.into_iter().for_each(WorkerProcess::stop);

    let once = scalar(
        conn,
        "SELECT count(*)::float8 AS value FROM tasks WHERE status = 'finished' AND attempt = 1",
    );
    assert!(
        once >= tasks as f64,
        "every task finished on its first attempt ({once} of {tasks})"
    );
    let rate = scalar(
        conn,
        "SELECT (count(*) / extract(epoch FROM max(end_time) - min(start_time)))::float8 \
           AS value FROM tasks",
    );
    (rate, peak_rss)
}

/// Throughput with priorities spread over -10..=10.
fn throughput_mixed_priorities(conn: &mut PgConnection, url: &str, tasks: u64) -> f64 {
    execute(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT run_program('noop', NULL, priority => (i % 21) - 10) \
               FROM generate_series(1, {tasks}) i) q"
        ),
    );
    run_queued(conn, url, 1, tasks, |_| {}).0
}

/// Throughput of 8 programs, each limited to 4 running at once in the cluster.
fn throughput_limited(conn: &mut PgConnection, url: &str, tasks: u64) -> f64 {
    for k in 1..=8 {
        execute(
            conn,
            &format!(
                "SELECT register_program('noop_limited_{k}', 'noop') \
                  WHERE NOT EXISTS (SELECT 1 FROM programs WHERE name = 'noop_limited_{k}')"
            ),
        );
        execute(
            conn,
            &format!("SELECT set_program_options('noop_limited_{k}', max_running => 4)"),
        );
    }
    execute(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT run_program('noop_limited_' || (i % 8 + 1), NULL) \
               FROM generate_series(1, {tasks}) i) q"
        ),
    );
    run_queued(conn, url, 1, tasks, |_| {}).0
}

/// Throughput of chains of 10, each task waiting for the one before it.
fn throughput_chains(conn: &mut PgConnection, url: &str, tasks: u64) -> f64 {
    execute(
        conn,
        &format!(
            "DO $$ DECLARE previous BIGINT; BEGIN \
               FOR n IN 1 .. {chains} LOOP \
                 previous := run_program('noop', NULL); \
                 FOR k IN 2 .. 10 LOOP \
                   previous := run_program('noop', NULL, after => ARRAY[previous]); \
                 END LOOP; \
               END LOOP; END $$",
            chains = tasks / 10
        ),
    );
    run_queued(conn, url, 1, tasks / 10 * 10, |_| {}).0
}

/// Queue-to-start of high-priority tasks queued (one every 50 ms) while a worker works through
/// a backlog of low-priority ones: how long the local queue and the claim make them wait.
fn priority_delay(conn: &mut PgConnection, url: &str, tasks: u64) -> Stats {
    execute(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT run_program('noop', NULL, priority => -1) \
               FROM generate_series(1, {tasks})) q"
        ),
    );
    let started = Instant::now();
    let mut urgent = 0;
    run_queued(conn, url, 1, tasks, |conn| {
        execute(conn, "SELECT run_program('noop', NULL, priority => 10)");
        urgent += 1;
    });
    let delays: Vec<f64> = {
        #[derive(diesel::QueryableByName)]
        struct Delay {
            #[diesel(sql_type = Double)]
            seconds: f64,
        }
        sql_query(
            "SELECT extract(epoch FROM start_time - created_at)::float8 AS seconds \
               FROM tasks WHERE priority = 10",
        )
        .load::<Delay>(conn)
        .expect("delays")
        .into_iter()
        .map(|d| d.seconds)
        .collect()
    };
    assert_eq!(delays.len(), urgent, "every urgent task ran");
    Stats::new(
        delays.into_iter().map(Duration::from_secs_f64).collect(),
        started.elapsed(),
    )
}

/// Tasks per second queued by `run_programs` (one statement) and by `run_program` one row at
/// a time in one statement, for comparison.
fn enqueue_rates(conn: &mut PgConnection, tasks: u64) -> (f64, f64) {
    let timed = |conn: &mut PgConnection, sql: &str| {
        let start = Instant::now();
        execute(conn, sql);
        let rate = tasks as f64 / start.elapsed().as_secs_f64();
        reset(conn);
        rate
    };
    let bulk = timed(
        conn,
        &format!(
            "SELECT count(*) FROM run_programs('noop', array_fill('{{}}'::jsonb, ARRAY[{tasks}]))"
        ),
    );
    let one_by_one = timed(
        conn,
        &format!(
            "SELECT count(*) FROM (SELECT run_program('noop', '{{}}') \
               FROM generate_series(1, {tasks})) q"
        ),
    );
    (bulk, one_by_one)
}

/// Throughput of one node while another session holds a snapshot for the whole run.
fn throughput_with_open_transaction(
    database: &BenchDatabase,
    conn: &mut PgConnection,
    tasks: u64,
) -> f64 {
    let mut holder = database.connect();
    execute(&mut holder, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    execute(&mut holder, "SELECT count(*) FROM tasks");
    let (rate, _) = throughput(conn, &database.url, 1, tasks);
    execute(&mut holder, "ROLLBACK");
    rate
}

/// Queue-to-start latency of single tasks on the idle `worker`, stamped by the database clock.
fn idle_latency(conn: &mut PgConnection, samples: u64) -> Stats {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let started = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..samples {
        let id = sql_query("SELECT run_program('noop', NULL) AS id")
            .get_result::<Id>(conn)
            .expect("queueing")
            .id;
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
    Stats::new(latencies, started.elapsed())
}

/// CPU used by the idle `worker` over `seconds`, as a percentage of one core.
fn idle_cpu_percent(worker: &WorkerProcess, seconds: u64) -> f64 {
    let (cpu, wall) = (worker.cpu_seconds(), Instant::now());
    sleep(Duration::from_secs(seconds));
    (worker.cpu_seconds() - cpu) / wall.elapsed().as_secs_f64() * 100.0
}

fn main() {
    let tasks = env_number("BENCH_TASKS", 20000);
    let samples = env_number("BENCH_SAMPLES", 200);
    let idle_seconds = env_number("BENCH_IDLE_SECONDS", 60);
    let defaults = Config::default();
    let database = BenchDatabase::start("tasks");
    let mut conn = database.connect();
    if std::env::var_os("BENCH_V3_ONLY").is_some() {
        return v3_only(&mut conn, &database.url, tasks);
    }

    reset(&mut conn);
    let (one, peak_rss) = throughput(&mut conn, &database.url, 1, tasks);
    reset(&mut conn);
    let (two, _) = throughput(&mut conn, &database.url, 2, tasks);
    let mut held_runs: Vec<f64> = (0..3)
        .map(|_| {
            reset(&mut conn);
            throughput_with_open_transaction(&database, &mut conn, tasks)
        })
        .collect();
    held_runs.sort_by(f64::total_cmp);
    let held = held_runs[1];

    reset(&mut conn);
    let mixed = throughput_mixed_priorities(&mut conn, &database.url, tasks);
    reset(&mut conn);
    let limited = throughput_limited(&mut conn, &database.url, tasks);
    reset(&mut conn);
    let chains = throughput_chains(&mut conn, &database.url, tasks);
    reset(&mut conn);
    let delay = priority_delay(&mut conn, &database.url, tasks * 2);
    reset(&mut conn);
    let (bulk, one_by_one) = enqueue_rates(&mut conn, tasks);

    reset(&mut conn);
    let worker = WorkerProcess::start(&database.url);
    sleep(Duration::from_secs(1));
    let latency = idle_latency(&mut conn, samples);
    let idle_cpu = idle_cpu_percent(&worker, idle_seconds);
    worker.stop();

    println!(
        "no-op program, `bookstore --role worker` processes with default settings (task \
         concurrency {}, poll {} s, heartbeat {} s); {tasks} tasks per throughput run, \
         {samples} latency samples, {idle_seconds} s idle",
        defaults.task_concurrency, defaults.task_poll_seconds, defaults.task_heartbeat_seconds
    );
    println!();
    println!("| measurement | result |");
    println!("|---|---:|");
    println!("| throughput, 1 worker node | {one:.0} tasks/s |");
    println!("| throughput, 2 worker nodes | {two:.0} tasks/s |");
    println!("| 2 nodes / 1 node | {:.2} |", two / one);
    println!(
        "| throughput, 1 node, transaction held open elsewhere (median of 3) | {held:.0} tasks/s |"
    );
    println!(
        "| the 3 held-open runs, slowest to fastest | {:.0} / {:.0} / {:.0} tasks/s |",
        held_runs[0], held_runs[1], held_runs[2]
    );
    println!(
        "| held-open transaction / without (median; slowest) | {:.2}; {:.2} |",
        held / one,
        held_runs[0] / one
    );
    println!(
        "| worker peak RSS ({} task run) | {peak_rss:.1} MB |",
        thousands(tasks)
    );
    println!(
        "| queue-to-start latency when idle, p50 ({samples} samples) | {} |",
        ms(latency.percentile(0.5))
    );
    println!(
        "| queue-to-start latency when idle, p99 | {} |",
        ms(latency.percentile(0.99))
    );
    println!("| idle worker CPU over {idle_seconds} s | {idle_cpu:.2} % |");
    println!(
        "| throughput, priorities mixed over -10..10 (/ plain) | {mixed:.0} tasks/s ({:.2}) |",
        mixed / one
    );
    println!(
        "| throughput, 8 programs each max_running 4 (/ plain) | {limited:.0} tasks/s ({:.2}) |",
        limited / one
    );
    println!(
        "| throughput, chains of 10, each after the one before (/ plain) | {chains:.0} tasks/s ({:.2}) |",
        chains / one
    );
    println!(
        "| priority 10 queued behind a priority -1 backlog: queue-to-start p50 / max ({} tasks) | {} / {} |",
        delay.count,
        ms(delay.percentile(0.5)),
        ms(delay.percentile(1.0))
    );
    println!(
        "| enqueue rate, run_programs (one statement) / run_program per row | {bulk:.0} / {one_by_one:.0} tasks/s |"
    );
}

/// The plain rate and the engine v3 rates beside it, twice, alternating.
fn v3_only(conn: &mut PgConnection, url: &str, tasks: u64) {
    println!("| round | plain | mixed priorities | 8 programs x max_running 4 | chains of 10 |");
    println!("|---|---:|---:|---:|---:|");
    for round in 1..=2 {
        reset(conn);
        let (one, _) = throughput(conn, url, 1, tasks);
        reset(conn);
        let mixed = throughput_mixed_priorities(conn, url, tasks);
        reset(conn);
        let limited = throughput_limited(conn, url, tasks);
        reset(conn);
        let chains = throughput_chains(conn, url, tasks);
        println!(
            "| {round} | {one:.0} | {mixed:.0} ({:.2}) | {limited:.0} ({:.2}) | {chains:.0} ({:.2}) |",
            mixed / one,
            limited / one,
            chains / one
        );
    }
}

/// 20000 -> "20,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
