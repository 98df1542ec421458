//! Bad input never gets a 500: a corpus of hostile values (NUL and other control characters,
//! invalid UTF-8, huge strings, negative and huge numbers, wrong types) sent to every form,
//! query and API route, one field at a time. NUL and invalid UTF-8 get a 400 that says why.

use serde_json::{Value, json};

use crate::helpers::{TestApp, csrf_token_in, spawn_app, staff_acting};

/// Field values, as raw bytes (so invalid UTF-8 can be sent).
fn corpus() -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> = [
        "\0",
        "a\0b",
        "\u{1b}[2J",
        "line\u{7}bell",
        "\u{85}",
        "-1",
        "0",
        "-9223372036854775809",
        "99999999999999999999999",
        "1e309",
        "NaN",
        "12,50",
        "$",
        "",
        " ",
        "true",
        "[]",
        "{}",
        "<script>alert(1)</script>",
        "'; DROP TABLE books; --",
        "\u{202e}gnp.exe",
        "ü",
        // JSON whose strings decode to a NUL: jsonb (and text) refuse it.
        r#"{"a":"\u0000"}"#,
        r#"{"a\u0000":1}"#,
        r#"[{"a":["\u0000"]}]"#,
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect();
    values.push(vec![0xff, 0xfe]);
    values.push(vec![b'a', 0xc3]);
    values.push(b"x".repeat(3_000));
    // Long and incompressible: larger than a btree index row can be.
    let mut seed: u32 = 7;
    values.push(
        (0..4_000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                b'a' + (seed >> 16) as u8 % 26
            })
            .collect(),
    );
    values.push(b"x".repeat(1_000_000));
    values
}

fn must_refuse(value: &[u8]) -> bool {
    value.contains(&0)
        || std::str::from_utf8(value).is_err()
        || serde_json::from_slice::<Value>(value).is_ok_and(|v| v.to_string().contains("\\u0000"))
}

/// `application/x-www-form-urlencoded` from raw bytes.
fn encode(fields: &[(&str, Vec<u8>)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            let value: String = value
                .iter()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (*b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn check(what: &str, value: &[u8], response: reqwest::Response) {
    let status = response.status().as_u16();
    let shown = String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned();
    assert!(status < 500, "{what} with {shown:?}: {status}");
    if must_refuse(value) && value.len() < 100_000 {
        assert_eq!(status, 400, "{what} with {shown:?}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("NUL character") || body.contains("not valid UTF-8"),
            "{what}: the page says why: {body}"
        );
    }
}

/// A form: its action, the page that shows it, its fields with good values.
type Form = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Every form of a logged-in staff member or customer.
fn forms() -> Vec<Form> {
    vec![
        (
            "/cart/items",
            "/books",
            vec![("book_id", "1"), ("quantity", "1")],
        ),
        ("/cart/items/1/change", "/cart", vec![("change", "1")]),
        ("/cart/items/1/quantity", "/cart", vec![("quantity", "2")]),
        ("/cart/items/1/remove", "/cart", vec![]),
        (
            "/checkout",
            "/cart",
            vec![("idempotency_key", "0b7d6c1e-7c1e-4d8a-9f0e-5a2d3c4b5a6f")],
        ),
        (
            "/admin/programs",
            "/admin/programs",
            vec![("name", "corpus"), ("function_name", "hello_world")],
        ),
        (
            "/admin/programs/hello_world/run",
            "/admin/programs",
            vec![("param_name", "you")],
        ),
        (
            "/admin/programs/hello_world/run",
            "/admin/programs/hello_world/run",
            vec![
                ("param_name", "you"),
                ("priority", "1"),
                ("unique_key", "corpus"),
                ("unique_for", "1"),
                ("unique_for_unit", "hours"),
                ("after", ""),
            ],
        ),
        (
            "/admin/programs/hello_world/options",
            "/admin/programs/hello_world",
            vec![("priority", "1"), ("max_running", "2"), ("per_minute", "")],
        ),
        (
            "/admin/programs/hello_world/settings",
            "/admin/programs",
            vec![("schedule", ""), ("enabled", "on")],
        ),
        (
            "/admin/tokens",
            "/admin/tokens",
            vec![("name", "corpus"), ("expires", "")],
        ),
        (
            "/admin/users/password-reset",
            "/admin/users",
            vec![("login", "alice")],
        ),
        (
            "/account/name",
            "/account",
            vec![("display_name", "Staff Member")],
        ),
        (
            // A wrong current password: the corpus reaches the check (and its throttle), and
            // nothing changes.
            "/account/password",
            "/account",
            vec![
                ("current_password", "not the password"),
                ("new_password", "a long enough secret 2026"),
                ("new_password_confirmation", "a long enough secret 2026"),
            ],
        ),
        ("/admin/tokens/1/revoke", "/admin/tokens", vec![]),
        (
            "/admin/books/new",
            "/admin/books/new",
            vec![
                ("title", "A title"),
                ("authors", "An Author"),
                ("year", "2001"),
                ("isbn", ""),
                ("language", "en"),
                ("description", ""),
                ("price", "12.50"),
                ("stock", "3"),
                ("stock_was", "3"),
            ],
        ),
        (
            "/admin/books/1/edit",
            "/admin/books/1/edit",
            vec![
                ("title", "A title"),
                ("authors", "An Author"),
                ("price", "12.50"),
                ("stock", "3"),
            ],
        ),
    ]
}

async fn post_raw(app: &TestApp, path: &str, body: String) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn no_form_field_and_no_query_gives_a_500() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let token = csrf_token_in(&app.page("/admin/programs").await);

    for (action, _page, fields) in forms() {
        let names: Vec<&str> = fields
            .iter()
            .map(|(name, _)| *name)
            .chain(["extra"])
            .collect();
        for bad_field in names {
            for value in corpus() {
                let mut sent: Vec<(&str, Vec<u8>)> = fields
                    .iter()
                    .filter(|(name, _)| *name != bad_field)
                    .map(|(name, good)| (*name, good.as_bytes().to_vec()))
                    .collect();
                sent.push((bad_field, value.clone()));
                sent.push(("csrf_token", token.as_bytes().to_vec()));
                let response = post_raw(&app, action, encode(&sent)).await;
                check(&format!("POST {action} {bad_field}"), &value, response).await;
            }
        }
    }

    let queries = [
        ("/books", vec!["q", "author", "in_stock", "sort", "page"]),
        (
            "/admin/tasks",
            vec!["status", "program", "q", "batch", "priority", "page"],
        ),
        ("/admin/batches/1", vec!["after"]),
        ("/login", vec!["next"]),
        ("/admin/programs/hello_world/run", vec!["x"]),
    ];
    for (path, names) in queries {
        for name in names {
            for value in corpus().into_iter().filter(|v| v.len() < 10_000) {
                let url = format!("{}{path}?{}", app.address, encode(&[(name, value.clone())]));
                let response = app.client.get(url).send().await.unwrap();
                check(&format!("GET {path}?{name}"), &value, response).await;
            }
        }
    }
    for path in [
        "/books/%00",
        "/books/-1",
        "/books/99999999999999999999",
        "/orders/abc",
        "/admin/tasks/%FF",
        "/admin/tasks/1/result.%00",
        "/admin/programs/%00/run",
        "/admin/programs/%00",
        "/admin/batches/%00",
        "/admin/batches/-1",
        "/admin/batches/99999999999999999999",
        "/cart/items/0/remove",
        "/admin/books/-5/edit",
        "/password-reset/%00",
        "/password-reset/%FF",
        "/password-reset/-1",
        "/admin/users/password-reset",
    ] {
        let response = app.get(path).await;
        assert!(
            response.status().as_u16() < 500,
            "GET {path}: {}",
            response.status()
        );
    }
}

#[actix_web::test]
async fn the_account_forms_take_any_input_without_a_500() {
    let app = spawn_app().await;
    let forms: [Form; 2] = [
        (
            "/register",
            "/register",
            vec![
                ("login", "newcomer"),
                ("display_name", "New Comer"),
                ("email", "new.comer@example.test"),
                ("password", "a long enough secret"),
                ("password_confirmation", "x"),
            ],
        ),
        (
            "/login",
            "/login",
            vec![("login", "alice"), ("password", "wrong one"), ("next", "/")],
        ),
    ];
    for (action, page, fields) in forms {
        for (bad_field, _) in &fields {
            for value in corpus() {
                // A fresh visitor each time: the throttle and the session start clean.
                let visitor = app.another_browser();
                let token = csrf_token_in(&visitor.page(page).await);
                let mut sent: Vec<(&str, Vec<u8>)> = fields
                    .iter()
                    .filter(|(name, _)| name != bad_field)
                    .map(|(name, good)| (*name, good.as_bytes().to_vec()))
                    .collect();
                sent.push((bad_field, value.clone()));
                sent.push(("csrf_token", token.as_bytes().to_vec()));
                let response = post_raw(&visitor, action, encode(&sent)).await;
                check(&format!("POST {action} {bad_field}"), &value, response).await;
            }
        }
    }
}

#[actix_web::test]
async fn the_password_reset_form_takes_any_input_without_a_500() {
    use bookstore::domain::accounts::{Login, resets};
    let app = spawn_app().await;
    let path = app
        .db(|conn| {
            resets::create_link(
                conn,
                &staff_acting(),
                &Login::parse("alice").unwrap(),
                resets::LinkIssuer::StaffPage,
            )
            .unwrap()
        })
        .await
        .path();
    // The two passwords never match, so the link stays usable through the whole corpus.
    let fields = [
        ("password", "a long enough secret 2026"),
        ("password_confirmation", "x"),
    ];
    let visitor = app.another_browser();
    let token = csrf_token_in(&visitor.page(&path).await);
    for bad_field in ["password", "password_confirmation", "extra"] {
        for value in corpus() {
            let mut sent: Vec<(&str, Vec<u8>)> = fields
                .iter()
                .filter(|(name, _)| *name != bad_field)
                .map(|(name, good)| (*name, good.as_bytes().to_vec()))
                .collect();
            sent.push((bad_field, value.clone()));
            sent.push(("csrf_token", token.as_bytes().to_vec()));
            let response = post_raw(&visitor, &path, encode(&sent)).await;
            check(
                &format!("POST /password-reset {bad_field}"),
                &value,
                response,
            )
            .await;
        }
    }
    assert_eq!(
        visitor.get(&path).await.status(),
        200,
        "the link still works"
    );
    let long = format!("/password-reset/{}", "f".repeat(3_000));
    assert_eq!(visitor.get(&long).await.status(), 404);
}

#[actix_web::test]
async fn no_api_field_gives_a_500() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let token = csrf_token_in(&app.page("/admin/programs").await);
    let values: Vec<Value> = vec![
        json!("\u{0}"),
        json!("a\u{0}b"),
        json!("\u{7}"),
        json!(-1),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e300),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!({"name": "\u{0}"}),
        json!("x".repeat(3_000)),
        json!("x".repeat(1_000_000)),
    ];
    let bodies = [
        (
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": {"name": "you"}}),
        ),
        (
            "/api/v1/programs",
            json!({"name": "api_corpus", "function_name": "hello_world"}),
        ),
    ];
    for (path, good) in bodies {
        let fields: Vec<String> = good.as_object().unwrap().keys().cloned().collect();
        for field in fields {
            for value in &values {
                let mut body = good.clone();
                body[&field] = value.clone();
                let response = app
                    .client
                    .post(format!("{}{path}", app.address))
                    .header("Origin", app.address.clone())
                    .header("X-CSRF-Token", token.clone())
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                assert!(status < 500, "POST {path} {field}={value:.40}: {status}");
                if value.to_string().contains("\\u0000") && value.to_string().len() < 100 {
                    assert_eq!(status, 400, "POST {path} {field}={value}");
                }
            }
        }
    }
    for query in [
        "status=%00",
        "program=%00",
        "page=-1",
        "page=99999999999999999999",
        "status=done",
    ] {
        let response = app.get(&format!("/api/v1/tasks?{query}")).await;
        assert!(
            response.status().as_u16() < 500,
            "GET /api/v1/tasks?{query}"
        );
    }
    for search in [
        r#"{"a":"\u0000"}"#,
        r#"{"a\u0000":1}"#,
        r#"{"a":["x\u0000"]}"#,
    ] {
        let query = encode(&[("q", search.as_bytes().to_vec())]);
        let response = app.get(&format!("/api/v1/tasks?{query}")).await;
        assert_eq!(
            response.status().as_u16(),
            400,
            "GET /api/v1/tasks?q={search}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_input", "{error}");
    }
    // Every type actix's Json extractor reads is judged like application/json.
    for content_type in [
        "text/json",
        "application/merge-patch+json",
        "Application/JSON",
    ] {
        let response = app
            .client
            .post(format!("{}/api/v1/tasks", app.address))
            .header("Origin", app.address.clone())
            .header("X-CSRF-Token", token.clone())
            .header("Content-Type", content_type)
            .body(r#"{"program": "hello_world", "parameters": {"name": "a\u0000b"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "POST as {content_type}");
    }
    for path in ["/api/v1/tasks/%00", "/api/v1/tasks/-1", "/api/v1/tasks/abc"] {
        let response = app.get(path).await;
        assert!(response.status().as_u16() < 500, "GET {path}");
    }
}
