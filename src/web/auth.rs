//! Who is asking: extractors that resolve the session on every request. Above `csrf` and
//! `error`; `layout` uses it.
//! - [`Visitor`]: the logged-in user, if any;
//! - [`CurrentUser`]: a logged-in user, or a redirect to the log-in page and back;
//! - [`Staff`]: a staff user; customers get 403, anonymous visitors the log-in page.

use actix_session::{Session, SessionExt};
use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse,
    cookie::{Cookie, CookieJar, SameSite, time::Duration as CookieDuration},
    dev::Payload,
    web,
};
use futures_util::future::LocalBoxFuture;

use crate::ids::UserId;
use crate::{
    audit::AuditContext,
    domain::accounts::{self, User, devices::KnownDevice, sessions::USER_ID_KEY},
    web::{
        csrf,
        error::WebError,
        state::{AppState, with_conn},
    },
};

/// The visitor's account; resolved once per request and cached.
#[derive(Debug, Clone)]
pub struct Visitor(pub Option<User>);

impl FromRequest for Visitor {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if let Some(visitor) = req.extensions().get::<Visitor>() {
                return Ok(visitor.clone());
            }
            let session = req.get_session();
            // The session store only returns live sessions, so a user id here is current.
            let user = match session.get::<UserId>(USER_ID_KEY).ok().flatten() {
                None => None,
                Some(user_id) => {
                    let state = req
                        .app_data::<web::Data<AppState>>()
                        .expect("AppState is registered")
                        .clone();
                    with_conn(&state, move |conn| accounts::find_user(conn, user_id)).await?
                }
            };
            let visitor = Visitor(user);
            req.extensions_mut().insert(visitor.clone());
            Ok(visitor)
        })
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let visitor = Visitor::from_request(req, payload);
        let next = return_path(req);
        Box::pin(async move {
            match visitor.await? {
                Visitor(Some(user)) => Ok(CurrentUser(user)),
                Visitor(None) => Err(WebError::LoginRequired { next }),
            }
        })
    }
}

/// The client's address, as throttling and the audit log count it: the connection's peer (there
/// is no trusted proxy).
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
}

/// A logged-in staff user, and who that is for the audit log.
#[derive(Debug, Clone)]
pub struct Staff(pub User, pub AuditContext);

impl FromRequest for Staff {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        let address = client_address(req);
        Box::pin(async move {
            let CurrentUser(user) = user.await?;
            if user.is_staff() {
                let context = AuditContext::new(user.actor(), Some(address));
                Ok(Staff(user, context))
            } else {
                Err(WebError::Forbidden)
            }
        })
    }
}

/// Where to come back to after logging in: this page for a GET; for a form post, the page the
/// form was on (a POST cannot be replayed by a redirect).
fn return_path(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        return req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
    }
    let referer = req
        .headers()
        .get("referer")
        .and_then(|value| value.to_str().ok())
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.split_once('/'))
        .filter(|(host, _)| host.eq_ignore_ascii_case(req.connection_info().host()))
        .map(|(_, path)| format!("/{path}"));
    safe_next(referer.as_deref())
}

/// A `next` target that stays on this site: a local absolute path, or `/`. Anything else
/// (`https://evil.example`, `//evil.example`, `/\evil.example`) would be an open redirect.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Logs `user` in on this session: a new token (no session fixation), a new CSRF token, and,
/// when the session store saves it, the end of every earlier session of the user.
pub fn start_session(session: &Session, user: &User) -> Result<(), WebError> {
    session.renew();
    csrf::forget(session);
    session
        .insert(USER_ID_KEY, user.id)
        .map_err(WebError::internal)
}

/// Logs out: the session row is deleted (renew deletes the old token's row); the new,
/// anonymous session only carries the goodbye message.
pub fn end_session(session: &Session) {
    session.clear();
    session.renew();
}

/// The known-device cookie's name; over https `__Host-` prefixed like the session's.
fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-bookstore_device"
    } else {
        "bookstore_device"
    }
}

/// The account this browser has logged in to before, if its signed cookie says so.
pub fn known_device(req: &HttpRequest) -> Option<KnownDevice> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let name = device_cookie_name(state.secure_cookies);
    let mut jar = CookieJar::new();
    jar.add_original(req.cookie(name)?);
    let verified = jar.signed(&state.cookie_key).get(name)?;
    KnownDevice::parse(verified.value())
}

/// Marks this browser as one that logged in to the account (for a year): the throttle's
/// per-account ceiling will not slow it.
pub fn remember_device(state: &AppState, response: &mut HttpResponse, device: &KnownDevice) {
    let name = device_cookie_name(state.secure_cookies);
    let mut jar = CookieJar::new();
    jar.signed_mut(&state.cookie_key).add(
        Cookie::build(name, device.to_text())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.secure_cookies)
            .max_age(CookieDuration::days(365))
            .finish(),
    );
    if let Some(cookie) = jar.get(name) {
        let _ = response.add_cookie(cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/cart?x=1")), "/cart?x=1");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "cart",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
