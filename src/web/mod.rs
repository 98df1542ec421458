//! HTTP: routes, page layout, errors. Handlers stay thin: parse, call the domain, render.

pub mod api;
pub mod audit;
pub mod auth;
pub mod chart;
pub mod contrast;
pub mod cover;
pub mod csrf;
pub mod engine_options;
pub mod error;
mod error_page;
pub mod flash;
pub mod forms;
mod input_guard;
pub mod layout;
pub mod metrics;
pub mod params;
pub mod reads;
pub mod result_view;
pub(crate) mod routes;
pub mod session_end;
pub mod session_store;
pub mod state;
pub mod task_query;
pub mod workflow_svg;

use std::net::TcpListener;

use actix_files::Files;
use actix_session::{
    SessionMiddleware,
    config::{CookieContentSecurity, PersistentSession},
};
use actix_web::{
    App, HttpServer,
    body::MessageBody,
    cookie::{Key, SameSite, time::Duration as CookieDuration},
    dev::{Server, ServiceRequest, ServiceResponse},
    middleware::{self, Next, from_fn},
    web,
};
use tracing_actix_web::TracingLogger;

use crate::{
    config::Config,
    domain::accounts::sessions::SessionPolicy,
    web::{error::WebError, session_store::PgSessionStore},
};

pub use reads::{Reads, with_read_conn};
pub use state::{AppState, DATABASE_DEADLINE, with_conn, within_deadline};

/// Binds the routes to an already-bound listener (port 0 in tests). `cookie_key` signs the
/// session cookie; every node must use the same one (it is kept in the database).
pub fn server(
    listener: TcpListener,
    state: AppState,
    config: &Config,
    cookie_key: Key,
) -> std::io::Result<Server> {
    let static_dir = config.static_dir.clone();
    let session_store = PgSessionStore::new(state.pool.clone(), SessionPolicy::from(config));
    let cookie_lifetime = CookieDuration::hours(config.session_lifetime_hours as i64);
    let secure_cookies = config.secure_cookies;
    // With a listener of its own, the public port has no /metrics at all.
    let public_metrics = config.metrics_addr.is_none();
    let replicas = state.replicas.configured();
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(session_store.clone(), cookie_key.clone())
            .cookie_name(session_cookie_name(secure_cookies).to_owned())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(secure_cookies)
            // The token is not secret from its holder; signing stops tampering.
            .cookie_content_security(CookieContentSecurity::Signed)
            .session_lifecycle(PersistentSession::default().session_ttl(cookie_lifetime))
            .build();
        // Middleware runs bottom-up: the request is counted and logged, refusals are recorded,
        // it gets its headers, is checked for cross-site origin and for unsafe input, then finds its
        // session. With replicas, the answer to a state-changing request marks its browser for
        // the primary (`reads::remember_writes`).
        App::new()
            .wrap(sessions)
            .wrap(middleware::Condition::new(
                replicas,
                from_fn(reads::remember_writes),
            ))
            .wrap(from_fn(session_store_unavailable))
            .wrap(from_fn(input_guard::reject_unsafe_input))
            .wrap(from_fn(reject_cross_site))
            .wrap(from_fn(no_store_for_private_pages))
            .wrap(security_headers(secure_cookies))
            .wrap(from_fn(audit::record_refusals))
            .wrap(TracingLogger::default())
            .wrap(from_fn(metrics::record_requests))
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(session_end::SessionCookie {
                name: session_cookie_name(secure_cookies),
                key: cookie_key.clone(),
            }))
            .service(Files::new("/static", &static_dir))
            .configure(api::configure)
            .configure(|cfg| {
                if public_metrics {
                    cfg.route("/metrics", web::get().to(metrics::scrape_for_staff));
                }
            })
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .shutdown_timeout(10)
    // Application::run_until_stopped handles SIGINT/SIGTERM (see there why).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// The session middleware fails the whole request when it cannot reach its store (the
/// database is down); that is a 503 with our page, like any other request during an outage,
/// not actix-session's bare 500. (Handler errors never get here: they are responses already.)
async fn session_store_unavailable(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let api = req.path().starts_with("/api/");
    next.call(req).await.map_err(|err| {
        let unavailable = WebError::unavailable(anyhow::anyhow!("session store: {err}"));
        // The API answers in its own shape (JSON), whatever refuses the call.
        if api {
            api::ApiError::from(unavailable).into()
        } else {
            unavailable.into()
        }
    })
}

/// The session cookie's name. Served over https (`BOOKSTORE_SECURE_COOKIES`), the `__Host-`
/// prefix makes browsers accept it only when Secure, for this host alone, on path `/`: no
/// sibling subdomain can plant or overwrite it.
fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-bookstore_session"
    } else {
        "bookstore_session"
    }
}

/// Paths whose pages are private whoever asks (the rest are private once a session exists).
const PRIVATE_PREFIXES: [&str; 8] = [
    "/admin",
    "/api/",
    "/cart",
    "/checkout",
    "/orders",
    "/account",
    "/login",
    // Its path holds a secret, and its form who the link is for.
    "/password-reset",
];

/// `Cache-Control: no-store` on every page that is someone's own: anything under a private
/// path, and any page for a visitor with a session (the header shows who is logged in, forms
/// carry their CSRF token). Going back after log-out or checkout then shows no stale page, and
/// no shared cache keeps one. Public pages for cookie-less visitors and static files are left
/// to the defaults, and so is a response its handler marked `public` (a book cover: the same
/// for everyone, whoever asks).
async fn no_store_for_private_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    let has_session = [true, false]
        .into_iter()
        .any(|secure| req.cookie(session_cookie_name(secure)).is_some());
    let private = !path.starts_with("/static/")
        && (has_session
            || PRIVATE_PREFIXES
                .iter()
                .any(|prefix| path.starts_with(prefix)));
    let mut response = next.call(req).await?;
    let marked_public = response
        .headers()
        .get(actix_web::http::header::CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|d| d.trim() == "public"));
    if private && !marked_public {
        response.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(response)
}

/// Sent with every response: no inline script, no framing, no MIME sniffing; served over
/// https, HSTS for a year.
fn security_headers(https: bool) -> middleware::DefaultHeaders {
    let headers = if https {
        middleware::DefaultHeaders::new().add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        middleware::DefaultHeaders::new()
    };
    headers
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Frame-Options", "DENY"))
}

/// Refuses state-changing requests that browsers mark as coming from another site.
pub async fn reject_cross_site(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !req.method().is_safe() && csrf::is_cross_site(req.request()) {
        // The API answers in its own shape (JSON), whatever refuses the call.
        if req.path().starts_with("/api/") {
            return Err(api::ApiError::csrf_rejected(
                "A cross-site call cannot change anything here.",
            )
            .into());
        }
        return Err(WebError::CsrfRejected.into());
    }
    next.call(req).await
}
