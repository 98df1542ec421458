//! The task engine: the four operations (from Rust and verbatim from psql), the engine's
//! guarantees (exactly once, retries, panics, timeouts, cancel, crash recovery, graceful
//! shutdown, schedules) and the catalog import, against a real database.

use bookstore::ids::{ProgramId, TaskId};
use std::time::Duration;

use bookstore::{
    config::{Config, Role},
    db::schema::{authors, book_authors, books, programs, tasks},
    tasks::{
        ops::{self, OperationError},
        status::TaskStatus,
    },
};
use diesel::{prelude::*, sql_query, sql_types::BigInt};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, spawn_worker, staff_acting, wait_until};

/// Fast engine settings for tests.
fn fast(config: &mut Config) {
    config.task_retry_base_ms = 20;
    config.task_lease_seconds = 3;
    config.task_grace_seconds = 5;
}

async fn engine_app() -> TestApp {
    spawn_app_with(|config| {
        fast(config);
        config.role = Role::All;
    })
    .await
}

async fn run(app: &TestApp, program: &'static str, params: serde_json::Value) -> TaskId {
    app.db(move |conn| ops::run_program(conn, program, Some(&params)).unwrap())
        .await
}

async fn status(app: &TestApp, id: TaskId) -> String {
    app.task_status(id).await
}

async fn wait_for_status(app: &TestApp, id: TaskId, wanted: &'static str, seconds: u64) {
    wait_until(seconds, &format!("task {id} to be {wanted}"), || async {
        status(app, id).await == wanted
    })
    .await;
}

/// Waits for a task to end, as long as it keeps making progress: on a busy machine a long
/// task is slow, and only a task stuck for a minute is a failure.
async fn wait_while_it_progresses(app: &TestApp, id: TaskId) {
    let mut last = (String::new(), None);
    let mut since = std::time::Instant::now();
    loop {
        let now: (String, Option<i64>) = app
            .db(move |conn| {
                tasks::table
                    .filter(tasks::id.eq(id))
                    .select((tasks::status, tasks::progress_done))
                    .first(conn)
                    .unwrap()
            })
            .await;
        if !matches!(now.0.as_str(), "scheduled" | "running") {
            return;
        }
        if now != last {
            (last, since) = (now, std::time::Instant::now());
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "task {id} made no progress for a minute ({last:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn task_count(app: &TestApp) -> i64 {
    app.db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await
}

fn refusal(err: OperationError) -> (String, Vec<String>) {
    match err {
        OperationError::Refused { code, fields, .. } => {
            (code.to_string(), fields.into_keys().collect())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[actix_web::test]
async fn the_four_operations_succeed_and_refuse_clearly() {
    let app = spawn_app_with(|_| {}).await; // no engine: tasks stay queued
    let before = task_count(&app).await;

    let programs = app.db(|conn| ops::get_programs(conn).unwrap()).await;
    let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
    for builtin in [
        "hello_world",
        "purge_expired_sessions",
        "prune_tasks",
        "sales_report",
        "low_stock",
        "import_catalog",
        "demo_long",
        "flaky",
    ] {
        assert!(names.contains(&builtin), "{builtin} is registered");
    }

    let id = app
        .db(|conn| ops::run_program(conn, "hello_world", None).unwrap())
        .await;
    let result = app
        .db(move |conn| ops::get_task_result(conn, id).unwrap())
        .await;
    assert_eq!(
        (result.program.as_str(), result.status.as_str()),
        ("hello_world", "scheduled")
    );
    assert_eq!(
        result.parameters,
        Some(json!({"name": "world"})),
        "defaults filled in"
    );

    let unknown = app
        .db(|conn| ops::run_program(conn, "no_such_program", None).unwrap_err())
        .await;
    assert_eq!(refusal(unknown).0, "program_not_found");
    let bad = app
        .db(|conn| {
            ops::run_program(
                conn,
                "sales_report",
                Some(&json!({"from": "2026-13-01", "per": "shelf", "extra": 1})),
            )
            .unwrap_err()
        })
        .await;
    let message = bad.to_string();
    assert_eq!(
        refusal(bad),
        (
            "invalid_parameters".into(),
            vec!["extra".into(), "from".into(), "per".into(), "to".into()]
        )
    );
    assert!(
        message.contains("to is required") && message.contains("per must be one of: book, author"),
        "{message}"
    );
    let missing = app
        .db(|conn| ops::get_task_result(conn, TaskId(999_999)).unwrap_err())
        .await;
    assert_eq!(refusal(missing).0, "task_not_found");
    assert_eq!(
        task_count(&app).await,
        before + 1,
        "only the valid run was queued"
    );

    let new_id = app
        .db(|conn| ops::register_program(conn, "greeter", "hello_world").unwrap())
        .await;
    let taken = app
        .db(|conn| ops::register_program(conn, "greeter", "hello_world").unwrap_err())
        .await;
    let unknown_fn = app
        .db(|conn| ops::register_program(conn, "other", "no_such_function").unwrap_err())
        .await;
    let bad_name = app
        .db(|conn| ops::register_program(conn, "Bad Name", "hello_world").unwrap_err())
        .await;
    assert_eq!(refusal(taken).0, "name_taken");
    assert_eq!(refusal(unknown_fn).0, "unknown_function");
    assert_eq!(refusal(bad_name).0, "invalid_name");
    let greeters: Vec<ProgramId> = app
        .db(|conn| {
            programs::table
                .filter(programs::function_name.eq("hello_world"))
                .select(programs::id)
                .load(conn)
                .unwrap()
        })
        .await;
    assert!(
        greeters.contains(&new_id) && greeters.len() == 2,
        "one new program, nothing else"
    );
}

#[actix_web::test]
async fn a_dba_can_type_the_specification_in_psql() {
    let app = engine_app().await;
    let psql = |sql: &str| app.psql(sql);

    let (ok, programs, _) = psql("SELECT * FROM get_programs();");
    assert!(ok && programs.contains("hello_world"));
    let (ok, id, _) = psql("SELECT run_program('hello_world', NULL);");
    assert!(ok, "run_program from psql");
    let id: TaskId = id.parse().unwrap();
    wait_for_status(&app, id, "finished", 10).await;
    let (ok, result, _) = psql(&format!("SELECT * FROM get_task_result({id});"));
    assert!(
        ok && result.contains("finished") && result.contains("Hello, world!"),
        "{result}"
    );
    let (ok, _, _) = psql("SELECT register_program('new_program', 'hello_world');");
    assert!(ok);
    let (ok, _, error) = psql("SELECT register_program('new_program', 'new_function');");
    assert!(
        !ok && error.contains("unknown function new_function"),
        "{error}"
    );
    let (ok, _, error) = psql("SELECT * FROM get_task_result(987654);");
    assert!(!ok && error.contains("no task with id 987654"), "{error}");
}

#[actix_web::test]
async fn a_task_queued_from_sql_wakes_the_engine() {
    // With the fallback poll an hour away, only the notification can start the task.
    let app = spawn_app_with(|config| {
        fast(config);
        config.role = Role::All;
        config.task_poll_seconds = 3600;
    })
    .await;
    let idle = || {
        app.db(|conn| {
            tasks::table
                .filter(tasks::status.eq_any(["scheduled", "running"]))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
                == 0
        })
    };
    // Whether the engine is asleep yet or still finishing its last claim, the notification
    // must reach it (a wake-up with nobody waiting is kept): the poll is an hour away.
    wait_until(60, "the engine to be idle", || async { idle().await }).await;

    let id: TaskId = app
        .db(|conn| {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = BigInt)]
                id: TaskId,
            }
            sql_query("SELECT run_program('hello_world', '{\"name\": \"psql\"}') AS id")
                .get_result::<Id>(conn)
                .unwrap()
                .id
        })
        .await;

    wait_for_status(&app, id, "finished", 60).await;
    let result = app
        .db(move |conn| ops::get_task_result(conn, id).unwrap())
        .await;
    assert_eq!(result.result.as_deref(), Some("Hello, psql!"));
    assert!(result.start_time.is_some() && result.end_time.is_some());
}

#[actix_web::test]
async fn failed_attempts_are_retried_then_succeed_or_give_up() {
    let app = engine_app().await;

    let recovers = run(
        &app,
        "flaky",
        json!({"fail_first": 2, "failure_percent": 0}),
    )
    .await;
    let gives_up = run(
        &app,
        "flaky",
        json!({"fail_first": 5, "failure_percent": 0}),
    )
    .await;
    wait_for_status(&app, recovers, "finished", 10).await;
    wait_for_status(&app, gives_up, "error", 10).await;

    let (attempt, attempts): (i32, serde_json::Value) = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(recovers))
                .select((tasks::attempt, tasks::attempts))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(attempt, 3);
    assert_eq!(
        attempts.as_array().unwrap().len(),
        2,
        "two failed attempts recorded"
    );
    assert_eq!(attempts[1]["error"], "failing on purpose (attempt 2)");
    let failed = app
        .db(move |conn| ops::get_task_result(conn, gives_up).unwrap())
        .await;
    let text = failed.result.unwrap();
    assert!(text.starts_with("Failed after 3 attempts:"), "{text}");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("attempt {n}: failing on purpose (attempt {n})")),
            "{text}"
        );
    }
}

#[actix_web::test]
async fn a_panic_or_a_timeout_ends_the_attempt_and_the_worker_lives_on() {
    let app = engine_app().await;
    app.db(|conn| {
        sql_query("UPDATE program_functions SET timeout_seconds = 1, max_attempts = 1 WHERE name = 'demo_long'")
            .execute(conn)
            .unwrap()
    })
    .await;

    let panics = run(
        &app,
        "flaky",
        json!({"fail_first": 3, "failure_percent": 0, "panic": true}),
    )
    .await;
    let slow = run(&app, "demo_long", json!({"seconds": 20, "steps": 20})).await;
    wait_for_status(&app, panics, "error", 10).await;
    wait_for_status(&app, slow, "error", 10).await;
    let after = run(&app, "hello_world", json!({})).await;
    wait_for_status(&app, after, "finished", 10).await;

    let panicked = app
        .db(move |conn| ops::get_task_result(conn, panics).unwrap().result.unwrap())
        .await;
    assert!(
        panicked.contains("the program panicked: failing on purpose (attempt 1)"),
        "{panicked}"
    );
    let timed_out = app
        .db(move |conn| ops::get_task_result(conn, slow).unwrap().result.unwrap())
        .await;
    assert!(timed_out.contains("timed out after 1 s"), "{timed_out}");
}

#[actix_web::test]
async fn cancelling_a_queued_task_means_it_never_starts() {
    let app = spawn_app_with(|_| {}).await; // no engine
    let id = run(&app, "hello_world", json!({})).await;

    let after = app
        .db(move |conn| ops::cancel_task(conn, id).unwrap())
        .await;

    assert_eq!(after, TaskStatus::Cancelled);
    let result = app
        .db(move |conn| ops::get_task_result(conn, id).unwrap())
        .await;
    assert_eq!(result.status, TaskStatus::Cancelled);
    assert!(result.start_time.is_none());
    // A worker that comes up later does not run it.
    let (stop, worker) = spawn_worker(&app.database_url, fast);
    let marker = run(&app, "hello_world", json!({})).await;
    wait_for_status(&app, marker, "finished", 10).await;
    assert_eq!(status(&app, id).await, "cancelled");
    stop.stop();
    worker.await.unwrap().unwrap();
}

#[actix_web::test]
async fn cancelling_a_running_task_stops_it() {
    let app = engine_app().await;
    let id = run(&app, "demo_long", json!({"seconds": 60, "steps": 600})).await;
    wait_until(10, "progress", || async {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::progress_done)
                .first::<Option<i64>>(conn)
                .unwrap()
        })
        .await
        .is_some_and(|done| done > 0)
    })
    .await;

    assert_eq!(
        app.db(move |conn| ops::cancel_task(conn, id).unwrap())
            .await,
        TaskStatus::Running
    );

    wait_for_status(&app, id, "cancelled", 5).await;
    let result = app
        .db(move |conn| ops::get_task_result(conn, id).unwrap().result.unwrap())
        .await;
    assert!(
        result.starts_with("Cancelled while running (at "),
        "{result}"
    );
}

#[actix_web::test]
async fn two_workers_run_two_thousand_tasks_each_exactly_once() {
    let app = spawn_app_with(|_| {}).await;
    // Every task first waits at a gate the test holds shut (an advisory lock), so neither node
    // can drain the queue before the other starts claiming: both nodes' taking part is then an
    // event to wait for, not a race the faster node wins.
    let (ok, _, error) = app.psql(
        "CREATE FUNCTION through_the_gate(params jsonb) RETURNS text LANGUAGE sql AS $$ \
           SELECT pg_advisory_xact_lock_shared(4242); SELECT 'through' $$; \
         SELECT register_program('gated', 'through_the_gate');",
    );
    assert!(ok, "{error}");
    let mut gate = PgConnection::establish(&app.database_url).unwrap();
    sql_query("SELECT pg_advisory_lock(4242)")
        .execute(&mut gate)
        .unwrap();

    let workers = |c: &mut Config| {
        c.task_concurrency = 4;
        c.pool_size = 10;
    };
    let (stop_a, a) = spawn_worker(&app.database_url, workers);
    let (stop_b, b) = spawn_worker(&app.database_url, workers);
    app.db(|conn| {
        sql_query("SELECT run_program('gated', NULL) FROM generate_series(1, 2000)")
            .execute(conn)
            .unwrap()
    })
    .await;
    let claiming_nodes = || {
        app.db(|conn| {
            tasks::table
                .filter(tasks::status.eq("running"))
                .select(diesel::dsl::count(tasks::worker_id).aggregate_distinct())
                .first::<i64>(conn)
                .unwrap()
        })
    };
    wait_until(120, "both nodes to hold tasks at the gate", || async {
        claiming_nodes().await == 2
    })
    .await;
    sql_query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut gate)
        .unwrap();

    wait_until(120, "2,000 tasks to finish", || async {
        app.db(|conn| {
            tasks::table
                .filter(tasks::status.ne("finished"))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await
            == 0
    })
    .await;

    let (finished, max_attempt, workers): (i64, Option<i32>, i64) = app
        .db(|conn| {
            // Only the gated tasks: scheduled clean-ups may have run too.
            let gated = || {
                tasks::table
                    .inner_join(programs::table)
                    .filter(programs::name.eq("gated"))
            };
            let finished = gated()
                .filter(tasks::status.eq("finished"))
                .filter(tasks::result.eq("through"))
                .count()
                .get_result(conn)
                .unwrap();
            let max_attempt = gated()
                .select(diesel::dsl::max(tasks::attempt))
                .first(conn)
                .unwrap();
            let workers = gated()
                .select(diesel::dsl::count(tasks::worker_id).aggregate_distinct())
                .first(conn)
                .unwrap();
            (finished, max_attempt, workers)
        })
        .await;
    assert_eq!(finished, 2000);
    assert_eq!(max_attempt, Some(1), "no task was started twice");
    assert_eq!(workers, 2, "both nodes took part");
    stop_a.stop();
    stop_b.stop();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

#[actix_web::test]
async fn a_killed_workers_task_is_requeued_and_finished_by_another_node() {
    let app = spawn_app_with(|_| {}).await;
    // A real worker process, killed with SIGKILL mid-task.
    let mut doomed = std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .args(["--role", "worker"])
        .env("DATABASE_URL", &app.database_url)
        .env("BOOKSTORE_LOG", "warn")
        .env("BOOKSTORE_TASK_LEASE_SECONDS", "3")
        .spawn()
        .unwrap();
    let id = run(&app, "demo_long", json!({"seconds": 2, "steps": 20})).await;
    wait_for_status(&app, id, "running", 20).await;
    doomed.kill().unwrap();
    doomed.wait().unwrap();

    let (stop, survivor) = spawn_worker(&app.database_url, fast);
    wait_for_status(&app, id, "finished", 30).await;

    let (attempt, attempts): (i32, serde_json::Value) = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select((tasks::attempt, tasks::attempts))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(attempt, 2);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("worker lost"),
        "{attempts}"
    );
    stop.stop();
    survivor.await.unwrap().unwrap();
}

#[actix_web::test]
async fn shutdown_lets_short_tasks_finish_and_requeues_the_rest() {
    let app = spawn_app_with(|_| {}).await;
    let (stop, worker) = spawn_worker(&app.database_url, |c| {
        fast(c);
        c.task_grace_seconds = 2;
    });
    let short = run(&app, "demo_long", json!({"seconds": 1, "steps": 10})).await;
    let long = run(&app, "demo_long", json!({"seconds": 60, "steps": 60})).await;
    wait_for_status(&app, short, "running", 10).await;
    wait_for_status(&app, long, "running", 10).await;

    stop.stop();
    worker.await.unwrap().unwrap();

    assert_eq!(
        status(&app, short).await,
        "finished",
        "finished within the grace period"
    );
    let (status, attempt, attempts): (String, i32, serde_json::Value) = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(long))
                .select((tasks::status, tasks::attempt, tasks::attempts))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        (status.as_str(), attempt),
        ("scheduled", 0),
        "re-queued without spending an attempt"
    );
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted by a worker shutdown")
    );
}

#[actix_web::test]
async fn a_schedule_fires_once_per_period_with_two_nodes_up() {
    let app = spawn_app_with(|_| {}).await;
    let (stop_a, a) = spawn_worker(&app.database_url, fast);
    let (stop_b, b) = spawn_worker(&app.database_url, fast);
    let program: ProgramId = app
        .db(|conn| {
            programs::table
                .filter(programs::name.eq("hello_world"))
                .select(programs::id)
                .first(conn)
                .unwrap()
        })
        .await;

    let fired = || {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::program_id.eq(program))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
    };
    let enabled_at = std::time::Instant::now();
    app.db(move |conn| {
        ops::configure_program(
            conn,
            &staff_acting(),
            program,
            Some("every 2 seconds"),
            true,
        )
        .unwrap()
    })
    .await;
    // Events, not a stopwatch: wait for three firings however slow the machine is...
    wait_until(120, "three firings", || async { fired().await >= 3 }).await;
    app.db(move |conn| ops::configure_program(conn, &staff_acting(), program, None, true).unwrap())
        .await;
    let periods = enabled_at.elapsed().as_secs() / 2 + 1;

    // ...then the invariant: never more firings than periods went by, though two nodes were
    // both checking every slot. (A late firing is followed by fewer, never by an extra.)
    let count = fired().await;
    assert!(
        (3..=periods as i64).contains(&count),
        "{count} firings in {periods} periods: a period fired twice"
    );
    let bad = app
        .db(move |conn| {
            ops::configure_program(conn, &staff_acting(), program, Some("now and then"), true)
                .unwrap_err()
        })
        .await;
    assert_eq!(refusal(bad).0, "invalid_schedule");
    stop_a.stop();
    stop_b.stop();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
}

#[actix_web::test]
async fn importing_the_full_goodbooks_catalog_is_correct() {
    let app = spawn_app_with(|config| {
        fast(config);
        config.role = Role::All;
        config.import_dir =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/goodbooks-10k").into());
    })
    .await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/goodbooks-10k/books.csv"
    );

    let id = run(&app, "import_catalog", json!({ "path": "books.csv" })).await;
    wait_while_it_progresses(&app, id).await;
    assert_eq!(status(&app, id).await, "finished");

    let result = app
        .db(move |conn| ops::get_task_result(conn, id).unwrap().result.unwrap())
        .await;
    assert_eq!(
        result, "Read 10000 rows: 9700 inserted, 300 updated, 0 skipped.",
        "the seeded 300 are updated"
    );
    let total: i64 = app
        .db(|conn| books::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(total, 10_000);
    // The copy in tests/data is the shared data set itself, byte for byte, when that is here.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/goodbooks-10k/books.csv"
    );
    if let Ok(original) = std::fs::read(shared) {
        assert_eq!(
            std::fs::read(path).unwrap(),
            original,
            "tests/data/goodbooks-10k is a faithful copy"
        );
    }
    // Spot checks against the file itself.
    let mut reader = csv::Reader::from_path(path).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let by =
        |pred: &dyn Fn(&csv::StringRecord) -> bool| rows.iter().find(|r| pred(r)).unwrap().clone();
    let multi_author = by(&|r| r[7].matches(',').count() >= 2);
    let no_isbn = by(&|r| r[5].is_empty());
    let bc = by(&|r| r[8].starts_with('-'));
    let non_ascii = by(&|r| !r[10].is_ascii() && r[10].contains('é'));
    for row in [multi_author, no_isbn, bc, non_ascii] {
        let goodreads: i64 = row[1].parse().unwrap();
        let (title, isbn, year, names): (String, Option<String>, Option<i32>, Vec<String>) = app
            .db(move |conn| {
                let (id, title, isbn, year) = books::table
                    .filter(books::goodreads_id.eq(goodreads))
                    .select((books::id, books::title, books::isbn, books::year))
                    .first::<(i64, String, Option<String>, Option<i32>)>(conn)
                    .unwrap();
                let names = book_authors::table
                    .inner_join(authors::table)
                    .filter(book_authors::book_id.eq(id))
                    .order(book_authors::position)
                    .select(authors::name)
                    .load(conn)
                    .unwrap();
                (title, isbn, year, names)
            })
            .await;
        assert_eq!(
            title,
            row[10].split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let expected_names: Vec<String> = row[7]
            .split(',')
            .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(names, expected_names, "{title}");
        assert_eq!(isbn.is_none(), row[5].is_empty(), "{title}");
        let expected_year = (!row[8].is_empty()).then(|| row[8].parse::<f64>().unwrap() as i32);
        assert_eq!(year, expected_year, "{title}");
    }
}

#[actix_web::test]
async fn an_import_reads_only_regular_files_inside_the_import_folder() {
    // Arrange: an import folder with a good file and every way out of it.
    let folder = std::path::PathBuf::from(format!(
        "/tmp/bookstore-imports-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(folder.join("folder")).unwrap();
    let books = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/goodbooks-10k/books.csv"
    ))
    .unwrap();
    let two_books: String = books
        .lines()
        .take(3)
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(folder.join("two.csv"), &two_books).unwrap();
    std::fs::write(folder.join("big.csv"), "x".repeat(1_100_000)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.join("passwords.csv")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.csv")).unwrap();
    std::os::unix::fs::symlink(folder.join("two.csv"), folder.join("inside.csv")).unwrap();
    std::os::unix::fs::symlink("two.csv", folder.join("relative.csv")).unwrap();
    std::os::unix::fs::symlink(folder.join("nowhere.csv"), folder.join("dangling.csv")).unwrap();
    let imports = folder.clone();
    let app = spawn_app_with(move |config| {
        fast(config);
        config.role = Role::All;
        config.import_dir = Some(imports);
        config.import_max_mb = 1;
    })
    .await;

    // Act and assert: the good file imports; every other path ends in an error that says why
    // and shows nothing of the file it names.
    let good = run(&app, "import_catalog", json!({"path": "two.csv"})).await;
    wait_while_it_progresses(&app, good).await;
    let result = app
        .db(move |conn| ops::get_task_result(conn, good).unwrap())
        .await;
    assert_eq!(result.status, TaskStatus::Finished);
    assert_eq!(
        result.result.as_deref(),
        Some("Read 2 rows: 0 inserted, 2 updated, 0 skipped.")
    );
    for (path, why) in [
        ("/etc/passwd", "no absolute path"),
        ("../../../etc/passwd", "no absolute path, no .."),
        // A link is refused alike wherever it points: the message tells nothing of its target.
        (
            "passwords.csv",
            "is not a regular file in the import folder",
        ),
        ("zero.csv", "is not a regular file in the import folder"),
        ("inside.csv", "is not a regular file in the import folder"),
        ("relative.csv", "is not a regular file in the import folder"),
        ("dangling.csv", "is not a regular file in the import folder"),
        ("folder", "is not a regular file in the import folder"),
        ("folder/../two.csv", "no absolute path, no .."),
        ("big.csv", "more than the limit"),
        (
            "missing.csv",
            "there is no file \"missing.csv\" in the import folder: upload a file first",
        ),
    ] {
        let id = run(&app, "import_catalog", json!({ "path": path })).await;
        wait_while_it_progresses(&app, id).await;
        let result = app
            .db(move |conn| ops::get_task_result(conn, id).unwrap())
            .await;
        let text = result.result.unwrap_or_default();
        assert_eq!(result.status, TaskStatus::Error, "{path}: {text}");
        assert!(text.contains(why), "{path}: {text}");
        assert!(
            !text.contains("root:"),
            "{path} shows nothing of the file: {text}"
        );
        assert!(
            !text.contains("outside") && !text.contains("/tmp") && !text.contains("/dev"),
            "{path} tells nothing of where a link points, nor the server's folders: {text}"
        );
    }
    std::fs::remove_dir_all(folder).unwrap();
}

#[actix_web::test]
async fn reports_and_clean_ups_do_real_work() {
    let app = engine_app().await;
    // A sale of two copies at $15.00 today, and a book with low stock.
    let (book, title) = app
        .db(|conn| {
            let (book, title): (bookstore::ids::BookId, String) = books::table
                .order(books::id)
                .select((books::id, books::title))
                .first(conn)
                .unwrap();
            diesel::update(books::table.find(book))
                .set((books::stock.eq(10), books::price_cents.eq(1500)))
                .execute(conn)
                .unwrap();
            let user: bookstore::ids::UserId = bookstore::db::schema::users::table
                .filter(bookstore::db::schema::users::login.eq("alice"))
                .select(bookstore::db::schema::users::id)
                .first(conn)
                .unwrap();
            bookstore::domain::cart::add_to_cart(
                conn,
                user,
                book,
                bookstore::domain::cart::QuantityChange::parse("2").unwrap(),
            )
            .unwrap();
            bookstore::domain::orders::checkout(
                conn,
                &crate::helpers::customer_acting(),
                user,
                uuid::Uuid::new_v4(),
            )
            .unwrap();
            diesel::update(books::table.filter(books::id.ne(book)))
                .set(books::stock.eq(50))
                .execute(conn)
                .unwrap();
            (book, title)
        })
        .await;
    let today = chrono::Utc::now().date_naive().to_string();

    let sales = run(&app, "sales_report", json!({"from": today, "to": today})).await;
    let per_author = run(
        &app,
        "sales_report",
        json!({"from": today, "to": today, "per": "author"}),
    )
    .await;
    let low = run(&app, "low_stock", json!({"threshold": 10})).await;
    for id in [sales, per_author, low] {
        wait_for_status(&app, id, "finished", 20).await;
    }
    // Made old: archived first (prune_tasks deletes from the archive; the archive moves
    // nothing it already holds, so the update cannot meet one of its moves).
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    wait_until(60, "the reports to be archived", || async {
        app.db(|conn| {
            bookstore::tasks::archive::archive_ended(conn, 1000, Duration::ZERO, false).unwrap();
            sql_query(
                "SELECT count(*) AS count FROM tasks WHERE status = 'finished' AND NOT archived",
            )
            .get_result::<Count>(conn)
            .unwrap()
            .count
                == 0
        })
        .await
    })
    .await;
    app.db(|conn| {
        sql_query(
            "UPDATE tasks SET end_time = now() - interval '40 days' \
              WHERE status = 'finished' AND archived",
        )
        .execute(conn)
        .unwrap()
    })
    .await;
    let table = |id: TaskId| {
        let app = app.clone();
        async move {
            app.db(move |conn| {
                tasks::table
                    .filter(tasks::id.eq(id))
                    .select(tasks::result_table)
                    .first::<Option<serde_json::Value>>(conn)
                    .unwrap()
                    .unwrap()
            })
            .await
        }
    };
    let sales_table = table(sales).await;
    let per_author_table = table(per_author).await;
    let low_table = table(low).await;
    let text = app
        .db(move |conn| ops::get_task_result(conn, sales).unwrap().result.unwrap())
        .await;
    let prune = run(&app, "prune_tasks", json!({"older_than_days": 30})).await;
    wait_for_status(&app, prune, "finished", 20).await;

    assert_eq!(
        sales_table["columns"],
        json!(["id", "book", "units", "revenue (USD)"])
    );
    assert_eq!(
        sales_table["rows"],
        json!([[book.to_string(), title, "2", "30.00"]]),
        "numbers stored as numbers"
    );
    assert_eq!(sales_table["totals"], json!(["", "Total", "2", "30.00"]));
    assert_eq!(
        per_author_table["totals"], sales_table["totals"],
        "the authors' totals add up to the shop's"
    );
    assert!(
        per_author_table["note"]
            .as_str()
            .unwrap()
            .contains("first-named author")
    );
    let low_rows = low_table["rows"].as_array().unwrap().clone();
    assert_eq!(low_rows.len(), 1);
    assert_eq!(low_rows[0][0], book.to_string());
    assert_eq!(low_rows[0][3], "8", "10 in stock, 2 sold");
    assert_eq!(low_table["totals"], json!(["", "1 book", "", "8"]));
    assert!(
        text.contains("| units |") && text.ends_with("(1 row)"),
        "{text}"
    );
    let remaining: Vec<TaskId> = app
        .db(|conn| tasks::table.select(tasks::id).load(conn).unwrap())
        .await;
    assert!(
        !remaining.contains(&sales) && remaining.contains(&prune),
        "old finished tasks pruned, not itself"
    );
}
