//! Claiming (`task_claim`) and what the queue holds when a claim came back short
//! (`task_next_due`).

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use serde_json::Value;

use super::{AttemptKey, prepared::prepared_call};
use crate::ids::TaskId;

/// Where a program's function lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// Compiled into the app.
    Rust,
    /// A SQL function `name(params jsonb)` in the database.
    Sql,
}

impl FunctionKind {
    /// As `program_functions.kind` says it.
    fn named(kind: &str) -> FunctionKind {
        if kind == "sql" {
            FunctionKind::Sql
        } else {
            FunctionKind::Rust
        }
    }
}

/// A task this worker has just claimed.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub key: AttemptKey,
    /// The program's name (what the metrics label its runs with).
    pub program_name: String,
    pub function_name: String,
    pub function_kind: FunctionKind,
    pub parameters: Option<Value>,
    pub timeout_seconds: i32,
    /// Higher runs first, in the local queue as in the claim.
    pub priority: i32,
    /// Claimed through its program's limit.
    pub limited: bool,
    /// At most this many of its program's tasks run at once, in the cluster and so on this
    /// node (its `max_running`, for a limited task): a node may hold more of them than that
    /// (see [`ClaimRequest::hold`]).
    pub max_running: Option<usize>,
    /// Other tasks wait for it: its success may release them (and claim them, see
    /// [`super::finish_and_claim`]).
    pub has_dependents: bool,
}

/// Where the previous claim stopped in the plain queue's order (priority descending, then
/// run_after, id); `None` is the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCursor {
    pub priority: i32,
    pub run_after: DateTime<Utc>,
    pub id: TaskId,
}

/// A row of `task_claim` (and a claimed one of `task_finish`).
#[derive(QueryableByName)]
pub(super) struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    function_name: String,
    #[diesel(sql_type = Text)]
    function_kind: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    parameters: Option<Value>,
    #[diesel(sql_type = Integer)]
    timeout_seconds: i32,
    #[diesel(sql_type = Integer)]
    priority: i32,
    #[diesel(sql_type = Timestamptz)]
    run_after: DateTime<Utc>,
    /// Claimed through its program's limit (not from the plain queue the cursor walks).
    #[diesel(sql_type = Bool)]
    limited: bool,
    #[diesel(sql_type = Text)]
    program_name: String,
    #[diesel(sql_type = Nullable<Integer>)]
    max_running: Option<i32>,
    #[diesel(sql_type = Bool)]
    has_dependents: bool,
}

/// What to claim: how many, and where in the plain queue.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    pub limit: usize,
    pub cursor: Option<QueueCursor>,
    /// Also look above the cursor's level (a task was queued there).
    pub look_above: bool,
    /// How many tasks of limited programs (without a per-minute limit) this node may hold
    /// while no other node holds any of theirs, shared out evenly among the limited programs:
    /// more than a program's `max_running`, of which it starts at most `max_running` at once
    /// (`task_claim_limited`). 0: never more than `max_running`.
    pub hold: usize,
}

impl ClaimRequest {
    /// Up to `limit` tasks from the start of the queue.
    pub fn new(limit: usize) -> ClaimRequest {
        ClaimRequest {
            limit,
            cursor: None,
            look_above: false,
            hold: 0,
        }
    }

    /// From where the previous claim stopped.
    pub fn after(self, cursor: Option<QueueCursor>) -> ClaimRequest {
        ClaimRequest { cursor, ..self }
    }

    /// Also above the cursor's level.
    pub fn looking_above(self, look_above: bool) -> ClaimRequest {
        ClaimRequest { look_above, ..self }
    }

    /// Holding up to `hold` tasks of a limited program no other node runs.
    pub fn holding(self, hold: usize) -> ClaimRequest {
        ClaimRequest { hold, ..self }
    }
}

/// The claimed tasks and where the plain claim stopped.
pub type Claimed = (Vec<ClaimedTask>, Option<QueueCursor>);

/// Claims up to `request.limit` due tasks (limited programs' within their limits, then plain
/// ones after the cursor, and above its level too when asked), highest priority first;
/// returns them and where the plain claim stopped. `ended`: this worker's attempts at
/// limited programs' tasks that have ended but are not recorded yet; they hold no slot.
pub fn claim(
    conn: &mut PgConnection,
    worker: &str,
    request: ClaimRequest,
    ended: &[AttemptKey],
) -> QueryResult<Claimed> {
    let rows: Vec<ClaimRow> = ClaimCall {
        worker,
        max_tasks: claim_limit(request),
        after_priority: request.cursor.map(|c| c.priority),
        after_run_after: request.cursor.map(|c| c.run_after),
        after_id: request.cursor.map(|c| c.id),
        look_above: request.look_above,
        ended_ids: ended.iter().map(|k| k.task_id).collect(),
        ended_attempts: ended.iter().map(|k| k.attempt).collect(),
        hold: i32::try_from(request.hold).unwrap_or(i32::MAX),
    }
    .load(conn)?;
    Ok(claimed(rows))
}

prepared_call! {
    /// `task_claim`, committed without waiting for its WAL flush (`synchronous_commit` off for
    /// this statement's transaction alone): a claim is all an idle node does between a task's
    /// queueing and its start, and the flush was most of that time. Nothing is lost by it: a
    /// claim that a crash of the server forgets leaves its tasks queued as if never claimed
    /// (this node's run of one is fenced off: the attempt it holds is no longer the task's),
    /// and any outcome recorded after the claim flushes the WAL up to it first.
    ClaimCall {
        worker: &'a str => Text,
        max_tasks: i32 => Integer,
        after_priority: Option<i32> => Nullable<Integer>,
        after_run_after: Option<DateTime<Utc>> => Nullable<Timestamptz>,
        after_id: Option<TaskId> => Nullable<BigInt>,
        look_above: bool => Bool,
        ended_ids: Vec<TaskId> => Array<BigInt>,
        ended_attempts: Vec<i32> => Array<Integer>,
        hold: i32 => Integer,
    }
    sql: "SELECT c.* FROM task_claim(" ... ") c, set_config('synchronous_commit', 'off', true)"
}

fn claim_limit(request: ClaimRequest) -> i32 {
    i32::try_from(request.limit).unwrap_or(i32::MAX)
}

/// The claimed tasks, and the cursor: the last plain row (plain rows come first, in queue
/// order).
fn claimed(rows: Vec<ClaimRow>) -> Claimed {
    let last = rows
        .iter()
        .take_while(|row| !row.limited)
        .last()
        .map(|row| QueueCursor {
            priority: row.priority,
            run_after: row.run_after,
            id: row.id,
        });
    let tasks = rows.into_iter().map(ClaimRow::into_task).collect();
    (tasks, last)
}

impl ClaimRow {
    pub(super) fn into_task(self) -> ClaimedTask {
        ClaimedTask {
            key: AttemptKey {
                task_id: self.id,
                attempt: self.attempt,
            },
            function_kind: FunctionKind::named(&self.function_kind),
            program_name: self.program_name,
            function_name: self.function_name,
            parameters: self.parameters,
            timeout_seconds: self.timeout_seconds,
            priority: self.priority,
            limited: self.limited,
            max_running: self.max_running.and_then(|max| usize::try_from(max).ok()),
            has_dependents: self.has_dependents,
        }
    }
}

/// What the queue holds once a claim from its start found nothing more.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct NextDue {
    /// When the next plain queued task may start (a retry waiting out its backoff); a
    /// paused program's tasks do not count (a resume wakes the engine).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub due_at: Option<DateTime<Utc>>,
    /// A limited program has due tasks its limit holds back (a slot frees when one of its
    /// tasks ends, here or on another node).
    #[diesel(sql_type = Bool)]
    pub limited_waiting: bool,
}

pub fn next_due(conn: &mut PgConnection) -> QueryResult<NextDue> {
    sql_query("SELECT * FROM task_next_due()").get_result(conn)
}
