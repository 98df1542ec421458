//! `/readyz` beside `/healthz`: ready when the database answers, its migrations are this
//! build's and (on a node that runs tasks) the engine runs; otherwise 503 saying which.

use bookstore::config::Role;
use diesel::{RunQueryDsl, sql_query};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn json(app: &TestApp, base: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_web_node_is_ready_with_a_current_schema_and_no_engine() {
    let app = spawn_app().await;
    let (status, body) = json(&app, &app.address, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations"], "current");
    assert_eq!(body["engine"], "not on this node");
}

#[tokio::test]
async fn a_database_missing_a_migration_is_not_ready_and_says_which() {
    let app = spawn_app().await;
    app.db(|conn| {
        sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT max(version) FROM __diesel_schema_migrations)",
        )
        .execute(conn)
        .unwrap();
    })
    .await;
    let (status, body) = json(&app, &app.address, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    let migrations = body["migrations"].as_str().unwrap();
    assert!(migrations.starts_with("1 not run yet: "), "{migrations}");
    // Liveness stays cheap and says nothing about it.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[actix_web::test]
async fn a_node_with_an_engine_is_ready_while_it_runs_and_says_so_on_the_ops_listener_too() {
    let app = spawn_app_with(|config| {
        config.role = Role::All;
        config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let (status, body) = json(&app, &app.address, "/readyz").await;
    assert_eq!((status, body["engine"].as_str()), (200, Some("running")));
    let ops = app.metrics_address.clone().unwrap();
    let (status, body) = json(&app, &ops, "/readyz").await;
    assert_eq!((status, body["engine"].as_str()), (200, Some("running")));
    let (status, body) = json(&app, &ops, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}
