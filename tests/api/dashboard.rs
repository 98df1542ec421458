//! The staff dashboard for background programs, and the JSON API.

use bookstore::ids::TaskId;
use bookstore::{config::Role, db::schema::tasks, tasks::ops};
use diesel::{prelude::*, sql_query};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_is_redirect_to, spawn_app, spawn_app_with, wait_until};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");
const ALICE: (&str, &str) = ("alice", "alice-reads-books");

async fn staff_app() -> TestApp {
    let app = spawn_app().await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    app
}

async fn queue(app: &TestApp, program: &'static str, params: Value) -> TaskId {
    app.db(move |conn| ops::run_program(conn, program, Some(&params)).unwrap())
        .await
}

async fn status_of(app: &TestApp, id: TaskId) -> String {
    app.task_status(id).await
}

#[tokio::test]
async fn every_staff_page_renders_with_real_data_and_refuses_customers() {
    let app = staff_app().await;
    let id = queue(&app, "hello_world", json!({"name": "pages"})).await;
    let customer = app.another_browser();
    customer.log_in_as(ALICE.0, ALICE.1).await;

    let (task_link, task_ref, task_title, task_path) = (
        format!("/admin/tasks/{id}"),
        format!("#{id}"),
        format!("Task #{id}: hello_world"),
        format!("/admin/tasks/{id}"),
    );
    let pages = [
        (
            "/admin",
            vec![
                "Staff overview",
                "Tasks per hour",
                "<svg",
                task_link.as_str(),
            ],
        ),
        (
            "/admin/programs",
            vec![
                "hello_world",
                "sales_report",
                "Register a program",
                "every 15 minutes",
            ],
        ),
        (
            "/admin/programs/sales_report/run",
            vec![
                "Run sales_report",
                "name=\"param_from\"",
                "type=\"date\"",
                "<option value=\"author\"",
            ],
        ),
        (
            "/admin/tasks",
            vec![
                task_ref.as_str(),
                "{&#34;name&#34;:&#34;pages&#34;}",
                "status-scheduled",
            ],
        ),
        (
            task_path.as_str(),
            vec![task_title.as_str(), "scheduled", "Cancel…", "Run again…"],
        ),
        ("/admin/tokens", vec!["API tokens", "Create a token"]),
    ];
    for (path, needles) in &pages {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let page = response.text().await.unwrap();
        for needle in needles {
            assert!(page.contains(needle), "{path} lacks {needle}");
        }
        assert_eq!(
            customer.get(path).await.status(),
            403,
            "{path} is staff only"
        );
    }
    assert_eq!(app.get("/admin/tasks/999999").await.status(), 404);
    assert_eq!(app.get("/admin/programs/no_such/run").await.status(), 404);
}

#[tokio::test]
async fn the_run_form_shows_each_error_next_to_its_field_and_keeps_the_input() {
    let app = staff_app().await;
    let before: i64 = app
        .db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await;

    let response = app
        .submit(
            "/admin/programs/sales_report/run",
            "/admin/programs/sales_report/run",
            &[
                ("param_from", "2026-02-30"),
                ("param_to", ""),
                ("param_per", "book"),
            ],
        )
        .await;

    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("Nothing was queued"));
    assert!(page.contains("From is not a real date."), "{page}");
    assert!(page.contains("To is required."));
    assert!(page.contains("value=\"2026-02-30\""), "the input is kept");
    let after: i64 = app
        .db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(after, before);

    let queued = app
        .submit(
            "/admin/programs/sales_report/run",
            "/admin/programs/sales_report/run",
            &[
                ("param_from", "2026-01-01"),
                ("param_to", "2026-12-31"),
                ("param_per", "author"),
            ],
        )
        .await;
    assert_eq!(queued.status(), 303);
    let location = queued.headers()["location"].to_str().unwrap().to_owned();
    let task_page = app.page(&location).await;
    assert!(
        task_page.contains("queued") && task_page.contains("&#34;per&#34;: &#34;author&#34;"),
        "{task_page}"
    );
}

#[tokio::test]
async fn registering_a_program_checks_the_function() {
    let app = staff_app().await;

    let refused = app
        .submit(
            "/admin/programs",
            "/admin/programs",
            &[("name", "ghost"), ("function_name", "no_such_fn")],
        )
        .await;
    let bad_name = app
        .submit(
            "/admin/programs",
            "/admin/programs",
            &[("name", "Bad Name"), ("function_name", "hello_world")],
        )
        .await;
    let created = app
        .submit(
            "/admin/programs",
            "/admin/programs",
            &[("name", "greeter"), ("function_name", "hello_world")],
        )
        .await;

    assert_eq!(refused.status(), 422);
    assert!(
        refused.text().await.unwrap().contains(
            "Function is not a function of this app nor a SQL function name(params jsonb)."
        )
    );
    assert_eq!(bad_name.status(), 422);
    assert!(
        bad_name
            .text()
            .await
            .unwrap()
            .contains("value=\"Bad Name\"")
    );
    assert_is_redirect_to(&created, "/admin/programs");
    let page = app.page("/admin/programs").await;
    assert!(
        page.contains("Program greeter registered") && page.contains("<strong>greeter</strong>")
    );
    let taken = app
        .submit(
            "/admin/programs",
            "/admin/programs",
            &[("name", "greeter"), ("function_name", "hello_world")],
        )
        .await;
    assert!(
        taken
            .text()
            .await
            .unwrap()
            .contains("Name is already taken.")
    );
}

#[tokio::test]
async fn cancel_and_run_again_ask_first_and_then_act() {
    let app = staff_app().await;
    let id = queue(&app, "hello_world", json!({"name": "again"})).await;

    let confirm = app.page(&format!("/admin/tasks/{id}/cancel")).await;
    assert!(confirm.contains(&format!("Cancel task #{id}?")) && confirm.contains("Yes, cancel it"));
    let cancelled = app
        .submit(
            &format!("/admin/tasks/{id}/cancel"),
            &format!("/admin/tasks/{id}/cancel"),
            &[],
        )
        .await;
    assert_is_redirect_to(&cancelled, &format!("/admin/tasks/{id}"));
    assert_eq!(status_of(&app, id).await, "cancelled");

    let rerun = app
        .submit(
            &format!("/admin/tasks/{id}/rerun"),
            &format!("/admin/tasks/{id}/rerun"),
            &[],
        )
        .await;
    let location = rerun.headers()["location"].to_str().unwrap().to_owned();
    let new_id: TaskId = location.rsplit('/').next().unwrap().parse().unwrap();
    assert_ne!(new_id, id);
    let params: Option<Value> = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(new_id))
                .select(tasks::parameters)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(params, Some(json!({"name": "again"})), "same parameters");
    assert!(
        app.page(&location)
            .await
            .contains(&format!("a new run of task #{id}"))
    );
}

#[actix_web::test]
async fn a_table_result_shows_as_html_and_downloads_as_csv() {
    let app = spawn_app_with(|c| {
        c.role = Role::All;
    })
    .await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let id = queue(&app, "low_stock", json!({"threshold": 5})).await;
    wait_until(20, "the report", || async {
        status_of(&app, id).await == "finished"
    })
    .await;

    let page = app.page(&format!("/admin/tasks/{id}")).await;
    let csv = app.get(&format!("/admin/tasks/{id}/result.csv")).await;
    let txt = app.get(&format!("/admin/tasks/{id}/result.txt")).await;

    assert!(
        page.contains("<table class=\"result-table\">")
            && page.contains(">title</a></th>")
            && page.contains("<td class=\"num\"><a href=\"/books/"),
        "sortable headers, numbers right-aligned, ids linked: {page}"
    );
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let body = csv.text().await.unwrap();
    let stored: Value = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::result_table)
                .first::<Option<Value>>(conn)
                .unwrap()
                .unwrap()
        })
        .await;
    let mut rows: Vec<Vec<String>> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let totals = rows.pop();
    assert_eq!(
        json!(rows),
        stored["rows"],
        "the CSV holds exactly the stored rows"
    );
    assert_eq!(json!(totals), stored["totals"], "then the totals row");
    assert!(!rows.is_empty());
    assert!(txt.text().await.unwrap().contains("| stock"));
    let hello = queue(&app, "hello_world", json!({})).await;
    wait_until(20, "hello", || async {
        status_of(&app, hello).await == "finished"
    })
    .await;
    assert_eq!(
        app.get(&format!("/admin/tasks/{hello}/result.csv"))
            .await
            .status(),
        404,
        "a text result has no CSV"
    );
}

#[tokio::test]
async fn the_overview_counts_match_the_tasks_table() {
    let app = staff_app().await;
    app.db(|conn| {
        sql_query("SELECT run_program('hello_world', NULL) FROM generate_series(1, 5)").execute(conn).unwrap();
        sql_query(
            "UPDATE tasks SET status = 'finished', start_time = now(), end_time = now(), worker_id = 'w' \
              WHERE id IN (SELECT id FROM tasks ORDER BY id LIMIT 2)",
        )
        .execute(conn)
        .unwrap();
        sql_query(
            "UPDATE tasks SET status = 'error', start_time = now(), end_time = now(), worker_id = 'w', result = 'boom' \
              WHERE id = (SELECT max(id) FROM tasks)",
        )
        .execute(conn)
        .unwrap();
    })
    .await;

    let page = app.page("/admin").await;

    let counts: Vec<(String, i64)> = app
        .db(|conn| {
            tasks::table
                .group_by(tasks::status)
                .select((tasks::status, diesel::dsl::count_star()))
                .load(conn)
                .unwrap()
        })
        .await;
    for status in ["scheduled", "running", "finished", "error", "cancelled"] {
        let expected = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        assert!(
            page.contains(&format!("data-status-count=\"{status}\">{expected}</span>")),
            "{status} should show {expected}"
        );
    }
    assert!(page.contains("Failures in the last 24 hours") && page.contains("status-error"));
}

async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{path}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_api_serves_staff_only_with_clear_json_errors() {
    let app = spawn_app().await;
    use reqwest::Method;

    let (status, body) = api(&app, Method::GET, "/api/v1/programs", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let customer = app.another_browser();
    customer.log_in_as(ALICE.0, ALICE.1).await;
    let (status, body) = api(&customer, Method::GET, "/api/v1/programs", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    // A token made on the tokens page, used without any session.
    let staff = app.another_browser();
    staff.log_in_as(STAFF.0, STAFF.1).await;
    let token = staff.create_api_token("ci script").await;
    assert!(token.starts_with("bks_"));
    let script = app.another_browser();
    let token = Some(token.as_str());

    let (status, body) = api(&script, Method::GET, "/api/v1/programs", token, None).await;
    assert_eq!(status, 200);
    assert!(
        body["programs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "hello_world")
    );

    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/tasks",
        token,
        Some("{not json"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/tasks",
        token,
        Some(r#"{"program": "nope"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("program_not_found"))
    );
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/tasks",
        token,
        Some(r#"{"program": "demo_long", "parameters": {"seconds": "x", "bogus": 1}}"#),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_parameters");
    assert_eq!(
        body["error"]["fields"],
        json!({"bogus": "is not a parameter of this program", "seconds": "must be a whole number"})
    );
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/tasks",
        token,
        Some(r#"{"program": "hello_world", "parameters": {"name": "api"}}"#),
    )
    .await;
    assert_eq!(status, 201);
    let id = body["id"].as_i64().unwrap();

    let (status, body) = api(
        &script,
        Method::GET,
        &format!("/api/v1/tasks/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str(), body["program"].as_str()),
        (200, Some("scheduled"), Some("hello_world"))
    );
    assert_eq!(body["parameters"], json!({"name": "api"}));
    let (status, body) = api(
        &script,
        Method::GET,
        "/api/v1/tasks?status=scheduled&program=hello_world",
        token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id)
    );
    let (status, body) = api(
        &script,
        Method::GET,
        "/api/v1/tasks?status=bogus",
        token,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = api(&script, Method::GET, "/api/v1/tasks/424242", token, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("task_not_found"))
    );
    let (status, body) = api(
        &script,
        Method::POST,
        &format!("/api/v1/tasks/{id}/cancel"),
        token,
        None,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));

    let (status, _) = api(
        &script,
        Method::POST,
        "/api/v1/programs",
        token,
        Some(r#"{"name": "api_greeter", "function_name": "hello_world"}"#),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/programs",
        token,
        Some(r#"{"name": "api_greeter", "function_name": "hello_world"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("name_taken"))
    );
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/programs",
        token,
        Some(r#"{"name": "x1", "function_name": "nope"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("unknown_function"))
    );
    let (status, body) = api(
        &script,
        Method::POST,
        "/api/v1/programs",
        token,
        Some(r#"{"name": "x2"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );

    // Revoked: the token stops working at once.
    let tokens_page = staff.page("/admin/tokens").await;
    let token_id = tokens_page
        .split("/admin/tokens/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let confirm = format!("/admin/tokens/{token_id}/revoke");
    let revoked = staff.submit(&confirm, &confirm, &[]).await;
    assert_is_redirect_to(&revoked, "/admin/tokens");
    let (status, _) = api(&script, Method::GET, "/api/v1/programs", token, None).await;
    assert_eq!(status, 401);
    let (status, body) = api(&staff, Method::GET, "/api/v1/nowhere", None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn staff_set_a_schedule_and_disable_a_program_from_its_page() {
    let app = staff_app().await;

    let bad = app
        .submit(
            "/admin/programs",
            "/admin/programs/hello_world/settings",
            &[("schedule", "whenever"), ("enabled", "1")],
        )
        .await;
    assert_is_redirect_to(&bad, "/admin/programs");
    assert!(
        app.page("/admin/programs")
            .await
            .contains("Nothing was saved: invalid schedule")
    );
    let saved = app
        .submit(
            "/admin/programs",
            "/admin/programs/hello_world/settings",
            &[("schedule", "every 5 minutes")],
        )
        .await;
    assert_is_redirect_to(&saved, "/admin/programs");

    let page = app.page("/admin/programs").await;
    assert!(page.contains("Settings of hello_world saved."));
    assert!(
        page.contains("value=\"every 5 minutes\"") && page.contains("next "),
        "the schedule and its next firing"
    );
    assert!(
        !page.contains("href=\"/admin/programs/hello_world/run\""),
        "a disabled program offers no Run"
    );
    let refused = app
        .db(|conn| ops::run_program(conn, "hello_world", None).unwrap_err())
        .await;
    assert_eq!(refused.code(), "program_disabled");
}

#[tokio::test]
async fn a_session_api_call_that_changes_something_needs_the_csrf_header_and_an_origin() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let token = crate::helpers::csrf_token_in(&app.page("/admin/programs").await);
    let call = |origin: Option<&str>, csrf: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/api/v1/tasks", app.address))
            .json(&serde_json::json!({"program": "hello_world"}));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request.send()
    };

    let no_origin = call(None, Some(&token)).await.unwrap();
    let no_token = call(Some(&app.address), None).await.unwrap();
    let wrong_token = call(Some(&app.address), Some("forged")).await.unwrap();
    let cross_site = call(Some("https://evil.example"), Some(&token))
        .await
        .unwrap();
    let marked_cross_site = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .header("X-CSRF-Token", token.clone())
        .json(&serde_json::json!({"program": "hello_world"}))
        .send()
        .await
        .unwrap();
    let proper = call(Some(&app.address), Some(&token)).await.unwrap();

    // Every refusal, the cross-site ones included, answers in the API's JSON shape.
    for (what, response) in [
        ("no origin", no_origin),
        ("no token", no_token),
        ("wrong token", wrong_token),
        ("a cross-site Origin", cross_site),
        ("Sec-Fetch-Site: cross-site", marked_cross_site),
    ] {
        assert_eq!(response.status(), 403, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_rejected", "{what}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    assert_eq!(proper.status(), 201, "the same call from our page");
    let count: i64 = app
        .db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(count, 1, "only the proper call queued a task");
}
