//! The audit log: who did what, when, kept in PostgreSQL (`audit_events`) and written to the
//! log as structured lines (target `audit`).
//!
//! One idiom: the domain function that makes a change records it, inside the change's own
//! transaction, from an [`AuditContext`] its caller passes (`tokens::revoke(conn, &context,
//! ..)`), so a change and its record commit or roll back together and no handler opens a
//! transaction. The task operations are SQL functions that psql users call too, so they record
//! their own events (`audit_record`) under the transaction's actor, which the Rust side names
//! first with [`act_as`] (in psql it is the database user). Everything else calls [`record`].
//! Refused requests change nothing; they have [`record_refusal`].
//!
//! It sits below both the domain and the task engine (each records its own changes here), so it
//! uses only `db` and `ids`.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Nullable, Text},
};
use serde_json::Value;

use crate::{
    db::{
        counting::{self, Count},
        schema::audit_events,
    },
    ids::AuditEventId,
};

/// What happened. The text form (`task.queued`) is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    TaskQueued,
    TaskCancelled,
    TaskRetried,
    TaskDeleted,
    /// A batch of tasks (`run_batch`).
    BatchQueued,
    ProgramRegistered,
    /// A program's priority or limits changed (`set_program_options`).
    ProgramOptionsSet,
    ProgramScheduled,
    ProgramPaused,
    ProgramResumed,
    ProgramEnabled,
    ProgramDisabled,
    BookCreated,
    BookEdited,
    BookHidden,
    BookUnhidden,
    TokenCreated,
    TokenRevoked,
    StaffGranted,
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    PasswordChanged,
    PasswordResetIssued,
    PasswordReset,
    /// Someone asked for a reset link by mail ("Forgot your password?") for this account.
    PasswordResetRequested,
    /// A new e-mail address was asked for: a confirmation link goes to it.
    EmailChangeRequested,
    /// The link sent to an address was used: it is the account's address now.
    EmailConfirmed,
    /// Staff sent a failed mail again (a new `send_mail` task for it).
    MailRetried,
    AccessRefused,
    CsrfRefused,
    /// An API call with a token that is unknown, revoked or expired.
    TokenRefused,
}

impl AuditAction {
    pub const ALL: [AuditAction; 32] = [
        AuditAction::TaskQueued,
        AuditAction::TaskCancelled,
        AuditAction::TaskRetried,
        AuditAction::TaskDeleted,
        AuditAction::BatchQueued,
        AuditAction::ProgramRegistered,
        AuditAction::ProgramOptionsSet,
        AuditAction::ProgramScheduled,
        AuditAction::ProgramPaused,
        AuditAction::ProgramResumed,
        AuditAction::ProgramEnabled,
        AuditAction::ProgramDisabled,
        AuditAction::BookCreated,
        AuditAction::BookEdited,
        AuditAction::BookHidden,
        AuditAction::BookUnhidden,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::StaffGranted,
        AuditAction::LoginSucceeded,
        AuditAction::LoginFailed,
        AuditAction::LoginThrottled,
        AuditAction::PasswordChanged,
        AuditAction::PasswordResetIssued,
        AuditAction::PasswordReset,
        AuditAction::PasswordResetRequested,
        AuditAction::EmailChangeRequested,
        AuditAction::EmailConfirmed,
        AuditAction::MailRetried,
        AuditAction::AccessRefused,
        AuditAction::CsrfRefused,
        AuditAction::TokenRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TaskQueued => "task.queued",
            AuditAction::TaskCancelled => "task.cancelled",
            AuditAction::TaskRetried => "task.retried",
            AuditAction::TaskDeleted => "task.deleted",
            AuditAction::BatchQueued => "batch.queued",
            AuditAction::ProgramRegistered => "program.registered",
            AuditAction::ProgramOptionsSet => "program.options",
            AuditAction::ProgramScheduled => "program.scheduled",
            AuditAction::ProgramPaused => "program.paused",
            AuditAction::ProgramResumed => "program.resumed",
            AuditAction::ProgramEnabled => "program.enabled",
            AuditAction::ProgramDisabled => "program.disabled",
            AuditAction::BookCreated => "book.created",
            AuditAction::BookEdited => "book.edited",
            AuditAction::BookHidden => "book.hidden",
            AuditAction::BookUnhidden => "book.unhidden",
            AuditAction::TokenCreated => "token.created",
            AuditAction::TokenRevoked => "token.revoked",
            AuditAction::StaffGranted => "staff.granted",
            AuditAction::LoginSucceeded => "login.succeeded",
            AuditAction::LoginFailed => "login.failed",
            AuditAction::LoginThrottled => "login.throttled",
            AuditAction::PasswordChanged => "password.changed",
            AuditAction::PasswordResetIssued => "password.reset_issued",
            AuditAction::PasswordReset => "password.reset",
            AuditAction::PasswordResetRequested => "password.reset_requested",
            AuditAction::EmailChangeRequested => "email.change_requested",
            AuditAction::EmailConfirmed => "email.confirmed",
            AuditAction::MailRetried => "mail.retried",
            AuditAction::AccessRefused => "access.refused",
            AuditAction::CsrfRefused => "csrf.refused",
            AuditAction::TokenRefused => "token.refused",
        }
    }

    pub fn parse(text: &str) -> Option<AuditAction> {
        AuditAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    /// Security events: worth a warning in the log.
    pub fn is_security_event(self) -> bool {
        matches!(
            self,
            AuditAction::LoginFailed
                | AuditAction::LoginThrottled
                | AuditAction::AccessRefused
                | AuditAction::CsrfRefused
                | AuditAction::TokenRefused
        )
    }
}

/// Who acted. Its text form is what `audit_events.actor` and `tasks.queued_by` hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Staff(String),
    Customer(String),
    /// An API token: its name and its owner's login.
    Token {
        name: String,
        owner: String,
    },
    /// Someone not logged in (a failed log-in, a refused form).
    Visitor,
    Schedule,
    /// The `bookstore` command line (create-staff, reset-password).
    Cli,
    /// A background task acting on its own (the mail program making a reset link).
    Task(crate::ids::TaskId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Staff(login) => write!(f, "staff {login}"),
            Actor::Customer(login) => write!(f, "customer {login}"),
            Actor::Token { name, owner } => write!(f, "token {name} ({owner})"),
            Actor::Visitor => f.write_str("visitor"),
            Actor::Schedule => f.write_str("schedule"),
            Actor::Cli => f.write_str("command line"),
            Actor::Task(id) => write!(f, "task {id}"),
        }
    }
}

/// Who acted and from where (the client address, for web requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    pub actor: Actor,
    pub address: Option<String>,
}

impl AuditContext {
    pub fn new(actor: Actor, address: Option<String>) -> AuditContext {
        AuditContext { actor, address }
    }
}

/// Names the actor of the current transaction for the SQL operations' own events (and
/// `tasks.queued_by`). Transaction-local: call it inside the transaction that acts.
pub fn act_as(conn: &mut PgConnection, context: &AuditContext) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT set_config('bookstore.actor', $1, true), \
                set_config('bookstore.address', coalesce($2, ''), true)",
    )
    .bind::<Text, _>(context.actor.to_string())
    .bind::<Nullable<Text>, _>(context.address.as_deref())
    .execute(conn)
    .map(drop)
}

/// Records an event inside the transaction of the change it describes, and logs it. Called
/// by the domain function that makes the change, never by a handler: the handler calls that
/// function.
pub(crate) fn record(
    conn: &mut PgConnection,
    context: &AuditContext,
    action: AuditAction,
    subject: &str,
    details: Value,
) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::actor.eq(context.actor.to_string()),
            audit_events::action.eq(action.as_str()),
            audit_events::subject.eq(truncate(subject, 300)),
            audit_events::details.eq(details),
            audit_events::address.eq(context.address.as_deref().map(|a| truncate(a, 100))),
        ))
        .execute(conn)?;
    log(context, action, subject);
    Ok(())
}

/// Records a refused request (a customer on a staff page, a forged or expired form, an API
/// call with a dead token): a security event with no change to go with it, so nothing to share
/// a transaction with, which is why it is the one event recorded on its own. `subject` is the
/// request's method and route.
pub fn record_refusal(
    conn: &mut PgConnection,
    context: &AuditContext,
    action: AuditAction,
    subject: &str,
) -> QueryResult<()> {
    debug_assert!(action.is_security_event(), "{action:?} is not a refusal");
    record(conn, context, action, subject, serde_json::json!({}))
}

/// The structured log line of an event.
pub(crate) fn log(context: &AuditContext, action: AuditAction, subject: &str) {
    let actor = context.actor.to_string();
    let subject = truncate(subject, 300);
    let subject = subject.as_str();
    let address = context.address.as_deref().unwrap_or("");
    if action.is_security_event() {
        tracing::warn!(target: "audit", action = action.as_str(), %actor, subject, address, "audit");
    } else {
        tracing::info!(target: "audit", action = action.as_str(), %actor, subject, address, "audit");
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Deletes events older than `days`; returns how many. The BRIN index on `at` serves it.
pub fn purge_older_than(conn: &mut PgConnection, days: u64) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::days(days.min(36_500) as i64);
    diesel::delete(audit_events::table.filter(audit_events::at.lt(cutoff))).execute(conn)
}

/// One row of the log page.
#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub id: AuditEventId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
    pub address: Option<String>,
}

impl AuditRow {
    /// The details as "key: value" pairs, for a table cell.
    pub fn details_line(&self) -> String {
        match &self.details {
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| match value {
                    Value::String(text) => format!("{key}: {text}"),
                    other => format!("{key}: {other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        }
    }

    /// Whether this is a security event (shown highlighted).
    pub fn is_security_event(&self) -> bool {
        AuditAction::parse(&self.action).is_some_and(AuditAction::is_security_event)
    }
}

/// Where a page of the log starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditCursor {
    #[default]
    Newest,
    /// The events older than this one ("Older").
    Before(AuditEventId),
    /// The events newer than this one ("Newer").
    After(AuditEventId),
}

/// The log page's filters, and where the page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub action: Option<AuditAction>,
    /// Text the actor contains ("boss", "token", "psql").
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    pub cursor: AuditCursor,
    pub per_page: i64,
}

/// One page of the log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditRow>,
    /// How many events match: exact up to a threshold, PostgreSQL's estimate beyond.
    pub total: Count,
    /// "Older": the cursor of the next page, when there is one.
    pub older: Option<AuditEventId>,
    /// "Newer": the cursor of the page before, when this one does not start at the newest.
    pub newer: Option<AuditEventId>,
}

/// A page of events from the cursor, by keyset on the id (the primary key, or the action's
/// index): the same cost on the first page and the thousandth, where an OFFSET read every
/// event it skipped. The count stops at a threshold (`db::counting`), where `count(*)` read
/// the whole log.
pub fn list(conn: &mut PgConnection, query: &AuditQuery) -> QueryResult<AuditPage> {
    let filtered = || {
        let mut events = audit_events::table.into_boxed();
        if let Some(action) = query.action {
            events = events.filter(audit_events::action.eq(action.as_str()));
        }
        if let Some(actor) = &query.actor {
            let pattern = format!(
                "%{}%",
                actor
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            events = events.filter(audit_events::actor.ilike(pattern));
        }
        if let Some(from) = query.from {
            events = events.filter(audit_events::at.ge(from));
        }
        if let Some(until) = query.until {
            events = events.filter(audit_events::at.lt(until));
        }
        events
    };
    let per_page = query.per_page.max(1);
    counting::planned_for_values(conn, |conn| {
        let mut events: Vec<AuditRow> = match query.cursor {
            AuditCursor::Newest => filtered().order(audit_events::id.desc()),
            AuditCursor::Before(id) => filtered()
                .filter(audit_events::id.lt(id))
                .order(audit_events::id.desc()),
            AuditCursor::After(id) => filtered()
                .filter(audit_events::id.gt(id))
                .order(audit_events::id.asc()),
        }
        .limit(per_page + 1)
        .load(conn)?;
        let more = events.len() as i64 > per_page;
        events.truncate(per_page as usize);
        if matches!(query.cursor, AuditCursor::After(_)) {
            events.reverse();
        }
        let (first, last) = (events.first().map(|e| e.id), events.last().map(|e| e.id));
        let (older, newer) = match query.cursor {
            AuditCursor::Newest => (last.filter(|_| more), None),
            AuditCursor::Before(_) => (last.filter(|_| more), first),
            AuditCursor::After(_) => (last, first.filter(|_| more)),
        };
        let total = counting::count(conn, filtered().select(audit_events::id))?;
        Ok(AuditPage {
            events,
            total,
            older,
            newer,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_are_unique() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        let mut texts: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), AuditAction::ALL.len());
    }

    #[test]
    fn actors_read_as_who_they_are() {
        assert_eq!(Actor::Staff("boss".into()).to_string(), "staff boss");
        assert_eq!(
            Actor::Token {
                name: "nightly".into(),
                owner: "boss".into()
            }
            .to_string(),
            "token nightly (boss)"
        );
    }
}
