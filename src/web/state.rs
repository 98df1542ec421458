//! What every handler reaches: the app's state, and the way to the database from a handler
//! (on the blocking pool, within a deadline). Below every other web module.

use actix_web::{cookie::Key, web};
use diesel::PgConnection;

use crate::{
    db::{PgPool, replicas::Replicas},
    domain::accounts::throttle::ThrottlePolicy,
    tasks::engine::EngineAlive,
    tasks::program::ProgramSettings,
    web::error::WebError,
};

/// What every handler can reach. Nothing here is per-node state: sessions and tasks live in
/// PostgreSQL, so any node can serve any request.
#[derive(Clone)]
pub struct AppState {
    /// The primary: every write, and every read that must see the latest writes.
    pub pool: PgPool,
    /// Streaming replicas for the reads that may lag (`web::reads`); maybe none.
    pub replicas: Replicas,
    pub throttle: ThrottlePolicy,
    /// Books per catalog page.
    pub page_size: i64,
    /// The import folder and its size limit (uploads go there).
    pub programs: ProgramSettings,
    /// Served over https: cookies are Secure and `__Host-` prefixed.
    pub secure_cookies: bool,
    /// Signs the cookies (the session's, the known device's); the same on every node.
    pub cookie_key: Key,
    /// This node's task engine, when it runs one (`/readyz`).
    pub engine: Option<EngineAlive>,
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
    // The request's span goes along to the blocking thread: its logs name the request, and a
    // task queued there carries the request's trace.
    let span = tracing::Span::current();
    let work = web::block(move || {
        let _in_request = span.enter();
        let mut conn = pool.get().map_err(WebError::unavailable)?;
        work(&mut conn).map_err(Into::into)
    });
    within_deadline(work).await?.map_err(WebError::internal)?
}

/// How long a request waits for the database before it answers 503. A hung server (stopped,
/// or cut off by the network) answers nothing at all; the page must not hang with it. The
/// blocking call itself goes on until the server answers or its connection breaks, then its
/// connection returns to the pool: the pool recovers by itself.
pub const DATABASE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

/// `work` (a database call on the blocking pool), or "unavailable" after [`DATABASE_DEADLINE`].
pub async fn within_deadline<T>(work: impl std::future::Future<Output = T>) -> Result<T, WebError> {
    tokio::time::timeout(DATABASE_DEADLINE, work)
        .await
        .map_err(|_| {
            WebError::unavailable(anyhow::anyhow!(
                "the database did not answer within {} s",
                DATABASE_DEADLINE.as_secs()
            ))
        })
}
