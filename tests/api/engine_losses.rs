//! Faults that used to lose work (issue 21): a node killed with tasks claimed in its local
//! queue or holding a limited program's slots, and (in `process.rs`) the private PostgreSQL
//! killed under running tasks. An attempt that never started, or whose transaction rolled back
//! with its worker, is not counted: every task ends `finished`, and none ran twice.

use std::process::{Child, Command};

use nix::sys::signal::{Signal, kill};

use bookstore::db::schema::{programs, tasks};
use diesel::prelude::*;
use serde_json::Value;

use crate::{
    helpers::{TestApp, spawn_app, spawn_worker, wait_until},
    process::{DataDir, bookstore, start},
};

/// A worker node as its own process, so that it can be killed for real.
fn doomed_worker(app: &TestApp, concurrency: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .args(["--role", "worker"])
        .env("DATABASE_URL", &app.database_url)
        .env("BOOKSTORE_LOG", "error")
        .env("BOOKSTORE_TASK_CONCURRENCY", concurrency.to_string())
        .env("BOOKSTORE_TASK_LEASE_SECONDS", "3")
        .env("BOOKSTORE_TASK_HEARTBEAT_SECONDS", "1")
        .spawn()
        .expect("starting a worker process")
}

fn survivor_settings(config: &mut bookstore::config::Config) {
    config.task_lease_seconds = 3;
    config.task_heartbeat_seconds = 1;
    config.task_retry_base_ms = 20;
}

/// SQL that creates a program counting its own executions (its insert commits only with its
/// outcome, so a row per task means its work happened once) and queues `tasks` of it, each
/// taking `seconds`.
pub(crate) fn counting_program(tasks: u32, seconds: f64) -> String {
    format!(
        "CREATE TABLE executions (n integer NOT NULL); \
         CREATE FUNCTION count_execution(params jsonb) RETURNS text LANGUAGE sql AS $$ \
           INSERT INTO executions VALUES ((params->>'n')::int); \
           SELECT pg_sleep({seconds}); SELECT 'counted' $$; \
         SELECT register_program('count_execution', 'count_execution'); \
         SELECT count(run_program('count_execution', jsonb_build_object('n', n))) \
           FROM generate_series(1, {tasks}) n"
    )
}

/// "tasks counted, distinct tasks counted, most counts of one task".
pub(crate) const EXECUTIONS_COUNTED: &str = "SELECT count(*) || ' ' || count(DISTINCT n) || ' ' || max(c) \
     FROM (SELECT n, count(*) AS c FROM executions GROUP BY n) runs";

/// How many of `program`'s tasks are in one of `statuses`.
async fn tasks_in(app: &TestApp, program: &'static str, statuses: &'static [&'static str]) -> i64 {
    app.db(move |conn| {
        tasks::table
            .inner_join(programs::table)
            .filter(programs::name.eq(program))
            .filter(tasks::status.eq_any(statuses))
            .count()
            .get_result::<i64>(conn)
            .unwrap()
    })
    .await
}

fn sql(app: &TestApp, statement: &str) -> String {
    let (ok, out, err) = app.psql(statement);
    assert!(ok, "{statement}: {err}");
    out
}

/// (status, attempt, max_attempts, attempts history, worker) of one task.
type TaskState = (String, i32, i32, Value, Option<String>);

async fn task_state(app: &TestApp, id: i64) -> TaskState {
    app.db(move |conn| {
        tasks::table
            .filter(tasks::id.eq(id))
            .select((
                tasks::status,
                tasks::attempt,
                tasks::max_attempts,
                tasks::attempts,
                tasks::worker_id,
            ))
            .first(conn)
            .unwrap()
    })
    .await
}

#[actix_web::test]
async fn a_killed_nodes_task_that_never_started_is_not_charged_an_attempt() {
    // Arrange: a long program and, queued behind it, a `noop` task (one attempt allowed, like
    // every SQL program by default); then a node with one thread claims both: the long one
    // runs, the noop waits in the node's local queue.
    let app = spawn_app().await;
    let long: i64 = sql(
        &app,
        r#"SELECT run_program('demo_long', '{"seconds": 60, "steps": 60}')"#,
    )
    .parse()
    .unwrap();
    let queued: i64 = sql(&app, "SELECT run_program('noop', NULL)")
        .parse()
        .unwrap();
    let mut doomed = doomed_worker(&app, 1);
    let claimed_and_waiting = |id: i64| {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select((tasks::status, tasks::waiting))
                .first::<(String, bool)>(conn)
                .unwrap()
        })
    };
    // Claiming marks both waiting; a heartbeat since the long one started has said which
    // one started.
    wait_until(
        60,
        "a heartbeat with the long task running, the noop waiting",
        || async {
            claimed_and_waiting(long).await == ("running".to_owned(), false)
                && claimed_and_waiting(queued).await == ("running".to_owned(), true)
        },
    )
    .await;

    // Act: the node dies; another one takes over once the lease runs out.
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let (stop, survivor) = spawn_worker(&app.database_url, survivor_settings);

    // Assert: the task that never started runs and finishes; its lost attempt is in its
    // history, marked as not counted.
    wait_until(60, "the queued task to finish on the survivor", || async {
        task_state(&app, queued).await.0 == "finished"
    })
    .await;
    let (_, attempt, max_attempts, history, _) = task_state(&app, queued).await;
    assert_eq!((attempt, max_attempts), (2, 2), "{history}");
    let lost = history[0]["error"].as_str().unwrap();
    assert!(
        lost.starts_with("worker lost") && lost.contains("before the attempt started; not counted"),
        "{lost}"
    );
    assert_eq!(history[0]["refunded"], Value::Bool(true));

    // The long program had started outside any transaction: that attempt counts.
    wait_until(60, "the long task to be rescued", || async {
        task_state(&app, long)
            .await
            .3
            .as_array()
            .is_some_and(|h| !h.is_empty())
    })
    .await;
    let (_, _, max_attempts, history, _) = task_state(&app, long).await;
    assert_eq!(max_attempts, 3, "no attempt given back: {history}");
    assert_eq!(history[0]["refunded"], Value::Bool(false), "{history}");
    sql(&app, &format!("SELECT cancel_task({long})"));
    stop.stop();
    survivor.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_node_killed_in_a_run_of_sql_tasks_loses_none_and_runs_none_twice() {
    // Arrange: a SQL program that counts its own executions (its insert commits only with
    // its outcome), 2,000 tasks of it, and a node working through them.
    let app = spawn_app().await;
    sql(&app, &counting_program(2000, 0.002));
    let program_tasks = || {
        tasks::table
            .inner_join(programs::table)
            .filter(programs::name.eq("count_execution"))
    };
    let mut doomed = doomed_worker(&app, 2);
    wait_until(60, "the node to be well into the run", || async {
        app.db(move |conn| {
            program_tasks()
                .filter(tasks::status.eq("finished"))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await
            >= 200
    })
    .await;

    // Act: kill -9 with tasks claimed, running and waiting; a second node finishes the run.
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let (stop, survivor) = spawn_worker(&app.database_url, survivor_settings);

    // Assert: every task finished; each counted itself exactly once.
    wait_until(180, "every task to end", || async {
        app.db(move |conn| {
            program_tasks()
                .filter(tasks::status.ne_all(["finished", "error", "cancelled"]))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await
            == 0
    })
    .await;
    let not_finished = sql(
        &app,
        "SELECT count(*) FROM tasks t JOIN programs p ON p.id = t.program_id \
          WHERE p.name = 'count_execution' AND t.status <> 'finished'",
    );
    assert_eq!(not_finished, "0", "every task ends finished");
    let counted = sql(&app, EXECUTIONS_COUNTED);
    assert_eq!(counted, "2000 2000 1", "each task's work happened once");
    let given_back = sql(
        &app,
        "SELECT count(*) FROM tasks t JOIN programs p ON p.id = t.program_id \
          WHERE p.name = 'count_execution' AND t.attempts @> '[{\"refunded\": true}]'",
    );
    assert!(
        given_back.parse::<i64>().unwrap() > 0,
        "the killed node held tasks; they were given their attempt back"
    );
    stop.stop();
    survivor.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_node_killed_holding_a_limited_programs_slots_loses_none_and_never_exceeds_the_limit() {
    // Arrange: a SQL program limited to 2 running at once in the cluster, that records each
    // execution with when it ran (the record commits only with its outcome), 300 tasks of
    // it, and a node working through them.
    let app = spawn_app().await;
    sql(
        &app,
        "CREATE TABLE executions (n integer NOT NULL, started timestamptz, ended timestamptz); \
         CREATE FUNCTION limited_execution(params jsonb) RETURNS text LANGUAGE sql AS $$ \
           SELECT pg_sleep(0.005); \
           INSERT INTO executions VALUES ((params->>'n')::int, now(), clock_timestamp()); \
           SELECT 'counted' $$; \
         SELECT register_program('limited_execution', 'limited_execution'); \
         SELECT set_program_options('limited_execution', max_running => 2); \
         SELECT count(run_program('limited_execution', jsonb_build_object('n', n))) \
           FROM generate_series(1, 300) n",
    );
    let ended = |statuses: &'static [&'static str]| tasks_in(&app, "limited_execution", statuses);
    let mut doomed = doomed_worker(&app, 4);
    wait_until(60, "the node to be well into the run", || async {
        ended(&["finished"]).await >= 50
    })
    .await;

    // Act: kill -9 while it holds the program's slots; a second node finishes the run (once
    // the dead node's lease runs out and its slots are rescued).
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let (stop, survivor) = spawn_worker(&app.database_url, survivor_settings);

    // Assert: every task finished, each counted itself once, and no more than two ever ran
    // at the same time: not across the kill either.
    wait_until(180, "every task to end", || async {
        ended(&["finished", "error", "cancelled"]).await == 300
    })
    .await;
    assert_eq!(ended(&["finished"]).await, 300, "every task ends finished");
    let counted = sql(&app, EXECUTIONS_COUNTED);
    assert_eq!(counted, "300 300 1", "each task's work happened once");
    // The most running at one instant: at some execution's start (counting those that
    // started by then and had not ended). Counting every execution that overlaps one's whole
    // span instead would add up the two that ran one after the other beside it.
    let most_at_once = sql(
        &app,
        "SELECT max((SELECT count(*) FROM executions f \
                      WHERE f.started <= e.started AND f.ended > e.started)) FROM executions e",
    );
    assert!(
        most_at_once.parse::<i64>().unwrap() <= 2,
        "{most_at_once} ran at once under max_running 2"
    );
    stop.stop();
    survivor.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_node_killed_in_a_run_of_workflows_loses_none_runs_none_twice_and_keeps_their_order() {
    // Arrange: a SQL program that records each execution of a step of a chain with when it
    // ran (the record commits only with its outcome), 100 chains of 10 steps (each waits for
    // the one before), and a node working through them: the statement that records a step's
    // success also claims the next step for the node.
    let app = spawn_app().await;
    sql(
        &app,
        "CREATE TABLE executions (chain integer, step integer, n integer, ran timestamptz);          CREATE FUNCTION chained_execution(params jsonb) RETURNS text LANGUAGE sql AS $$            SELECT pg_sleep(0.002);            INSERT INTO executions VALUES ((params->>'chain')::int, (params->>'step')::int,                                           (params->>'chain')::int * 10 + (params->>'step')::int,                                           clock_timestamp());            SELECT 'counted' $$;          SELECT register_program('chained_execution', 'chained_execution');          DO $$ DECLARE previous bigint; BEGIN            FOR c IN 1 .. 100 LOOP              previous := run_program('chained_execution', jsonb_build_object('chain', c, 'step', 1));              FOR s IN 2 .. 10 LOOP                previous := run_program('chained_execution', jsonb_build_object('chain', c, 'step', s),                                        after => ARRAY[previous]);              END LOOP;            END LOOP;          END $$",
    );
    let ended = |statuses: &'static [&'static str]| tasks_in(&app, "chained_execution", statuses);
    let mut doomed = doomed_worker(&app, 2);
    wait_until(60, "the node to be well into the chains", || async {
        ended(&["finished"]).await >= 200
    })
    .await;

    // Act: kill -9 with next steps claimed by its finishes, running and waiting; a second
    // node finishes the run.
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let (stop, survivor) = spawn_worker(&app.database_url, survivor_settings);

    // Assert: every step finished (a SQL program has one attempt: a lost one would end in
    // error), each ran once, and each after the step before it.
    wait_until(180, "every step to end", || async {
        ended(&["finished", "error", "cancelled"]).await == 1000
    })
    .await;
    assert_eq!(ended(&["finished"]).await, 1000, "every step ends finished");
    let counted = sql(&app, EXECUTIONS_COUNTED);
    assert_eq!(counted, "1000 1000 1", "each step's work happened once");
    let out_of_order = sql(
        &app,
        "SELECT count(*) FROM executions e JOIN executions next \
            ON next.chain = e.chain AND next.step = e.step + 1 \
         WHERE next.ran <= e.ran",
    );
    assert_eq!(out_of_order, "0", "no step ran before the one it waits for");
    stop.stop();
    survivor.await.unwrap().unwrap();
}

/// `bookstore psql` on the app's private cluster; `None` while the server is away.
fn private_psql(data: &DataDir, statement: &str) -> Option<String> {
    let output = bookstore(data)
        .args([
            "psql",
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            statement,
        ])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[tokio::test]
async fn a_killed_postgres_under_running_sql_tasks_loses_none_and_runs_none_twice() {
    // Arrange: the app with its own cluster, and a SQL program that counts its own executions
    // running on its threads.
    let data = DataDir::new();
    let app = start(&data);
    private_psql(&data, &counting_program(12, 1.0)).expect("setting up the program");
    let count_of = |condition: &str| {
        private_psql(
            &data,
            &format!(
                "SELECT count(*) FROM tasks t JOIN programs p ON p.id = t.program_id \
                  WHERE p.name = 'count_execution' AND {condition}"
            ),
        )
    };
    wait_until(60, "tasks to run", || async {
        count_of("t.status = 'running' AND NOT t.waiting").is_some_and(|n| n != "0")
    })
    .await;

    // Act: the server dies under them (kill -9, as the OOM killer would); the app starts it
    // again by itself.
    let postmaster = data.postmaster_pid().expect("a running server");
    kill(postmaster, Signal::SIGKILL).unwrap();

    // Assert: every task ends finished, each counted once, and the attempts that lost their
    // connection say so in their history.
    wait_until(180, "every task to end after the restart", || async {
        count_of("t.status IN ('scheduled', 'running')").is_some_and(|n| n == "0")
    })
    .await;
    assert_eq!(count_of("t.status <> 'finished'").unwrap(), "0");
    let counted = private_psql(&data, EXECUTIONS_COUNTED).unwrap();
    assert_eq!(counted, "12 12 1", "each task's work happened once");
    let lost = count_of(
        "EXISTS (SELECT 1 FROM jsonb_array_elements(t.attempts) e \
                  WHERE e->>'error' LIKE 'the database connection was lost%not counted')",
    )
    .unwrap();
    assert_ne!(
        lost, "0",
        "the running attempts lost their connection and were not counted"
    );
    assert!(app.terminate().success());
}
