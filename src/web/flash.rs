//! Flash messages: set before a redirect, shown once by the next page (post/redirect/get).
//! Kept in the server-side session, so they survive the redirect on any node. A message may
//! carry one action: a link ("View cart") or a button that posts ("Undo").

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::web::layout::Flash;

const SESSION_KEY: &str = "flash";

/// What a message offers to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashAction {
    Link {
        label: String,
        href: String,
    },
    /// A button posting `fields` (and the page's CSRF token) to `action`: the undo of a change
    /// is itself a change, so never a link.
    Post {
        label: String,
        action: String,
        fields: Vec<(String, String)>,
    },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    level: String,
    text: String,
    action: Option<FlashAction>,
}

fn push(session: &Session, level: &'static str, text: String, action: Option<FlashAction>) {
    let mut flashes: Vec<Stored> = session.get(SESSION_KEY).ok().flatten().unwrap_or_default();
    flashes.push(Stored {
        level: level.to_owned(),
        text,
        action,
    });
    let _ = session.insert(SESSION_KEY, flashes);
}

pub fn success(session: &Session, text: impl Into<String>) {
    push(session, "success", text.into(), None);
}

/// A success message with something to do next.
pub fn success_with(session: &Session, text: impl Into<String>, action: FlashAction) {
    push(session, "success", text.into(), Some(action));
}

pub fn info(session: &Session, text: impl Into<String>) {
    push(session, "info", text.into(), None);
}

pub fn error(session: &Session, text: impl Into<String>) {
    push(session, "error", text.into(), None);
}

/// An error message with a way out (e.g. "Set it to 12").
pub fn error_with(session: &Session, text: impl Into<String>, action: FlashAction) {
    push(session, "error", text.into(), Some(action));
}

/// The pending messages, removed from the session.
pub fn take(session: &Session) -> Vec<Flash> {
    let flashes: Vec<Stored> = match session.remove_as(SESSION_KEY) {
        Some(Ok(flashes)) => flashes,
        _ => return Vec::new(),
    };
    flashes
        .into_iter()
        .map(|stored| Flash {
            level: match stored.level.as_str() {
                "success" => "success",
                "error" => "error",
                _ => "info",
            },
            text: stored.text,
            action: stored.action,
        })
        .collect()
}
