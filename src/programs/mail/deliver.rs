//! Delivering one outbox row, once. The row is locked for the whole attempt, and "sent" is
//! written in the same transaction as the composing (and any link it made), right after the
//! mail server took the message: a second attempt at the same mail (a retry, a rescued task's
//! replacement) waits for the lock, then finds it sent and sends nothing. A failed send rolls
//! the attempt back (a link made for it never works) and is recorded apart, for the retry.
//!
//! The one gap SMTP leaves: if this node dies after the server took the message and before
//! the commit, the next attempt sends it again, with the same Message-ID (mail clients show
//! one message per Message-ID).

use diesel::prelude::*;

use super::compose::{self, ComposeError};
use crate::{
    domain::outbox,
    ids::{MailId, TaskId},
    mail::{MailStatus, Mailer},
};

/// What an attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// Sent now, to this recipient.
    Sent(String),
    /// An earlier attempt sent it.
    AlreadySent,
    /// Given up on without sending: the reason (recorded on the row).
    Dropped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The mail server refused or was away: recorded on the row; try again later.
    #[error("{0}")]
    NotSent(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// One attempt at mail `id` by `task`; `last_attempt`: a failure now is final.
pub fn deliver(
    conn: &mut PgConnection,
    mailer: &Mailer,
    id: MailId,
    task: TaskId,
    last_attempt: bool,
) -> Result<Delivered, DeliveryError> {
    let attempt = conn.transaction(|conn| {
        let Some(row) = outbox::lock(conn, id)? else {
            return Ok(Delivered::Dropped(format!("mail {id} does not exist")));
        };
        if row.status == MailStatus::Sent {
            return Ok(Delivered::AlreadySent);
        }
        let message = compose::parts(conn, mailer, &row, task)
            .and_then(|parts| compose::message(mailer, &row, parts));
        let message = match message {
            Ok(message) => message,
            Err(ComposeError::Database(err)) => return Err(DeliveryError::Database(err)),
            Err(ComposeError::Pointless(reason)) => {
                outbox::record_failure(conn, id, task, &reason, true)?;
                return Ok(Delivered::Dropped(reason));
            }
        };
        mailer
            .transport
            .send(&message, &row.message_id)
            .map_err(DeliveryError::NotSent)?;
        outbox::record_sent(conn, id, task)?;
        Ok(Delivered::Sent(row.recipient))
    });
    if let Err(DeliveryError::NotSent(reason)) = &attempt {
        outbox::record_failure(conn, id, task, reason, last_attempt)?;
    }
    attempt
}
