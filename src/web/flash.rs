//! Flash messages: set before a redirect, shown once by the next page (post/redirect/get).
//! Kept in the server-side session, so they survive the redirect on any node.

use actix_session::Session;

use crate::web::layout::Flash;

const SESSION_KEY: &str = "flash";

fn push(session: &Session, level: &'static str, text: impl Into<String>) {
    let mut flashes: Vec<(String, String)> =
        session.get(SESSION_KEY).ok().flatten().unwrap_or_default();
    flashes.push((level.to_owned(), text.into()));
    let _ = session.insert(SESSION_KEY, flashes);
}

pub fn success(session: &Session, text: impl Into<String>) {
    push(session, "success", text);
}

pub fn info(session: &Session, text: impl Into<String>) {
    push(session, "info", text);
}

pub fn error(session: &Session, text: impl Into<String>) {
    push(session, "error", text);
}

/// The pending messages, removed from the session.
pub fn take(session: &Session) -> Vec<Flash> {
    let flashes: Vec<(String, String)> = match session.remove_as(SESSION_KEY) {
        Some(Ok(flashes)) => flashes,
        _ => return Vec::new(),
    };
    flashes
        .into_iter()
        .map(|(level, text)| Flash {
            level: match level.as_str() {
                "success" => "success",
                "error" => "error",
                _ => "info",
            },
            text,
        })
        .collect()
}
