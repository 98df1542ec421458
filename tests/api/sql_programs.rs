//! Programs written in SQL: a DBA creates a function `name(params jsonb)`, then types our
//! specification's four lines in psql. Also: a transactional program's work commits exactly
//! once, even when its first attempt loses its lease midway.

use bookstore::ids::TaskId;
use bookstore::{config::Role, db::schema::tasks, tasks::ops};
use diesel::{prelude::*, sql_query};

use crate::helpers::{TestApp, spawn_app_with, wait_until};

async fn engine_app() -> TestApp {
    spawn_app_with(|config| {
        config.role = Role::All;
        config.task_retry_base_ms = 20;
        config.task_lease_seconds = 3;
    })
    .await
}

async fn wait_until_ended(app: &TestApp, id: TaskId) -> String {
    let status = || {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::status)
                .first::<String>(conn)
                .unwrap()
        })
    };
    wait_until(60, &format!("task {id} to end"), || async {
        matches!(status().await.as_str(), "finished" | "error" | "cancelled")
    })
    .await;
    status().await
}

#[actix_web::test]
async fn a_dba_registers_and_runs_a_sql_function_with_the_four_lines() {
    let app = engine_app().await;
    let (ok, _, error) = app.psql(
        "CREATE FUNCTION new_function(params jsonb) RETURNS text LANGUAGE sql \
         AS $$ SELECT 'Hello from SQL, ' || coalesce(params->>'name', 'world') || '!' $$;",
    );
    assert!(ok, "{error}");

    // The four lines, verbatim.
    let (ok, id, error) = app.psql("SELECT register_program('new_program', 'new_function');");
    assert!(ok && id.parse::<i64>().is_ok(), "{error}");
    let (ok, programs, _) = app.psql("SELECT * FROM get_programs();");
    assert!(
        ok && programs.contains("new_program|new_function"),
        "{programs}"
    );
    let (ok, task, error) = app.psql(r#"SELECT run_program('new_program', '{"name": "psql"}');"#);
    assert!(ok, "{error}");
    let task: TaskId = task.parse().unwrap();
    assert_eq!(wait_until_ended(&app, task).await, "finished");
    let (ok, result, _) = app.psql(&format!("SELECT * FROM get_task_result({task});"));
    assert!(
        ok && result.contains("finished") && result.contains("Hello from SQL, psql!"),
        "{result}"
    );

    // Only functions with that signature are accepted.
    let (ok, _, error) = app.psql("SELECT register_program('other', 'no_such_function');");
    assert!(
        !ok && error.contains("unknown function no_such_function"),
        "{error}"
    );
    let (ok, _, error) = app.psql("SELECT register_program('pretty', 'jsonb_pretty');");
    assert!(
        !ok && error.contains("unknown function jsonb_pretty"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_sql_function_returning_rows_gives_a_table_and_its_errors_end_the_attempt() {
    let app = engine_app().await;
    let (ok, _, error) = app.psql(
        "CREATE FUNCTION books_by_year(params jsonb) RETURNS TABLE (title text, year int) \
           LANGUAGE sql AS $$ SELECT title, year FROM books \
            WHERE year = (params->>'year')::int ORDER BY title LIMIT 3 $$; \
         CREATE FUNCTION broken(params jsonb) RETURNS text LANGUAGE plpgsql \
           AS $$ BEGIN RAISE EXCEPTION 'the shelf is empty'; END $$; \
         CREATE FUNCTION slow(params jsonb) RETURNS text LANGUAGE sql \
           AS $$ SELECT pg_sleep(30)::text $$; \
         SELECT register_program('books_of_a_year', 'books_by_year'); \
         SELECT register_program('broken', 'broken'); \
         SELECT register_program('slow', 'slow'); \
         UPDATE program_functions SET timeout_seconds = 1 WHERE name = 'slow';",
    );
    assert!(ok, "{error}");

    let run = |program: &'static str, params: serde_json::Value| {
        app.db(move |conn| ops::run_program(conn, program, Some(&params)).unwrap())
    };
    let table = run("books_of_a_year", serde_json::json!({"year": 1997})).await;
    let broken = run("broken", serde_json::json!({})).await;
    let slow = run("slow", serde_json::json!({})).await;

    assert_eq!(wait_until_ended(&app, table).await, "finished");
    let (text, columns): (Option<String>, Option<serde_json::Value>) = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(table))
                .select((tasks::result, tasks::result_table))
                .first(conn)
                .unwrap()
        })
        .await;
    let columns = columns.expect("a table result");
    assert_eq!(columns["columns"], serde_json::json!(["title", "year"]));
    assert_eq!(columns["rows"].as_array().unwrap().len(), 3, "{columns}");
    assert!(columns["rows"][0][1] == "1997", "{columns}");
    assert!(text.unwrap().contains("(3 rows)"));

    assert_eq!(wait_until_ended(&app, broken).await, "error");
    let result = app
        .db(move |conn| ops::get_task_result(conn, broken).unwrap().result.unwrap())
        .await;
    assert!(
        result.contains("the shelf is empty"),
        "PostgreSQL's message: {result}"
    );

    assert_eq!(wait_until_ended(&app, slow).await, "error");
    let result = app
        .db(move |conn| ops::get_task_result(conn, slow).unwrap().result.unwrap())
        .await;
    assert!(result.contains("statement timeout"), "{result}");
}

#[actix_web::test]
async fn a_transactional_program_whose_attempt_is_rescued_commits_its_work_once() {
    let app = engine_app().await;
    // A program with an effect: it records a row, then works a while.
    let (ok, _, error) = app.psql(
        "CREATE TABLE effects (task_run text); \
         CREATE FUNCTION leave_a_mark(params jsonb) RETURNS text LANGUAGE plpgsql AS $$ \
           BEGIN INSERT INTO effects VALUES (clock_timestamp()::text); \
                 PERFORM pg_sleep(2); RETURN 'marked'; END $$; \
         SELECT register_program('leave_a_mark', 'leave_a_mark');",
    );
    assert!(ok, "{error}");
    let id = app
        .db(|conn| ops::run_program(conn, "leave_a_mark", None).unwrap())
        .await;

    // While the first attempt works, another node "rescues" the task (as it would after a
    // lost lease): the first attempt can no longer record anything, so its mark is undone.
    wait_until(30, "the first attempt to be at work", || {
        app.db(|conn| {
            #[derive(QueryableByName)]
            struct Busy {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                busy: i64,
            }
            sql_query(
                "SELECT count(*) AS busy FROM pg_stat_activity \
                  WHERE query LIKE '%task_run_sql_function%' AND state = 'active' \
                    AND pid <> pg_backend_pid()",
            )
            .get_result::<Busy>(conn)
            .unwrap()
            .busy
                == 1
        })
    })
    .await;
    app.db(move |conn| {
        sql_query("UPDATE tasks SET status = 'scheduled', run_after = now() WHERE id = $1")
            .bind::<diesel::sql_types::BigInt, _>(id)
            .execute(conn)
            .unwrap()
    })
    .await;

    assert_eq!(wait_until_ended(&app, id).await, "finished");
    let (attempt, marks): (i32, i64) = app
        .db(move |conn| {
            #[derive(QueryableByName)]
            struct Marks {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                marks: i64,
            }
            let attempt = tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::attempt)
                .first(conn)
                .unwrap();
            let marks = sql_query("SELECT count(*) AS marks FROM effects")
                .get_result::<Marks>(conn)
                .unwrap()
                .marks;
            (attempt, marks)
        })
        .await;
    assert_eq!(attempt, 2, "the program ran twice");
    assert_eq!(marks, 1, "but its work committed once");
}
