//! Engine v3 end to end: the engine runs what psql queued with the new options, verbatim as a
//! DBA types them. A chain runs in order; a program limited to one at a time never overlaps
//! itself across two nodes; a batch calls back once with two nodes finishing its members; a
//! SQL program snoozes without spending attempts and reads its upstream's results.

use bookstore::{config::Role, db::schema::tasks, ids::TaskId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::helpers::{TestApp, spawn_app_with, spawn_worker, wait_until};

async fn engine_app(role: Role) -> TestApp {
    spawn_app_with(|config| {
        config.role = role;
        config.task_retry_base_ms = 20;
        config.task_lease_seconds = 5;
    })
    .await
}

fn psql_ok(app: &TestApp, sql: &str) -> String {
    let (ok, out, error) = app.psql(sql);
    assert!(ok, "{sql}: {error}");
    out
}

fn psql_id(app: &TestApp, sql: &str) -> TaskId {
    TaskId(psql_ok(app, sql).parse().expect("an id"))
}

/// (status, start, end) of a task.
type Run = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

async fn run_of(app: &TestApp, id: TaskId) -> Run {
    app.db(move |conn| {
        tasks::table
            .filter(tasks::id.eq(id))
            .select((tasks::status, tasks::start_time, tasks::end_time))
            .first(conn)
            .unwrap()
    })
    .await
}

async fn wait_for_status(app: &TestApp, id: TaskId, wanted: &'static str) {
    wait_until(90, &format!("task {id} to be {wanted}"), || async {
        run_of(app, id).await.0 == wanted
    })
    .await;
}

#[actix_web::test]
async fn a_chain_of_three_runs_in_order_and_each_step_reads_the_one_before() {
    let app = engine_app(Role::All).await;
    psql_ok(
        &app,
        "CREATE FUNCTION step(params jsonb) RETURNS text LANGUAGE sql AS $$ \
           SELECT coalesce((SELECT string_agg(result, ',') FROM task_upstream()), 'start') \
                  || '>' || (params->>'n') $$",
    );
    psql_ok(&app, "SELECT register_program('step', 'step')");
    let a = psql_id(&app, r#"SELECT run_program('step', '{"n": "a"}')"#);
    let b = psql_id(
        &app,
        &format!(r#"SELECT run_program('step', '{{"n": "b"}}', after => ARRAY[{a}])"#),
    );
    let c = psql_id(
        &app,
        &format!(r#"SELECT run_program('step', '{{"n": "c"}}', after => ARRAY[{b}])"#),
    );
    wait_for_status(&app, c, "finished").await;

    let (ra, rb, rc) = (
        run_of(&app, a).await,
        run_of(&app, b).await,
        run_of(&app, c).await,
    );
    assert!(
        rb.1 >= ra.2 && rc.1 >= rb.2,
        "each started after the one before ended"
    );
    let result = psql_ok(&app, &format!("SELECT result FROM get_task_result({c})"));
    assert_eq!(result, "start>a>b>c");
}

#[actix_web::test]
async fn a_program_limited_to_one_never_overlaps_itself_across_two_nodes() {
    let app = engine_app(Role::Web).await;
    psql_ok(
        &app,
        "SELECT register_program('one_at_a_time', 'demo_long')",
    );
    let options = psql_ok(
        &app,
        "SELECT set_program_options('one_at_a_time', max_running => 1)",
    );
    assert!(options.contains(r#""max_running": 1"#), "{options}");
    let ids: Vec<TaskId> = psql_ok(
        &app,
        "SELECT * FROM run_programs('one_at_a_time', \
         array_fill('{\"seconds\": 1, \"steps\": 2}'::jsonb, ARRAY[6]))",
    )
    .lines()
    .map(|id| TaskId(id.parse().unwrap()))
    .collect();
    assert_eq!(ids.len(), 6);
    let (stop_a, a) = spawn_worker(&app.database_url, |c| c.task_concurrency = 4);
    let (stop_b, b) = spawn_worker(&app.database_url, |c| c.task_concurrency = 4);
    for &id in &ids {
        wait_for_status(&app, id, "finished").await;
    }
    let mut runs = Vec::new();
    for &id in &ids {
        let (_, start, end) = run_of(&app, id).await;
        runs.push((start.unwrap(), end.unwrap()));
    }
    runs.sort();
    for pair in runs.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "one started before the other ended: {pair:?}"
        );
    }
    stop_a.stop();
    stop_b.stop();
    let _ = (a.await, b.await);
}

#[actix_web::test]
async fn a_batch_run_by_two_nodes_calls_back_exactly_once_with_its_counts() {
    let app = engine_app(Role::Web).await;
    psql_ok(
        &app,
        "CREATE FUNCTION batch_summary(params jsonb) RETURNS text LANGUAGE sql AS $$ \
           SELECT format('%s of %s finished, %s failed', finished, size, failed) \
             FROM task_batch() $$",
    );
    psql_ok(
        &app,
        "SELECT register_program('batch_summary', 'batch_summary')",
    );
    let batch = psql_ok(
        &app,
        "SELECT run_batch('noop', array_fill('{}'::jsonb, ARRAY[300]), \
                          callback => 'batch_summary')",
    );
    let (stop_a, a) = spawn_worker(&app.database_url, |c| c.task_concurrency = 4);
    let (stop_b, b) = spawn_worker(&app.database_url, |c| c.task_concurrency = 4);
    let callback_sql = format!("SELECT callback_task_id FROM task_batches WHERE id = {batch}");
    wait_until(90, "the batch's callback", || async {
        !psql_ok(&app, &callback_sql).is_empty()
    })
    .await;
    let callback = psql_id(&app, &callback_sql);
    wait_for_status(&app, callback, "finished").await;
    let result = psql_ok(
        &app,
        &format!("SELECT result FROM get_task_result({callback})"),
    );
    assert_eq!(result, "300 of 300 finished, 0 failed");
    let callbacks = psql_ok(
        &app,
        "SELECT count(*) FROM tasks t JOIN programs p ON p.id = t.program_id \
          WHERE p.name = 'batch_summary'",
    );
    assert_eq!(callbacks, "1");
    stop_a.stop();
    stop_b.stop();
    let _ = (a.await, b.await);
}

#[actix_web::test]
async fn a_sql_program_snoozes_twice_without_spending_an_attempt() {
    let app = engine_app(Role::All).await;
    psql_ok(
        &app,
        "CREATE TABLE knocks (at timestamptz NOT NULL DEFAULT now())",
    );
    // Commits a knock only on the run that does not snooze (a snooze rolls its work back).
    psql_ok(
        &app,
        "CREATE FUNCTION patient(params jsonb) RETURNS text LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF (SELECT count(*) FROM jsonb_array_elements((SELECT attempts FROM tasks \
                 WHERE id = task_current_id())) e WHERE e ? 'snoozed') < 2 THEN \
             INSERT INTO knocks DEFAULT VALUES; \
             PERFORM task_snooze_sql(interval '50 milliseconds'); \
           END IF; \
           INSERT INTO knocks DEFAULT VALUES; \
           RETURN 'came in'; \
         END $$",
    );
    psql_ok(&app, "SELECT register_program('patient', 'patient')");
    let id = psql_id(&app, "SELECT run_program('patient', NULL)");
    wait_for_status(&app, id, "finished").await;
    let history = psql_ok(
        &app,
        &format!(
            "SELECT attempt, max_attempts, jsonb_array_length(attempts) FROM tasks WHERE id = {id}"
        ),
    );
    // SQL programs get one attempt: two snoozes did not spend it.
    assert_eq!(history, "1|1|2");
    assert_eq!(psql_ok(&app, "SELECT count(*) FROM knocks"), "1");
}

#[actix_web::test]
async fn priorities_unique_keys_and_refusals_work_verbatim_in_psql() {
    let app = engine_app(Role::Web).await;
    psql_ok(&app, "SELECT set_program_options('noop', priority => 5)");
    let low = psql_id(&app, "SELECT run_program('noop', NULL, priority => -10)");
    let default = psql_id(&app, "SELECT run_program('noop', NULL)");
    let first = psql_id(
        &app,
        "SELECT run_program('noop', NULL, unique_key => 'order-42')",
    );
    let again = psql_id(
        &app,
        "SELECT run_program('noop', NULL, unique_key => 'order-42')",
    );
    assert_eq!(first, again);
    let priorities = psql_ok(
        &app,
        &format!("SELECT priority FROM tasks WHERE id IN ({low}, {default}) ORDER BY id"),
    );
    assert_eq!(
        priorities, "-10\n5",
        "the program's default applies when none is given"
    );

    let (ok, _, error) = app.psql("SELECT run_program('noop', NULL, priority => 1000)");
    assert!(!ok && error.contains("invalid priority 1000"), "{error}");
    let (ok, _, error) = app.psql("SELECT run_program('noop', NULL, after => ARRAY[987654])");
    assert!(
        !ok && error.contains("cannot wait for task 987654"),
        "{error}"
    );
    let (ok, _, error) = app.psql("SELECT set_program_options('noop', max_running => -1)");
    assert!(!ok && error.contains("invalid max_running -1"), "{error}");
}

#[actix_web::test]
async fn an_urgent_task_queued_behind_a_full_local_queue_starts_before_the_low_ones() {
    let app = spawn_app_with(|config| {
        config.role = Role::All;
        config.task_concurrency = 1;
    })
    .await;
    // Warm up, so the node knows no-ops are quick and holds many of them at a time.
    let warm: Vec<TaskId> = psql_ok(
        &app,
        "SELECT * FROM run_programs('noop', array_fill('{}'::jsonb, ARRAY[50]))",
    )
    .lines()
    .map(|id| TaskId(id.parse().unwrap()))
    .collect();
    wait_for_status(&app, *warm.last().unwrap(), "finished").await;

    // The one thread is busy for a while; a backlog of low-priority tasks fills the node's
    // local queue behind it (and the rest stays queued in the database).
    let busy = psql_id(
        &app,
        r#"SELECT run_program('demo_long', '{"seconds": 3, "steps": 3}')"#,
    );
    wait_for_status(&app, busy, "running").await;
    psql_ok(
        &app,
        "SELECT count(*) FROM run_programs('noop', array_fill('{}'::jsonb, ARRAY[1500]), \
                                           priority => -1)",
    );
    let claimed_low = "SELECT count(*) FROM tasks WHERE priority = -1 AND status <> 'scheduled'";
    let mut last = String::new();
    let mut steady = 0;
    wait_until(
        30,
        "the node to stop claiming (its local queue full)",
        || {
            let now = psql_ok(&app, claimed_low);
            steady = if now == last && now != "0" {
                steady + 1
            } else {
                0
            };
            last = now;
            async move { steady >= 3 }
        },
    )
    .await;
    assert_eq!(
        run_of(&app, busy).await.0,
        "running",
        "still busy: the queue is full"
    );

    let urgent = psql_id(&app, "SELECT run_program('noop', NULL, priority => 10)");
    wait_for_status(&app, urgent, "finished").await;
    let started_before = psql_ok(
        &app,
        &format!(
            "SELECT count(*) FROM tasks WHERE priority = -1 AND start_time < \
               (SELECT start_time FROM tasks WHERE id = {urgent})"
        ),
    );
    assert_eq!(
        started_before, "0",
        "no low task started before the urgent one"
    );
}
