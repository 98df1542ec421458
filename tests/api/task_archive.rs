//! The archive: a task that ended moves from the engine's partition (`tasks_live`) to
//! `tasks_archive` a moment later, and nobody can tell from the outside: its page, the API
//! and `get_task_result` read as before, staff can retry it, its unique key is let go when
//! its time is up. And staff acting on tasks while the archive moves them never see an error.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use bookstore::{db::schema::tasks, ids::TaskId, tasks::archive::archive_ended};
use diesel::{
    connection::SimpleConnection,
    prelude::*,
    sql_query,
    sql_types::{BigInt, Text},
};

use crate::helpers::{TestApp, spawn_app_with, wait_until};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");

async fn staff_app() -> TestApp {
    let app = spawn_app_with(|config| {
        config.role = bookstore::config::Role::All;
        config.task_retry_base_ms = 20;
    })
    .await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    app
}

fn psql_ok(app: &TestApp, sql: &str) -> String {
    let (ok, out, error) = app.psql(sql);
    assert!(ok, "{sql}: {error}");
    out
}

#[derive(QueryableByName)]
struct Place {
    #[diesel(sql_type = Text)]
    partition: String,
}

/// Which partition holds the task.
async fn partition_of(app: &TestApp, id: TaskId) -> String {
    app.db(move |conn| {
        sql_query("SELECT tableoid::regclass::text AS partition FROM tasks WHERE id = $1")
            .bind::<BigInt, _>(id.0)
            .get_result::<Place>(conn)
            .unwrap()
            .partition
    })
    .await
}

async fn wait_for(app: &TestApp, id: TaskId, status: &'static str, partition: &'static str) {
    wait_until(
        90,
        &format!("task {id} {status} in {partition}"),
        || async {
            app.task_status(id).await == status && partition_of(app, id).await == partition
        },
    )
    .await;
}

#[actix_web::test]
async fn an_ended_task_moves_to_the_archive_and_reads_retries_and_runs_as_before() {
    // Arrange: a SQL program that fails until a gate opens, run to its end (an error).
    let app = staff_app().await;
    psql_ok(&app, "CREATE TABLE gate (open boolean NOT NULL)");
    psql_ok(&app, "INSERT INTO gate VALUES (false)");
    psql_ok(
        &app,
        "CREATE FUNCTION through_gate(params jsonb) RETURNS text LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF NOT (SELECT open FROM gate) THEN RAISE EXCEPTION 'the gate is closed'; END IF; \
           RETURN 'through the gate'; \
         END $$",
    );
    psql_ok(
        &app,
        "SELECT register_program('through_gate', 'through_gate')",
    );
    let id = TaskId(
        psql_ok(&app, "SELECT run_program('through_gate', '{}')")
            .parse()
            .unwrap(),
    );

    // Act: it fails, and a moment later the archive has it.
    wait_for(&app, id, "error", "tasks_archive").await;

    // Assert: the page, the API and psql read it as any ended task.
    let page = app.page(&format!("/admin/tasks/{id}")).await;
    assert!(
        page.contains("the gate is closed"),
        "the task page shows why it failed"
    );
    let result = psql_ok(&app, &format!("SELECT result FROM get_task_result({id})"));
    assert!(
        result.contains("the gate is closed"),
        "get_task_result reads it: {result}"
    );
    let token = app.create_api_token("archive reader").await;
    let api: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/tasks/{id}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["status"], "error", "{api}");

    // Act: the gate opens, and staff retry the task from the archive.
    psql_ok(&app, "UPDATE gate SET open = true");
    assert_eq!(
        psql_ok(&app, &format!("SELECT retry_task({id})")),
        "scheduled"
    );

    // Assert: it is live again, runs, ends and is archived once more, its history kept.
    wait_for(&app, id, "finished", "tasks_archive").await;
    let result = psql_ok(&app, &format!("SELECT result FROM get_task_result({id})"));
    assert_eq!(result, "through the gate");
    let attempts: serde_json::Value = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::attempts)
                .first(conn)
                .unwrap()
        })
        .await;
    let attempt: i32 = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::attempt)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        attempts.as_array().map(Vec::len),
        Some(attempt as usize - 1),
        "each failed attempt is in the history ({attempts})"
    );
}

#[actix_web::test]
async fn a_unique_key_is_held_until_its_time_is_over_then_let_go_by_the_archive() {
    // Arrange: a keyed task held for an hour after its end, run to its end.
    let app = staff_app().await;
    let run = |app: &TestApp| {
        psql_ok(
            app,
            "SELECT run_program('noop', '{}', unique_key => 'nightly', \
                                unique_for => interval '1 hour')",
        )
    };
    let first = TaskId(run(&app).parse().unwrap());
    wait_until(90, "the keyed task to finish", || async {
        app.task_status(first).await == "finished"
    })
    .await;

    // Act: the archive looks at the tasks holding keys while the hour runs.
    app.db(|conn| archive_ended(conn, 100, Duration::ZERO, true).unwrap())
        .await;

    // Assert: the task stays live, holding its key: the same key gives the same task.
    assert_eq!(partition_of(&app, first).await, "tasks_live");
    assert_eq!(run(&app), first.to_string(), "the key is still held");

    // Act: the hour is over (its end moved back), and the archive looks again.
    app.db(move |conn| {
        sql_query("UPDATE tasks SET end_time = end_time - interval '2 hours' WHERE id = $1")
            .bind::<BigInt, _>(first.0)
            .execute(conn)
            .unwrap()
    })
    .await;
    wait_until(90, "the archive to let the key go", || async {
        app.db(|conn| archive_ended(conn, 100, Duration::ZERO, true).unwrap())
            .await;
        partition_of(&app, first).await == "tasks_archive"
    })
    .await;

    // Assert: the archived task holds no key; the key queues a new task.
    let released: bool = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(first))
                .select(tasks::unique_released)
                .first(conn)
                .unwrap()
        })
        .await;
    assert!(released, "the archived task no longer holds the key");
    assert_ne!(run(&app), first.to_string(), "a new task for the same key");
}

#[actix_web::test]
async fn staff_retrying_and_cancelling_while_the_archive_moves_tasks_never_see_an_error() {
    // Arrange: 300 failed tasks, live (nothing moves them yet: they ended just now and the
    // archive waits two seconds).
    let app = staff_app().await;
    let ids: Vec<i64> = app
        .db(|conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            sql_query(
                "INSERT INTO tasks (program_id, parameters, status, start_time, end_time, \
                                    worker_id, attempt, result) \
                 SELECT p.id, '{}', 'error', now(), now(), 'gone', 1, 'failed' \
                   FROM programs p, generate_series(1, 300) \
                  WHERE p.name = 'noop' \
                 RETURNING id",
            )
            .load::<Id>(conn)
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect()
        })
        .await;
    assert_eq!(ids.len(), 300);

    // Act: one connection archives them as fast as it can (no settling time), while another
    // cancels and retries each of them, and a third deletes every tenth.
    let url = app.database_url.clone();
    let ids = Arc::new(ids);
    let done = Arc::new(AtomicBool::new(false));
    let archiver = {
        let (url, done) = (url.clone(), done.clone());
        thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            while !done.load(Ordering::Relaxed) {
                archive_ended(&mut conn, 7, Duration::ZERO, false)
                    .expect("the archive never fails either");
            }
        })
    };
    let staff = {
        let (url, ids) = (url.clone(), ids.clone());
        thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            let mut answers = Vec::new();
            for id in ids.iter().rev() {
                #[derive(QueryableByName)]
                struct Answer {
                    #[diesel(sql_type = Text)]
                    answer: String,
                }
                let sql = if id % 2 == 0 {
                    format!("SELECT cancel_task({id}) AS answer")
                } else if id % 10 == 1 {
                    format!("SELECT delete_task({id})::text AS answer")
                } else {
                    format!("SELECT retry_task({id}) AS answer")
                };
                answers.push(
                    sql_query(&sql)
                        .get_result::<Answer>(&mut conn)
                        .unwrap_or_else(|err| panic!("{sql}: {err}"))
                        .answer,
                );
            }
            answers
        })
    };
    let answers = staff.join().expect("no staff action failed");
    done.store(true, Ordering::Relaxed);
    archiver.join().expect("the archive never failed");

    // Assert: every action answered as it would on a live task.
    for (id, answer) in ids.iter().rev().zip(&answers) {
        let expected = if id % 2 == 0 {
            "error" // cancelling an ended task leaves it as it is
        } else if id % 10 == 1 {
            "true"
        } else {
            "scheduled"
        };
        assert_eq!(answer, expected, "task {id}");
    }
}

#[actix_web::test]
async fn a_retry_waiting_on_a_task_the_archive_is_moving_answers_once_the_move_commits() {
    // Arrange: a failed task whose end is stamped an hour ahead, so that the app's own archive
    // (which waits 5 s after an end) leaves it to this test's.
    let app = staff_app().await;
    let id: i64 = psql_ok(
        &app,
        "INSERT INTO tasks (program_id, parameters, status, start_time, end_time, worker_id, \
                            attempt, result) \
         SELECT id, '{}', 'error', now(), now() + interval '1 hour', 'gone', 1, 'failed' \
           FROM programs WHERE name = 'noop' RETURNING id",
    )
    .lines()
    .next()
    .and_then(|line| line.parse().ok())
    .expect("the new task's id");
    // The archive moves it in a transaction that stays open.
    let mut archive = PgConnection::establish(&app.database_url).unwrap();
    archive.batch_execute("BEGIN").unwrap();
    #[derive(QueryableByName)]
    struct Moved {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        moved: i32,
    }
    let move_it = "SELECT task_archive(100, interval '-2 hours') AS moved";
    while sql_query(move_it)
        .get_result::<Moved>(&mut archive)
        .unwrap()
        .moved
        == 0
    {
        // The app's archive held the turn for a moment.
        archive.batch_execute("ROLLBACK; BEGIN").unwrap();
    }

    // Act: staff retry it; the retry waits for the moving transaction's lock.
    let url = app.database_url.clone();
    let staff = thread::spawn(move || {
        #[derive(QueryableByName)]
        struct Answer {
            #[diesel(sql_type = Text)]
            answer: String,
        }
        let mut conn = PgConnection::establish(&url).unwrap();
        sql_query(format!("SELECT retry_task({id}) AS answer"))
            .get_result::<Answer>(&mut conn)
            .map(|row| row.answer)
    });
    let mut watch = PgConnection::establish(&app.database_url).unwrap();
    wait_until(60, "the retry to wait for the archive's lock", || {
        let waiting = sql_query(
            "SELECT count(*)::bigint AS id FROM pg_stat_activity \
              WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT retry_task(%'",
        )
        .get_result::<Count>(&mut watch)
        .unwrap()
        .id > 0;
        async move { waiting }
    })
    .await;
    archive.batch_execute("COMMIT").unwrap();

    // Assert: the retry met the moved row, looked again, and retried it from the archive.
    let answer = staff.join().unwrap();
    assert_eq!(
        answer.as_deref().map_err(ToString::to_string),
        Ok("scheduled")
    );
    wait_until(90, "the retried task to finish", || async {
        app.task_status(TaskId(id)).await == "finished"
    })
    .await;
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    id: i64,
}
