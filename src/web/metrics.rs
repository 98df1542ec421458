//! `/metrics`: what every request adds to the counters, and the scrape itself. With
//! `BOOKSTORE_METRICS_ADDR` the scrape has a listener of its own (keep it off the internet)
//! and the public port has no `/metrics`; without it the public port answers staff only (a
//! staff session or an API token), since queue sizes and error rates are nobody else's
//! business.

mod gauges;

use std::{net::TcpListener, time::Instant};

use actix_web::{
    App, HttpResponse, HttpServer,
    body::MessageBody,
    dev::{Server, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use crate::{
    db::PgPool,
    monitoring,
    tasks::engine::EngineAlive,
    web::{
        AppState,
        api::{ApiError, ApiStaff},
        error::WebError,
        routes::health,
        within_deadline,
    },
};

/// Counts every request by the route pattern it matched (`/books/{id}`; `unmatched` for a
/// path no route has) and its status, and times it. Outermost, so refusals count too.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    monitoring::http_request(&route, status.as_u16(), started.elapsed());
    response
}

/// `GET /metrics` on the public port: staff only.
pub async fn scrape_for_staff(
    state: web::Data<AppState>,
    _staff: ApiStaff,
) -> Result<HttpResponse, ApiError> {
    scrape(state.pool.clone()).await.map_err(ApiError::from)
}

async fn scrape(pool: PgPool) -> Result<HttpResponse, WebError> {
    let pool_for_gauges = pool.clone();
    let text = within_deadline(web::block(move || {
        let mut conn = pool.get().map_err(WebError::unavailable)?;
        // This process's counters, then the database's gauges.
        let mut text = monitoring::render();
        gauges::render(&mut conn, &pool_for_gauges, &mut text).map_err(WebError::from)?;
        Ok::<_, WebError>(text)
    }))
    .await?
    .map_err(WebError::internal)??;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// The operations listener (`BOOKSTORE_METRICS_ADDR`): `/metrics`, `/healthz` and `/readyz`
/// for whoever reaches the address, and nothing else. A worker-only node has no other HTTP.
pub fn server(
    listener: TcpListener,
    pool: PgPool,
    engine: Option<EngineAlive>,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        let (scrape_pool, live_pool, ready_pool) = (pool.clone(), pool.clone(), pool.clone());
        let engine = engine.clone();
        App::new()
            .route(
                "/metrics",
                web::get().to(move || scrape(scrape_pool.clone())),
            )
            .route(
                "/healthz",
                web::get().to(move || health::liveness(live_pool.clone())),
            )
            .route(
                "/readyz",
                web::get().to(move || health::readiness(ready_pool.clone(), engine.clone())),
            )
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .shutdown_timeout(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
