//! Reads that may come from a streaming replica (`DATABASE_REPLICA_URLS`): the catalog, search,
//! book pages, covers and the staff lists. Read-your-writes: any state-changing request marks
//! its browser "primary until T" (a cookie), and until then its reads go to the primary, so
//! whoever just wrote sees it at once. Everything else keeps `with_conn` (the primary).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{
    FromRequest, HttpRequest,
    body::MessageBody,
    cookie::{Cookie, SameSite, time::Duration as CookieDuration},
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use diesel::PgConnection;

use crate::{
    db::{PgPool, replicas::ReplicaLease},
    web::{AppState, error::WebError, state::within_deadline},
};

/// The cookie holding, in Unix milliseconds, until when this browser reads from the primary.
/// Not signed: forging it only sends one's own reads to the primary, as a POST would.
const PRIMARY_UNTIL: &str = "bookstore_primary_until";

/// Where this request's reads go: a healthy replica in turn, or the primary (none is healthy,
/// none is configured, or this browser wrote moments ago).
pub struct Reads {
    primary: PgPool,
    replica: Option<ReplicaLease>,
}

impl FromRequest for Reads {
    type Error = WebError;
    type Future = std::future::Ready<Result<Reads, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return std::future::ready(Err(WebError::internal(anyhow::anyhow!(
                "the app state is missing"
            ))));
        };
        let wrote_lately = req
            .cookie(PRIMARY_UNTIL)
            .and_then(|cookie| cookie.value().parse::<u128>().ok())
            .is_some_and(|until| until > now_ms());
        std::future::ready(Ok(Reads {
            primary: state.pool.clone(),
            replica: if wrote_lately {
                None
            } else {
                state.replicas.pick()
            },
        }))
    }
}

/// Like `with_conn`, on the request's read connection. A replica that fails the read (down,
/// cut off, or a query cancelled by its replay) is set aside and the read is made again on the
/// primary, so a replica's trouble is never the visitor's: hence `Fn`, not `FnOnce`.
pub async fn with_read_conn<T, E, F>(reads: &Reads, work: F) -> Result<T, WebError>
where
    F: Fn(&mut PgConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<WebError> + Send + 'static,
{
    let primary = reads.primary.clone();
    let replica = reads.replica.clone();
    let work = web::block(move || {
        if let Some(replica) = replica {
            match replica.pool().get() {
                Ok(mut conn) => match work(&mut conn).map_err(Into::into) {
                    Ok(found) => return Ok(found),
                    Err(err @ (WebError::Unavailable(_) | WebError::Internal(_))) => {
                        replica.failed(&err)
                    }
                    Err(refused) => return Err(refused),
                },
                Err(err) => replica.failed(&err),
            }
        }
        let mut conn = primary.get().map_err(WebError::unavailable)?;
        work(&mut conn).map_err(Into::into)
    });
    within_deadline(work).await?.map_err(WebError::internal)?
}

/// Middleware (mounted when there are replicas): after a request that may have changed
/// something, its browser reads from the primary for `Replicas::primary_after_write`.
pub async fn remember_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let wrote = !req.method().is_safe();
    let marking = req
        .app_data::<web::Data<AppState>>()
        .map(|state| (state.replicas.primary_after_write(), state.secure_cookies));
    let mut response = next.call(req).await?;
    if let (true, Some((window, secure))) = (wrote, marking) {
        let cookie = primary_until_cookie(window, secure);
        // A response that cannot take the header still went out; its writer reads a replica.
        let _ = response.response_mut().add_cookie(&cookie);
    }
    Ok(response)
}

fn primary_until_cookie(window: Duration, secure: bool) -> Cookie<'static> {
    Cookie::build(PRIMARY_UNTIL, (now_ms() + window.as_millis()).to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(window.as_secs_f64().ceil() as i64))
        .finish()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}
