//! Flash messages: set before a redirect, shown once by the next page (post/redirect/get).
//! Kept in the server-side session, so they survive the redirect on any node. A message may
//! carry one action: a link ("View cart") or a button that posts ("Undo").

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::ids::TaskId;
use crate::tasks::status::TaskStatus;

const SESSION_KEY: &str = "flash";

/// A message as the page shows it.
#[derive(Debug, Clone)]
pub struct Flash {
    /// `info`, `success` or `error`: a CSS class.
    pub level: &'static str,
    pub text: String,
    pub action: Option<FlashAction>,
    /// The task (and status) the message is about, for the live updates.
    pub about: Option<AboutTask>,
}

/// A flash message's button: (label, form action, hidden fields).
pub type PostAction<'a> = (&'a str, &'a str, &'a [(String, String)]);

impl Flash {
    /// The action's (label, href) when it is a link.
    pub fn link(&self) -> Option<(&str, &str)> {
        match &self.action {
            Some(FlashAction::Link { label, href }) => Some((label, href)),
            _ => None,
        }
    }

    /// The action's (label, form action, hidden fields) when it is a button that posts.
    pub fn post(&self) -> Option<PostAction<'_>> {
        match &self.action {
            Some(FlashAction::Post {
                label,
                action,
                fields,
            }) => Some((label, action, fields)),
            _ => None,
        }
    }
}

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

/// A message about one task in one status ("Task #6 queued."): the task page's live updates
/// replace it once the task has moved on, so it never contradicts the status shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AboutTask {
    pub id: TaskId,
    pub status: TaskStatus,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    level: String,
    text: String,
    action: Option<FlashAction>,
    #[serde(default)]
    about: Option<AboutTask>,
}

fn push(session: &Session, level: &'static str, text: String, action: Option<FlashAction>) {
    push_stored(
        session,
        Stored {
            level: level.to_owned(),
            text,
            action,
            about: None,
        },
    );
}

fn push_stored(session: &Session, stored: Stored) {
    let mut flashes: Vec<Stored> = session.get(SESSION_KEY).ok().flatten().unwrap_or_default();
    flashes.push(stored);
    let _ = session.insert(SESSION_KEY, flashes);
}

/// "Task #6 queued.": a success message that stands while the task is queued.
pub fn task_queued(session: &Session, text: impl Into<String>, id: TaskId) {
    push_stored(
        session,
        Stored {
            level: "success".to_owned(),
            text: text.into(),
            action: None,
            about: Some(AboutTask {
                id,
                status: TaskStatus::Scheduled,
            }),
        },
    );
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
            about: stored.about,
        })
        .collect()
}
