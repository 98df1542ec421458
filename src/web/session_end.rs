//! Telling a browser why its session ended. The one-session rule (a log-in elsewhere) and a
//! changed password end sessions on other devices; `ended_sessions` keeps why under the token's
//! hash, and the next page the browser still holding that token opens says so, once.

use actix_web::{
    HttpRequest,
    cookie::{CookieJar, Key},
};
use chrono::{DateTime, Utc};

use crate::domain::accounts::sessions::{SessionEnd, SessionToken};

/// The session cookie's name and signing key, so a page can read the token of a session that
/// no longer exists (actix-session only hands out live ones).
#[derive(Clone)]
pub struct SessionCookie {
    pub name: &'static str,
    pub key: Key,
}

impl SessionCookie {
    /// The token in the request's session cookie, when its signature is ours.
    pub fn token_in(&self, req: &HttpRequest) -> Option<SessionToken> {
        let mut jar = CookieJar::new();
        jar.add_original(req.cookie(self.name)?);
        let verified = jar.signed(&self.key).get(self.name)?;
        SessionToken::parse(verified.value())
    }
}

/// What the browser whose session ended is told.
pub fn message(end: SessionEnd, at: DateTime<Utc>) -> String {
    let when = at.format("%H:%M UTC on %Y-%m-%d");
    match end {
        SessionEnd::LoggedInElsewhere => format!(
            "You were logged out because this account logged in on another browser or device \
             at {when}. An account has one session at a time: logging in here ends that one."
        ),
        SessionEnd::PasswordChanged => format!(
            "You were logged out because this account's password was changed at {when}. Log in \
             with the new password."
        ),
    }
}
