//! Bulk actions on tasks (cancel, retry, delete many at once), as the task list and the API
//! offer them: which tasks an action applies to, and applying it to them all in one
//! transaction. Each task goes through its own SQL operation, so each records its own event.

use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Bool, Text},
};

use crate::{
    audit::{AuditAction, AuditContext},
    db::schema::tasks,
    ids::TaskId,
    tasks::ops::{OperationError, as_actor},
};

/// What staff can do to many tasks at once. Which statuses each applies to is the SQL
/// function `task_action_applies`; a task it does not apply to is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Queued tasks end; running ones are asked to stop.
    Cancel,
    /// Failed or cancelled tasks get one more attempt.
    Retry,
    /// Ended tasks are removed.
    Delete,
}

impl BulkAction {
    pub const ALL: [BulkAction; 3] = [BulkAction::Cancel, BulkAction::Retry, BulkAction::Delete];

    pub fn key(self) -> &'static str {
        match self {
            BulkAction::Cancel => "cancel",
            BulkAction::Retry => "retry",
            BulkAction::Delete => "delete",
        }
    }

    pub fn parse(key: &str) -> Option<BulkAction> {
        BulkAction::ALL
            .into_iter()
            .find(|action| action.key() == key)
    }

    /// "Cancel", for buttons.
    pub fn label(self) -> &'static str {
        match self {
            BulkAction::Cancel => "Cancel",
            BulkAction::Retry => "Retry",
            BulkAction::Delete => "Delete",
        }
    }

    /// Which tasks it touches, for confirmations.
    pub fn applies_to_text(self) -> &'static str {
        match self {
            BulkAction::Cancel => "queued or running",
            BulkAction::Retry => "failed or cancelled",
            BulkAction::Delete => "ended",
        }
    }

    /// The audit log's name for it (each task also gets its own event from SQL).
    pub fn audit_action(self) -> AuditAction {
        match self {
            BulkAction::Cancel => AuditAction::TaskCancelled,
            BulkAction::Retry => AuditAction::TaskRetried,
            BulkAction::Delete => AuditAction::TaskDeleted,
        }
    }

    /// "cancelled", for the message afterwards.
    pub fn done(self) -> &'static str {
        match self {
            BulkAction::Cancel => "cancelled (or asked to stop)",
            BulkAction::Retry => "queued again",
            BulkAction::Delete => "deleted",
        }
    }
}

/// How many of `ids` the action would change.
pub fn bulk_applicable(
    conn: &mut PgConnection,
    action: BulkAction,
    ids: &[TaskId],
) -> QueryResult<i64> {
    tasks::table
        .filter(tasks::id.eq_any(ids))
        .filter(
            diesel::dsl::sql::<Bool>("task_action_applies(")
                .bind::<Text, _>(action.key())
                .sql(", tasks.status)"),
        )
        .count()
        .get_result(conn)
}

/// Applies the action to each task, by `context` (each through its SQL function, which records
/// it under them); returns how many changed. One transaction: all or nothing.
pub fn bulk(
    conn: &mut PgConnection,
    context: &AuditContext,
    action: BulkAction,
    ids: &[TaskId],
) -> Result<usize, OperationError> {
    #[derive(QueryableByName)]
    struct Changed {
        #[diesel(sql_type = BigInt)]
        changed: i64,
    }
    // CASE, not AND: it guarantees the function runs only for tasks the action applies to (a
    // planner may evaluate AND's sides in any order). Ids of tasks gone meanwhile match no
    // row. A task counts as changed by what its function answers, not by its status before.
    let statement = match action {
        BulkAction::Cancel => {
            "SELECT count(*) FILTER (WHERE r IN ('cancelled', 'running')) AS changed FROM ( \
               SELECT CASE WHEN task_action_applies('cancel', t.status) THEN cancel_task(t.id) END AS r \
                 FROM tasks t WHERE t.id = ANY($1::bigint[])) AS done"
        }
        BulkAction::Retry => {
            "SELECT count(*) FILTER (WHERE r = 'scheduled') AS changed FROM ( \
               SELECT CASE WHEN task_action_applies('retry', t.status) THEN retry_task(t.id) END AS r \
                 FROM tasks t WHERE t.id = ANY($1::bigint[])) AS done"
        }
        BulkAction::Delete => {
            "SELECT count(*) FILTER (WHERE r) AS changed FROM ( \
               SELECT CASE WHEN task_action_applies('delete', t.status) THEN delete_task(t.id) END AS r \
                 FROM tasks t WHERE t.id = ANY($1::bigint[])) AS done"
        }
    };
    let subject = |changed: &usize| format!("{changed} tasks");
    as_actor(conn, context, action.audit_action(), subject, |conn| {
        let changed: Changed = sql_query(statement)
            .bind::<Array<BigInt>, _>(ids)
            .get_result(conn)?;
        Ok(changed.changed as usize)
    })
}
