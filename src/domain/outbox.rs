//! The outbox: a row per mail, written inside the transaction that decides to send it, with
//! the `send_mail` task that will send it queued in that same transaction. So an order that
//! commits has its confirmation on the way, and a rolled-back order has none.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::{mails, tasks},
    domain::accounts::email::EmailAddress,
    ids::{MailId, TaskId, UserId},
    mail::{MailKind, MailStatus},
    tasks::{
        ops::OperationError,
        queueing::{self, RunOptions},
        status::TaskStatus,
    },
};

/// The program that sends outbox rows.
pub const SEND_PROGRAM: &str = "send_mail";

/// A mail to queue. `data` says what to fill the templates from; it must never hold a secret
/// (a link's token is made when the mail is sent): staff read it on the task's page.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: MailKind,
    pub recipient: EmailAddress,
    pub user_id: Option<UserId>,
    pub subject: String,
    pub data: Value,
}

/// Writes the mail and queues its task, in the caller's transaction, as `context` (who the
/// task log says queued it). If the program cannot take it (staff disabled `send_mail`), the
/// mail is still kept, marked with why, and nothing else is undone: an order must not fail
/// because its mail cannot leave yet (retrying the mail from its row is staff's to do).
pub fn queue(
    conn: &mut PgConnection,
    context: &AuditContext,
    mail: NewMail,
) -> QueryResult<MailId> {
    let id: MailId = diesel::insert_into(mails::table)
        .values((
            mails::kind.eq(mail.kind),
            mails::recipient.eq(mail.recipient.as_str()),
            mails::user_id.eq(mail.user_id),
            mails::subject.eq(truncate(&mail.subject, 300)),
            mails::data.eq(&mail.data),
            mails::message_id.eq(uuid::Uuid::new_v4().simple().to_string()),
        ))
        .returning(mails::id)
        .get_result(conn)?;
    audit::act_as(conn, context)?;
    let params = json!({ "mail": id });
    // A savepoint: a refused queueing rolls back only itself.
    let queued = conn.transaction(|conn| {
        queueing::enqueue(conn, SEND_PROGRAM, Some(&params), &RunOptions::default())
            .map_err(QueueRefused)
    });
    match queued {
        Ok(task) => {
            diesel::update(mails::table.find(id))
                .set(mails::task_id.eq(task.id))
                .execute(conn)?;
        }
        Err(QueueRefused(OperationError::Database(err))) => return Err(err),
        Err(QueueRefused(refused)) => {
            tracing::warn!("mail {id} is kept but not queued: {refused}");
            diesel::update(mails::table.find(id))
                .set(mails::last_error.eq(format!("not queued: {refused}")))
                .execute(conn)?;
        }
    }
    Ok(id)
}

/// An enqueue refusal carried out of the savepoint (which needs a diesel error to roll back).
#[derive(Debug)]
struct QueueRefused(OperationError);

impl From<diesel::result::Error> for QueueRefused {
    fn from(err: diesel::result::Error) -> Self {
        QueueRefused(OperationError::Database(err))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("there is no such mail")]
    NotFound,
    #[error("it was sent already: it is never sent twice")]
    AlreadySent,
    #[error("it is being sent already (task {0})")]
    Waiting(TaskId),
    #[error("send_mail cannot take it: {0}")]
    Refused(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Sends mail `id` again, as `context`: a new `send_mail` task for the row, the row queued
/// again, and the audit record, in one transaction. Only a mail not sent whose task has ended
/// (given up on, cancelled, pruned) or never was (its program was disabled): a sent mail is
/// never sent twice, and a waiting one already has its task. Two sending tasks at once would
/// still send it once (each locks the row and finds it sent), but one is enough.
pub fn retry(
    conn: &mut PgConnection,
    context: &AuditContext,
    id: MailId,
) -> Result<TaskId, RetryError> {
    conn.transaction(|conn| {
        let row = lock(conn, id)?.ok_or(RetryError::NotFound)?;
        if row.status == MailStatus::Sent {
            return Err(RetryError::AlreadySent);
        }
        if let Some(task) = row.task_id
            && task_status(conn, task)?.is_some_and(TaskStatus::is_active)
        {
            return Err(RetryError::Waiting(task));
        }
        audit::act_as(conn, context)?;
        let params = json!({ "mail": id });
        let task = queueing::enqueue(conn, SEND_PROGRAM, Some(&params), &RunOptions::default())
            .map_err(|err| match err {
                OperationError::Database(err) => RetryError::Database(err),
                refused => RetryError::Refused(refused.to_string()),
            })?
            .id;
        diesel::update(mails::table.find(id))
            .set((
                mails::status.eq(MailStatus::Queued),
                mails::task_id.eq(task),
                mails::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            context,
            AuditAction::MailRetried,
            &format!("mail {id}"),
            json!({ "task": task, "to": row.recipient, "subject": row.subject }),
        )?;
        Ok(task)
    })
}

/// A row as the sender and the staff's page read it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mails, check_for_backend(diesel::pg::Pg))]
pub struct MailRow {
    pub id: MailId,
    pub kind: MailKind,
    pub recipient: String,
    pub user_id: Option<UserId>,
    pub subject: String,
    pub data: Value,
    pub message_id: String,
    pub task_id: Option<TaskId>,
    pub status: MailStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl MailRow {
    /// How the staff's page says where it is: a queued mail that failed before is retrying.
    pub fn state_label(&self) -> &'static str {
        match self.status {
            MailStatus::Queued if self.attempts > 0 => "retrying",
            MailStatus::Queued => "waiting",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
}

/// The row, locked until the caller's transaction ends: two attempts at one mail (a rescued
/// one and its replacement) take turns, and the second finds it sent.
pub fn lock(conn: &mut PgConnection, id: MailId) -> QueryResult<Option<MailRow>> {
    mails::table
        .find(id)
        .select(MailRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

/// Records the mail as sent (inside the transaction that holds its lock).
pub fn record_sent(conn: &mut PgConnection, id: MailId, task: TaskId) -> QueryResult<()> {
    diesel::update(mails::table.find(id))
        .set((
            mails::status.eq(MailStatus::Sent),
            mails::sent_at.eq(Utc::now()),
            mails::attempts.eq(mails::attempts + 1),
            mails::last_error.eq(None::<String>),
            mails::task_id.eq(task),
        ))
        .execute(conn)
        .map(drop)
}

/// Records a failed attempt; `gave_up`: no attempt follows (the mail is `failed`).
pub fn record_failure(
    conn: &mut PgConnection,
    id: MailId,
    task: TaskId,
    error: &str,
    gave_up: bool,
) -> QueryResult<()> {
    let status = if gave_up {
        MailStatus::Failed
    } else {
        MailStatus::Queued
    };
    diesel::update(mails::table.find(id))
        .filter(mails::status.ne(MailStatus::Sent))
        .set((
            mails::status.eq(status),
            mails::attempts.eq(mails::attempts + 1),
            mails::last_error.eq(truncate(error, 1000)),
            mails::task_id.eq(task),
        ))
        .execute(conn)
        .map(drop)
}

/// A mail on the staff's page, with the status of its task (`None`: none, or pruned).
#[derive(Debug, Clone, Queryable)]
pub struct ListedMail {
    pub mail: MailRow,
    pub task_status: Option<TaskStatus>,
}

impl ListedMail {
    /// Whether staff may send it again ([`retry`]).
    pub fn can_retry(&self) -> bool {
        self.mail.status != MailStatus::Sent && !self.task_status.is_some_and(TaskStatus::is_active)
    }
}

fn task_status(conn: &mut PgConnection, task: TaskId) -> QueryResult<Option<TaskStatus>> {
    tasks::table
        .filter(tasks::id.eq(task))
        .select(tasks::status)
        .first(conn)
        .optional()
}

/// The latest mails, newest first, for the staff's page; `status` narrows them.
pub fn recent(
    conn: &mut PgConnection,
    status: Option<MailStatus>,
    limit: i64,
) -> QueryResult<Vec<ListedMail>> {
    let mut query = mails::table
        .left_join(tasks::table.on(mails::task_id.eq(tasks::id.nullable())))
        .select((MailRow::as_select(), tasks::status.nullable()))
        .order(mails::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(mails::status.eq(status));
    }
    query.load(conn)
}

/// Days a sent or given-up mail stays on the staff's page; the housekeeping deletes it then.
/// A queued one stays until it is sent or given up on.
pub const KEEP_DAYS: i64 = 30;

/// Deletes the mails sent or given up on more than [`KEEP_DAYS`] ago; returns how many.
pub fn purge_old(conn: &mut PgConnection) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::days(KEEP_DAYS);
    diesel::delete(
        mails::table
            .filter(mails::status.ne(MailStatus::Queued))
            .filter(mails::created_at.lt(cutoff)),
    )
    .execute(conn)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
