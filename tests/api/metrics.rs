//! `/metrics`: refused to all but staff on the public port, served to anyone on its own
//! listener; the text parses as Prometheus' format, every series the README names is there,
//! and the counters move with a request, a task and a checkout. Counters are the process's
//! (other tests add to them too), so the tests compare before and after and ask for "at
//! least one more".

use std::collections::HashMap;

use bookstore::config::Role;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, wait_until};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");
const ALICE: (&str, &str) = ("alice", "alice-reads-books");

/// One scrape: each sample by its name and sorted labels (`name{a="x",b="y"}`).
#[derive(Debug)]
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// Parses the text format: `# HELP`/`# TYPE` lines and `name{labels} value` samples.
    fn parse(text: &str) -> Scrape {
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line}"));
            let key = match series.split_once('{') {
                None => series.to_owned(),
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels end with }");
                    let mut pairs: Vec<(String, String)> = split_labels(labels)
                        .into_iter()
                        .map(|pair| {
                            let (key, value) = pair.split_once('=').expect("label=value");
                            let value = value
                                .strip_prefix('"')
                                .and_then(|v| v.strip_suffix('"'))
                                .expect("a quoted label value");
                            (key.to_owned(), value.to_owned())
                        })
                        .collect();
                    pairs.sort();
                    let labels: Vec<String> =
                        pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    format!("{name}{{{}}}", labels.join(","))
                }
            };
            assert!(samples.insert(key.clone(), value).is_none(), "{key} twice");
        }
        Scrape { samples, types }
    }

    /// A sample, labels in any order (`name`, `[("route", "/books")]`); 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut labels = labels.to_vec();
        labels.sort();
        let key = if labels.is_empty() {
            name.to_owned()
        } else {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", labels.join(","))
        };
        self.samples.get(&key).copied()
    }

    /// A sample of `name` (of a histogram, its `_count`).
    fn has_series(&self, name: &str) -> bool {
        let name = match self.types.get(name).map(String::as_str) {
            Some("histogram") => format!("{name}_count"),
            _ => name.to_owned(),
        };
        self.samples
            .keys()
            .any(|key| *key == name || key.starts_with(&format!("{name}{{")))
    }
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts
}

async fn scrape(app: &TestApp, token: &str) -> Scrape {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    Scrape::parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn the_public_port_serves_metrics_to_staff_only() {
    let app = spawn_app_with(|_| {}).await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), 401);
    app.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(app.get("/metrics").await.status(), 403, "a customer");
    let staff = app.another_browser();
    staff.log_in_as(STAFF.0, STAFF.1).await;
    let page = staff.page("/metrics").await;
    assert!(page.contains("# TYPE bookstore_tasks gauge"), "{page}");
}

#[actix_web::test]
async fn metrics_parse_and_move_with_requests_tasks_and_checkouts() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let token = app.create_api_token("prometheus").await;
    let before = scrape(&app, &token).await;

    // Every series the README lists, with its type.
    for (name, kind) in [
        ("bookstore_http_requests_total", "counter"),
        ("bookstore_http_request_duration_seconds", "histogram"),
        ("bookstore_tasks", "gauge"),
        ("bookstore_queue_oldest_seconds", "gauge"),
        ("bookstore_db_pool_connections", "gauge"),
        ("bookstore_db_pool_max_connections", "gauge"),
    ] {
        assert_eq!(
            before.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
        assert!(before.has_series(name), "no {name} in {before:?}");
    }
    assert_eq!(before.value("bookstore_db_pool_max_connections", &[]), 4.0);
    assert!(
        before
            .get("bookstore_db_pool_connections", &[("state", "idle")])
            .is_some()
    );
    assert!(
        before
            .get(
                "bookstore_queue_oldest_seconds",
                &[("program", "hello_world")]
            )
            .is_some(),
        "every program has a queue age"
    );

    // A request counts under its route's pattern, not its path.
    let book_page = [("route", "/books/{id}"), ("status", "200")];
    assert_eq!(app.get("/books/1").await.status(), 200);
    // A task runs and is counted by its program's name and outcome (a program named apart
    // from the function it runs: the label is the program's).
    let registered = app
        .client
        .post(format!("{}/api/v1/programs", app.address))
        .bearer_auth(&token)
        .json(&json!({"name": "greet_shoppers", "function_name": "hello_world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let queued = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .bearer_auth(&token)
        .json(&json!({"program": "greet_shoppers", "parameters": {"name": "metrics"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 201);
    let id = queued.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    wait_until(10, "the task to finish", || {
        let app = app.clone();
        async move { app.task_status(bookstore::ids::TaskId(id)).await == "finished" }
    })
    .await;
    // A checkout counts by its result.
    let shopper = app.another_browser();
    shopper.log_in_as(ALICE.0, ALICE.1).await;
    let added = shopper
        .submit(
            "/books/1",
            "/cart/items",
            &[("book_id", "1"), ("quantity", "1")],
        )
        .await;
    assert_eq!(added.status(), 303);
    let key = uuid::Uuid::new_v4().to_string();
    let placed = shopper
        .submit("/cart", "/checkout", &[("idempotency_key", &key)])
        .await;
    assert_eq!(placed.status(), 303);

    let after = scrape(&app, &token).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert!(moved("bookstore_http_requests_total", &book_page) >= 1.0);
    assert!(
        moved(
            "bookstore_http_request_duration_seconds_count",
            &[("route", "/books/{id}")]
        ) >= 1.0
    );
    assert!(
        !after
            .samples
            .keys()
            .any(|key| key.contains("route=\"/books/1\"")),
        "raw paths never become labels"
    );
    let finished = [("program", "greet_shoppers"), ("outcome", "finished")];
    assert!(moved("bookstore_task_runs_total", &finished) >= 1.0);
    assert!(
        moved(
            "bookstore_task_duration_seconds_count",
            &[("program", "greet_shoppers")]
        ) >= 1.0
    );
    assert!(moved("bookstore_checkouts_total", &[("result", "placed")]) >= 1.0);
    // The gauges are this database's: exactly the one task, now finished.
    assert_eq!(
        after.value(
            "bookstore_tasks",
            &[("program", "greet_shoppers"), ("status", "finished")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_metrics_address_of_its_own_serves_anyone_and_the_public_port_has_none() {
    let app = spawn_app_with(|config| {
        config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let scraped = reqwest::get(format!("{metrics}/metrics")).await.unwrap();
    assert_eq!(scraped.status(), 200);
    let scrape = Scrape::parse(&scraped.text().await.unwrap());
    assert!(scrape.has_series("bookstore_tasks"));
    assert_eq!(
        reqwest::get(format!("{metrics}/books"))
            .await
            .unwrap()
            .status(),
        404
    );

    app.log_in_as(STAFF.0, STAFF.1).await;
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the public port"
    );
}
