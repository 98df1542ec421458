use actix_web::{HttpResponse, web};
use diesel::{RunQueryDsl, sql_query};
use serde_json::json;

use crate::web::{AppState, with_conn};

/// `GET /healthz`: 200 when the database answers, 503 when it does not. Load balancers and the
/// test harness poll it.
pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    match with_conn(&state, |conn| sql_query("SELECT 1").execute(conn)).await {
        Ok(_) => HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })),
        Err(err) => {
            tracing::warn!("health check failed: {err:?}");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "database": err.to_string() }))
        }
    }
}
