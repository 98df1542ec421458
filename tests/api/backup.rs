//! Backups as an operator makes them: `bookstore backup FILE` of one data folder,
//! `bookstore restore FILE` into a fresh one (the same books, users, orders and tasks), a
//! refusal to restore over a database that has data unless `--replace`, a truncated file
//! refused before anything is created; and the scheduled `backup` program keeping the newest.

use std::process::Command;

use bookstore::config::Role;
use serde_json::json;

use crate::{
    helpers::{spawn_app_with, wait_until},
    process::{DataDir, bookstore, home_page, psql, start},
};

/// What must survive a backup, as digests: every book, user, order (with lines) and task.
const SNAPSHOT: &str = "SELECT concat_ws(' ', \
    (SELECT md5(string_agg(concat_ws(',', id, title, stock, price_cents, hidden), '|' ORDER BY id)) FROM books), \
    (SELECT md5(string_agg(concat_ws(',', id, login, role, password_hash, email), '|' ORDER BY id)) FROM users), \
    (SELECT md5(string_agg(concat_ws(',', o.id, o.user_id, o.total_cents, l.book_id, l.quantity), '|' ORDER BY o.id, l.book_id)) \
       FROM orders o JOIN order_lines l ON l.order_id = o.id), \
    (SELECT md5(string_agg(concat_ws(',', id, status, result, attempt), '|' ORDER BY id)) FROM tasks), \
    (SELECT count(*) FROM tasks))";

fn run(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[tokio::test]
async fn a_backup_restores_into_a_fresh_folder_and_a_truncated_one_is_refused() {
    let original = DataDir::new();
    let app = start(&original);
    psql(
        &original,
        "UPDATE books SET title = 'Backed Up' WHERE id = 3",
    );
    psql(
        &original,
        "WITH o AS (INSERT INTO orders (user_id, idempotency_key, total_cents) \
                    SELECT id, gen_random_uuid(), 2400 FROM users WHERE login = 'alice' RETURNING id) \
         INSERT INTO order_lines (order_id, book_id, title, unit_price_cents, quantity) \
         SELECT o.id, 3, 'Backed Up', 1200, 2 FROM o",
    );
    psql(
        &original,
        "SELECT run_program('hello_world', '{\"name\": \"backup\"}')",
    );
    let file = original.0.with_extension("dump");
    // While the app runs: pg_dump reads one snapshot.
    let (ok, said) = run(bookstore(&original).arg("backup").arg(&file));
    assert!(ok, "{said}");
    assert!(said.contains("Backed up the database to"), "{said}");
    assert!(app.terminate().success());
    // Taken again with the app stopped, so nothing moves between it and the snapshot.
    let (ok, said) = run(bookstore(&original).arg("backup").arg(&file));
    assert!(ok, "{said}");
    let before = psql(&original, SNAPSHOT);

    let fresh = DataDir::new();
    let (ok, said) = run(bookstore(&fresh).arg("restore").arg(&file));
    assert!(ok, "{said}");
    assert_eq!(psql(&fresh, SNAPSHOT), before, "the same rows");
    let app = start(&fresh);
    assert!(home_page(&app).await.contains("Backed Up"));
    assert!(app.terminate().success());

    // Over a database with data: refused, unless asked.
    let (ok, said) = run(bookstore(&fresh).arg("restore").arg(&file));
    assert!(!ok);
    assert!(
        said.contains("not empty") && said.contains("--replace"),
        "{said}"
    );
    psql(
        &fresh,
        "UPDATE books SET title = 'Changed Since' WHERE id = 3",
    );
    let (ok, said) = run(bookstore(&fresh).args(["restore", "--replace"]).arg(&file));
    assert!(ok, "{said}");
    assert_eq!(
        psql(&fresh, SNAPSHOT),
        before,
        "replaced by the backup's rows"
    );

    // A truncated file: refused with a clear error, and no cluster is made for it.
    let bytes = std::fs::read(&file).unwrap();
    let truncated = original.0.with_extension("truncated.dump");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let empty = DataDir::new();
    let (ok, said) = run(bookstore(&empty).arg("restore").arg(&truncated));
    assert!(!ok);
    assert!(
        said.contains("is not a whole backup made by `bookstore backup`"),
        "{said}"
    );
    assert!(!empty.0.join("pg").exists(), "nothing was created");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&truncated);
}

#[actix_web::test]
async fn the_backup_program_writes_dated_files_and_keeps_the_newest() {
    let data = tempdir();
    let data_dir = data.clone();
    let app = spawn_app_with(move |config| {
        config.role = Role::All;
        config.data_dir = data_dir;
    })
    .await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let token = app.create_api_token("backups").await;
    let backups = data.join("backups");
    // The schedule's missed firing (the template database was made before 02:00 today) may
    // add a backup of its own meanwhile: the rule checked is "the newest, at most 2".
    for round in 1..=3 {
        let queued = app
            .client
            .post(format!("{}/api/v1/tasks", app.address))
            .bearer_auth(&token)
            .json(&json!({"program": "backup", "parameters": {"keep": 2}}))
            .send()
            .await
            .unwrap();
        assert_eq!(queued.status(), 201);
        let id = queued.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        let id = bookstore::ids::TaskId(id);
        wait_until(30, "the backup to finish", || {
            let app = app.clone();
            async move { app.task_status(id).await == "finished" }
        })
        .await;
        let task = app
            .client
            .get(format!("{}/api/v1/tasks/{id}", app.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        let result = task["result"].as_str().unwrap().to_owned();
        assert!(result.contains("keeping 2"), "{result}");
        let files: Vec<String> = std::fs::read_dir(&backups)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            files.len(),
            round.min(2),
            "round {round}: {result}: {files:?}"
        );
        // File names are to the second: the next one must not take this one's name.
        let after = chrono::Utc::now() + chrono::Duration::seconds(1);
        wait_until(3, "the next second", || async move {
            chrono::Utc::now() >= after
        })
        .await;
    }
    let _ = std::fs::remove_dir_all(&data);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bookstore-backups-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
