//! Staff upload a CSV into the import folder from the run form, then import it.

use bookstore::config::Role;
use reqwest::multipart::{Form, Part};

use crate::helpers::{TestApp, csrf_token_in, spawn_app_with, wait_until};

async fn app_with_import_folder() -> (TestApp, std::path::PathBuf) {
    let folder = std::path::PathBuf::from(format!(
        "/tmp/bookstore-uploads-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let imports = folder.clone();
    let app = spawn_app_with(move |config| {
        config.role = Role::All;
        config.import_dir = Some(imports);
        config.import_max_mb = 1;
    })
    .await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    (app, folder)
}

fn two_books() -> String {
    let books = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/goodbooks-10k/books.csv"
    ))
    .unwrap();
    books
        .lines()
        .take(3)
        .map(|line| format!("{line}\n"))
        .collect()
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    name: &str,
    content: Vec<u8>,
) -> reqwest::Response {
    let mut form = Form::new();
    if let Some(token) = token {
        form = form.text("csrf_token", token.to_owned());
    }
    form = form
        .text("program", "import_catalog")
        .part("file", Part::bytes(content).file_name(name.to_owned()));
    app.client
        .post(format!("{}/admin/imports", app.address))
        .header("Origin", app.address.clone())
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn staff_upload_a_csv_and_import_it() {
    let (app, folder) = app_with_import_folder().await;
    let page = app.page("/admin/programs/import_catalog/run").await;
    assert!(page.contains("Upload a CSV file"));
    let token = csrf_token_in(&page);

    // A name that tries to leave the folder is saved under a safe one, inside it.
    let uploaded = upload(
        &app,
        Some(&token),
        "../../my books.csv",
        two_books().into_bytes(),
    )
    .await;
    assert_eq!(uploaded.status(), 303);
    let location = uploaded.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "/admin/programs/import_catalog/run?param_path=my_books.csv"
    );
    assert!(folder.join("my_books.csv").is_file());
    let form = app.page(&location).await;
    assert!(form.contains("Uploaded my_books.csv") && form.contains("value=\"my_books.csv\""));

    let run = app
        .submit(
            &location,
            "/admin/programs/import_catalog/run",
            &[("param_path", "my_books.csv")],
        )
        .await;
    assert_eq!(run.status(), 303);
    let task_page = run.headers()["location"].to_str().unwrap().to_owned();
    wait_until(60, "the import to finish", || async {
        app.page(&task_page)
            .await
            .contains("Read 2 rows: 0 inserted, 2 updated, 0 skipped.")
    })
    .await;
    std::fs::remove_dir_all(folder).unwrap();
}

#[actix_web::test]
async fn an_upload_without_the_token_or_over_the_limit_saves_nothing() {
    let (app, folder) = app_with_import_folder().await;
    let token = csrf_token_in(&app.page("/admin/programs/import_catalog/run").await);

    let forged = upload(&app, None, "forged.csv", two_books().into_bytes()).await;
    assert_eq!(forged.status(), 403);
    let wrong = upload(
        &app,
        Some("not-the-token"),
        "forged.csv",
        two_books().into_bytes(),
    )
    .await;
    assert_eq!(wrong.status(), 403);
    let huge = upload(&app, Some(&token), "huge.csv", vec![b'x'; 1_200_000]).await;
    assert_eq!(huge.status(), 400);
    assert!(
        huge.text()
            .await
            .unwrap()
            .contains("larger than the limit of 1 MB")
    );

    let left: Vec<_> = std::fs::read_dir(&folder)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing was saved: {left:?}");
    let _ = std::fs::remove_dir_all(folder);
}

/// Asks `/healthz` on a new connection each time (so every web worker gets asked), with a
/// generous limit that only a hung worker reaches.
async fn health_answers(app: &TestApp) -> bool {
    let fresh = reqwest::Client::new();
    fresh
        .get(format!("{}/healthz", app.address))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
}

#[actix_web::test]
async fn a_named_pipe_in_the_import_folder_is_refused_while_the_server_keeps_answering() {
    // Arrange: a named pipe that nobody writes to, where a CSV file would be.
    let (app, folder) = app_with_import_folder().await;
    std::fs::create_dir_all(&folder).unwrap();
    nix::unistd::mkfifo(
        &folder.join("pipe.csv"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let run_form = "/admin/programs/import_catalog/run";
    let token = csrf_token_in(&app.page(run_form).await);

    // Act: the run form and the API are asked to import it, while /healthz is asked again
    // and again.
    let from_the_page = app
        .client
        .post(format!("{}{run_form}", app.address))
        .header("Origin", app.address.clone())
        .timeout(std::time::Duration::from_secs(60))
        .form(&[("param_path", "pipe.csv"), ("csrf_token", &token)])
        .send();
    let from_the_api = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .header("Origin", app.address.clone())
        .header("X-CSRF-Token", token.clone())
        .timeout(std::time::Duration::from_secs(60))
        .json(&serde_json::json!({"program": "import_catalog", "parameters": {"path": "pipe.csv"}}))
        .send();
    let health = async {
        let mut answered = Vec::new();
        for _ in 0..6 {
            answered.push(health_answers(&app).await);
        }
        answered
    };
    let (page, api, answered) = tokio::join!(from_the_page, from_the_api, health);

    // Assert: a clear refusal from both, and every health check answered.
    let page = page.expect("the run form answers");
    assert_eq!(page.status(), 422);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("&#34;pipe.csv&#34; is not a regular file"),
        "{page}"
    );
    let api = api.expect("the API answers");
    assert_eq!(api.status(), 422);
    let error: serde_json::Value = api.json().await.unwrap();
    assert!(
        error["error"]["fields"]["path"]
            .as_str()
            .is_some_and(|message| message.contains("is not a regular file")),
        "{error}"
    );
    assert_eq!(answered, [true; 6], "/healthz answered every time");
    std::fs::remove_dir_all(folder).unwrap();
}

#[actix_web::test]
async fn before_the_first_upload_staff_are_told_to_upload_a_file_and_not_where_the_folder_is() {
    // Arrange: a new app whose import folder did not exist before it started.
    let (app, folder) = app_with_import_folder().await;
    assert!(folder.is_dir(), "the import folder is made at start");

    // Act: the import is asked for a file that was never uploaded, from the page and the API.
    let page = app
        .submit(
            "/admin/programs/import_catalog/run",
            "/admin/programs/import_catalog/run",
            &[("param_path", "books.csv")],
        )
        .await;
    assert_eq!(page.status(), 422);
    let page = page.text().await.unwrap();
    let token = csrf_token_in(&page);
    let api = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .header("Origin", app.address.clone())
        .header("X-CSRF-Token", token)
        .json(
            &serde_json::json!({"program": "import_catalog", "parameters": {"path": "books.csv"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 422);
    let api = api.text().await.unwrap();

    // Assert: plain words, and nothing of the server's folders or its errors.
    for said in [&page, &api] {
        assert!(said.contains("upload a file first"), "{said}");
        assert!(
            !said.contains("/tmp") && !said.contains("No such file") && !said.contains("os error"),
            "{said}"
        );
    }
    std::fs::remove_dir_all(folder).unwrap();
}
