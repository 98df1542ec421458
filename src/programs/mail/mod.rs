//! The mail programs: `send_mail` delivers one outbox row (queued with the row, in the
//! transaction that wrote it), and `low_stock_digest` mails staff the books running out.
//! Composing ([`compose`]: the templates, filled from users, orders and links of the domain)
//! and delivering ([`deliver`]: one attempt, recorded once) are theirs alone, so they live
//! here, above the domain; `crate::mail` keeps only what a mail is and how it leaves.

mod compose;
mod deliver;

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use compose::{LowStockBook, LowStockData};
use deliver::{Delivered, DeliveryError};

use crate::{
    audit::{Actor, AuditContext},
    db::schema::{books, users},
    domain::{
        accounts::{Role, email::EmailAddress},
        outbox::{self, NewMail},
    },
    ids::{MailId, UserId},
    mail::MailKind,
    tasks::{
        TaskOutput,
        params::specs_of,
        program::{ProgramFn, ProgramFunction, TaskError},
    },
};

/// Attempts before a mail is given up on: with the engine's doubling backoff (capped at
/// 5 minutes) about an hour of a mail server being away.
pub const SEND_ATTEMPTS: u32 = 16;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SendMailParams {
    /// The mail to send (its number on the mail page).
    #[schemars(range(min = 1))]
    mail: i64,
}

pub fn send_mail(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: outbox::SEND_PROGRAM,
        description: "Sends one mail of the outbox (queued with it); retried while the mail \
                      server is away, and never sent twice.",
        params: specs_of::<SendMailParams>(),
        timeout,
        max_attempts: SEND_ATTEMPTS,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Plain(|ctx| {
            let SendMailParams { mail } = ctx.params()?;
            let mailer = &ctx.settings().mail;
            let mut conn = ctx.conn()?;
            let last_attempt = ctx.attempt() >= SEND_ATTEMPTS as i32;
            match deliver::deliver(&mut conn, mailer, MailId(mail), ctx.task_id(), last_attempt) {
                Ok(Delivered::Sent(to)) => {
                    Ok(TaskOutput::Text(format!("Sent mail {mail} to {to}.")))
                }
                Ok(Delivered::AlreadySent) => Ok(TaskOutput::Text(format!(
                    "Mail {mail} was sent by an earlier attempt: not sent again."
                ))),
                Ok(Delivered::Dropped(reason)) => {
                    Ok(TaskOutput::Text(format!("Mail {mail} not sent: {reason}")))
                }
                Err(DeliveryError::NotSent(reason)) => Err(TaskError::failed(reason)),
                Err(DeliveryError::Database(err)) => Err(err.into()),
            }
        }),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DigestParams {
    /// Stock at or below this is low.
    #[serde(default = "three")]
    #[schemars(range(min = 0, max = 100_000))]
    threshold: i32,
}

fn three() -> i32 {
    3
}

/// Books listed in one digest; the rest are counted.
const DIGEST_BOOKS: i64 = 100;

pub fn low_stock_digest(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "low_stock_digest",
        description: "Mails every staff member with a confirmed address the books at or below a \
                      stock threshold (nothing when none is).",
        params: specs_of::<DigestParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: Some("daily at 07:00"),
        default_max_running: None,
        // The mails are queued in the transaction that records the task's end: one digest
        // per run, however the run ends.
        run: ProgramFn::Transactional(|ctx, conn| {
            let DigestParams { threshold } = ctx.params()?;
            let low_books = books::table
                .filter(books::stock.le(threshold))
                .filter(books::hidden.eq(false));
            let total: i64 = low_books.count().get_result(conn)?;
            if total == 0 {
                return Ok(TaskOutput::Text(format!(
                    "No book has {threshold} or fewer copies: no mail."
                )));
            }
            let low: Vec<(crate::ids::BookId, String, i32)> = low_books
                .order((books::stock, books::title, books::id))
                .limit(DIGEST_BOOKS)
                .select((books::id, books::title, books::stock))
                .load(conn)?;
            let data = LowStockData {
                threshold,
                date: Utc::now().format("%Y-%m-%d").to_string(),
                more: (total - DIGEST_BOOKS).max(0),
                books: low
                    .into_iter()
                    .take(DIGEST_BOOKS as usize)
                    .map(|(id, title, stock)| LowStockBook { id, title, stock })
                    .collect(),
            };
            let staff: Vec<(UserId, String)> = users::table
                .filter(users::role.eq(Role::Staff.as_str()))
                .filter(users::email.is_not_null())
                .order(users::id)
                .select((users::id, users::email.assume_not_null()))
                .load(conn)?;
            let context = AuditContext::new(Actor::Task(ctx.task_id()), None);
            for (user_id, address) in &staff {
                let mail = NewMail {
                    kind: MailKind::LowStock,
                    recipient: EmailAddress::parse(address).map_err(TaskError::failed)?,
                    user_id: Some(*user_id),
                    subject: format!(
                        "Low stock: {total} book{}",
                        if total == 1 { "" } else { "s" }
                    ),
                    data: json!(data),
                };
                outbox::queue(conn, &context, mail)?;
            }
            Ok(TaskOutput::Text(format!(
                "{total} book{} at or below {threshold}: mailed {} staff member{}.",
                if total == 1 { "" } else { "s" },
                staff.len(),
                if staff.len() == 1 { "" } else { "s" }
            )))
        }),
    }
}
