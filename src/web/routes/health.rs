//! `/healthz` (liveness: cheap, the database answers) and `/readyz` (readiness, for load
//! balancers: the database answers, its schema is this build's, and a node that runs tasks
//! has its engine running). Both are also on the operations listener
//! (`BOOKSTORE_METRICS_ADDR`), the only HTTP a worker-only node has.

use actix_web::{HttpResponse, web};
use diesel::{RunQueryDsl, sql_query};
use serde_json::json;

use crate::{
    db::{self, PgPool},
    tasks::engine::EngineAlive,
    web::{AppState, error::WebError, within_deadline},
};

/// `GET /healthz`: 200 when the database answers, 503 when it does not. Load balancers and the
/// test harness poll it.
pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    liveness(state.pool.clone()).await
}

/// `GET /readyz`: 200 when this node can do its work, 503 saying what is wrong otherwise.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    readiness(state.pool.clone(), state.engine.clone()).await
}

pub async fn liveness(pool: PgPool) -> HttpResponse {
    match on_blocking_pool(pool, |conn| Ok(sql_query("SELECT 1").execute(conn)?)).await {
        Ok(_) => HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })),
        Err(err) => {
            tracing::warn!("health check failed: {err:?}");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "database": err.to_string() }))
        }
    }
}

/// `engine`: the node's engine when it runs tasks, `None` on a web-only node.
pub async fn readiness(pool: PgPool, engine: Option<EngineAlive>) -> HttpResponse {
    let (database, migrations) = match on_blocking_pool(pool, db::pending_migrations).await {
        Ok(pending) if pending.is_empty() => ("ok".to_owned(), "current".to_owned()),
        Ok(pending) => (
            "ok".to_owned(),
            format!("{} not run yet: {}", pending.len(), pending.join(", ")),
        ),
        Err(err) => (err.to_string(), "unknown".to_owned()),
    };
    let engine_state = match &engine {
        None => "not on this node",
        Some(engine) if engine.is_running() => "running",
        Some(_) => "stopped",
    };
    let ready = database == "ok" && migrations == "current" && engine_state != "stopped";
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "migrations": migrations,
        "engine": engine_state,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        tracing::warn!("readiness check failed: {body}");
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn on_blocking_pool<T: Send + 'static>(
    pool: PgPool,
    work: impl FnOnce(&mut diesel::PgConnection) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, WebError> {
    within_deadline(web::block(move || {
        let mut conn = pool.get().map_err(WebError::unavailable)?;
        work(&mut conn).map_err(WebError::unavailable)
    }))
    .await?
    .map_err(WebError::internal)?
}
