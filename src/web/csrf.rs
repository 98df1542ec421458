//! CSRF protection, two layers:
//! - a synchronizer token kept in the server-side session and sent in every form
//!   (`<input type="hidden" name="csrf_token">`); [`CsrfForm`] checks it before the handler
//!   sees the form, so no handler can forget. A visitor without a session (looking at the
//!   log-in or registration form) gets the token in a cookie of its own instead
//!   ([`FormToken`]): nothing is stored on the server for someone who only looks;
//! - [`is_cross_site`]: state-changing requests that a browser marks as cross-site
//!   (`Sec-Fetch-Site`, or an `Origin` of another host) are refused outright (by the
//!   middleware `web::reject_cross_site`, which answers the API in its own shape).
//!
//! Above `error` only; `auth` and `layout` use it.

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::web::{error::WebError, state::AppState};

const SESSION_KEY: &str = "csrf";

/// This session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
        return token;
    }
    let token = Uuid::new_v4().simple().to_string();
    // Inserting a String into the session cannot fail to serialize.
    let _ = session.insert(SESSION_KEY, &token);
    token
}

/// Forget the token (at log-in: the new session gets a new one).
pub fn forget(session: &Session) {
    session.remove(SESSION_KEY);
}

/// Checks a submitted token against the session's (forms use [`CsrfForm`]; uploads call this).
pub fn verify(session: &Session, submitted: &str) -> Result<(), WebError> {
    match session.get::<String>(SESSION_KEY) {
        Ok(Some(expected)) if constant_time_eq(expected.as_bytes(), submitted.as_bytes()) => Ok(()),
        _ => Err(WebError::CsrfRejected),
    }
}

/// The cookie that carries a visitor's token before they have a session. Over https it has
/// the `__Host-` prefix, so no other host can plant one.
fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-bookstore_csrf"
    } else {
        "bookstore_csrf"
    }
}

fn secure_cookies(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.secure_cookies)
}

/// The session's token, or else the visitor's token cookie: either one may sign a form.
fn verify_request(req: &HttpRequest, submitted: &str) -> Result<(), WebError> {
    if verify(&req.get_session(), submitted).is_ok() {
        return Ok(());
    }
    match req.cookie(cookie_name(secure_cookies(req))) {
        Some(cookie)
            if cookie.value().len() == 64
                && constant_time_eq(cookie.value().as_bytes(), submitted.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(WebError::CsrfRejected),
    }
}

/// The token for the forms of a page that anonymous visitors see (log-in, registration): the
/// session's when there is one, else the visitor's token cookie, made here if missing. Send
/// the page with [`FormToken::respond`], which sets the cookie when it is new.
pub struct FormToken {
    pub token: String,
    new_cookie: Option<actix_web::cookie::Cookie<'static>>,
}

impl FormToken {
    pub fn respond(self, mut response: actix_web::HttpResponse) -> actix_web::HttpResponse {
        if let Some(cookie) = self.new_cookie {
            let _ = response.add_cookie(&cookie);
        }
        response
    }
}

impl FromRequest for FormToken {
    type Error = WebError;
    type Future = std::future::Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let session = req.get_session();
        if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
            return std::future::ready(Ok(FormToken {
                token,
                new_cookie: None,
            }));
        }
        let secure = secure_cookies(req);
        let name = cookie_name(secure);
        if let Some(cookie) = req.cookie(name).filter(|c| c.value().len() == 64) {
            return std::future::ready(Ok(FormToken {
                token: cookie.value().to_owned(),
                new_cookie: None,
            }));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        let token = hex::encode(bytes);
        let cookie = actix_web::cookie::Cookie::build(name, token.clone())
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(actix_web::cookie::SameSite::Strict)
            .finish();
        std::future::ready(Ok(FormToken {
            token,
            new_cookie: Some(cookie),
        }))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct TokenField {
    csrf_token: String,
}

/// A url-encoded form whose `csrf_token` field matched the session's token.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body
                .await
                .map_err(|err| WebError::BadRequest(err.to_string()))?;
            // The token is checked before anything else in the form is looked at.
            let field: TokenField =
                serde_urlencoded::from_bytes(&body).map_err(|_| WebError::CsrfRejected)?;
            verify_request(&req, &field.csrf_token)?;
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|err| WebError::BadRequest(format!("The form is incomplete: {err}")))?;
            Ok(CsrfForm(form))
        })
    }
}

/// Whether a browser marks the request as coming from another site.
pub fn is_cross_site(req: &HttpRequest) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None => false,
        Some(origin) => {
            let host = req.connection_info().host().to_owned();
            origin
                .split_once("://")
                .is_none_or(|(_, origin_host)| !origin_host.eq_ignore_ascii_case(&host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn cross_site_requests_are_recognised() {
        let req = |headers: &[(&str, &str)]| {
            let mut builder = TestRequest::post().insert_header(("host", "shop.example"));
            for header in headers {
                builder = builder.insert_header(*header);
            }
            builder.to_http_request()
        };
        assert!(!is_cross_site(&req(&[])));
        assert!(!is_cross_site(&req(&[("origin", "https://shop.example")])));
        assert!(is_cross_site(&req(&[("origin", "https://evil.example")])));
        assert!(is_cross_site(&req(&[("origin", "null")])));
        assert!(!is_cross_site(&req(&[("sec-fetch-site", "same-origin")])));
        assert!(is_cross_site(&req(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://shop.example")
        ])));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
