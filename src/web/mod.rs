//! HTTP: routes, page layout, errors. Handlers stay thin: parse, call the domain, render.

pub mod error;
pub mod layout;
mod routes;

use std::net::TcpListener;

use actix_files::Files;
use actix_web::{App, HttpServer, dev::Server, middleware, web};
use diesel::PgConnection;
use tracing_actix_web::TracingLogger;

use crate::{config::Config, db::PgPool, web::error::WebError};

/// What every handler can reach. Nothing here is per-node state: sessions and tasks live in
/// PostgreSQL, so any node can serve any request.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// Binds the routes to an already-bound listener (port 0 in tests).
pub fn server(listener: TcpListener, state: AppState, config: &Config) -> std::io::Result<Server> {
    let static_dir = config.static_dir.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(security_headers())
            .wrap(TracingLogger::default())
            .app_data(web::Data::new(state.clone()))
            .service(Files::new("/static", &static_dir))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Sent with every response: no inline script, no framing, no MIME sniffing.
fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Frame-Options", "DENY"))
}

/// Runs database work on the blocking thread pool. Taking a pooled connection can block too
/// (the pool may be exhausted or the server down), so it happens inside the closure.
pub async fn with_conn<T, E, F>(state: &AppState, work: F) -> Result<T, WebError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<WebError> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(WebError::unavailable)?;
        work(&mut conn).map_err(Into::into)
    })
    .await
    .map_err(WebError::internal)?
}
