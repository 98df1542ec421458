//! The engine's statements: each calls one of the `task_*` SQL functions (migrations
//! `engine_v2`, `engine_rescue`, `engine_v3`), where the rules live. Every write about a running task names the attempt
//! ([`AttemptKey`]) and the worker; a write the worker no longer holds changes nothing.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Bool, Double, Integer, Json, Jsonb, Nullable, Text, Timestamptz},
};
use serde_json::Value;

use self::prepared::prepared_call;
use crate::{ids::TaskId, tasks::status::TaskStatus};

/// One attempt at a task: the task's id and its attempt number. A task rescued from a lost
/// worker and claimed again is a new attempt, so the old run's writes cannot touch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, QueryableByName)]
pub struct AttemptKey {
    #[diesel(sql_type = BigInt, column_name = id)]
    pub task_id: TaskId,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
}

/// A successful attempt, ready to be recorded.
#[derive(Debug, Clone)]
pub struct Success {
    pub key: AttemptKey,
    pub result: String,
    pub result_table: Option<Value>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Claimed through its program's limit: until it is recorded, the claim is told that its
    /// attempt ended (its slot is free).
    pub limited: bool,
    /// Other tasks wait for it: recording it may release them, for this node to claim.
    pub has_dependents: bool,
}

/// Records many successful attempts in one statement; returns those recorded (the others
/// were no longer held by this worker).
pub fn finish(
    conn: &mut PgConnection,
    worker: &str,
    done: &[Success],
) -> QueryResult<HashSet<AttemptKey>> {
    Ok(finish_and_claim(conn, worker, done, 0)?.recorded)
}

/// What a batch of successes did.
#[derive(Debug, Default)]
pub struct Finished {
    /// The attempts recorded (the others were no longer held by this worker).
    pub recorded: HashSet<AttemptKey>,
    /// Tasks the successes released that this worker claimed at once.
    pub claimed: Vec<ClaimedTask>,
}

/// Records many successful attempts in one statement, and claims up to `claim_max` of the
/// tasks they release (waiting for nothing else now, of plain unpaused programs, and with no
/// due task waiting in the queue at a higher priority: `task_finish`). A released task's claim
/// costs no round trip and no update of its row beyond its release.
pub fn finish_and_claim(
    conn: &mut PgConnection,
    worker: &str,
    done: &[Success],
    claim_max: usize,
) -> QueryResult<Finished> {
    let rows: Vec<FinishRow> = FinishCall {
        worker,
        task_ids: done.iter().map(|s| s.key.task_id).collect(),
        attempts: done.iter().map(|s| s.key.attempt).collect(),
        results: done.iter().map(|s| s.result.as_str()).collect(),
        result_tables: done.iter().map(|s| s.result_table.as_ref()).collect(),
        started_at: done.iter().map(|s| s.started_at).collect(),
        ended_at: done.iter().map(|s| s.ended_at).collect(),
        claim_max: i32::try_from(claim_max).unwrap_or(i32::MAX),
    }
    .load(conn)?;
    let mut finished = Finished::default();
    for row in rows {
        match row.claimed {
            Some(task) => finished.claimed.push(task.into_task()),
            None => {
                finished.recorded.insert(AttemptKey {
                    task_id: row.id,
                    attempt: row.attempt,
                });
            }
        }
    }
    Ok(finished)
}

prepared_call! {
    FinishCall {
        worker: &'a str => Text,
        task_ids: Vec<TaskId> => Array<BigInt>,
        attempts: Vec<i32> => Array<Integer>,
        results: Vec<&'a str> => Array<Text>,
        result_tables: Vec<Option<&'a Value>> => Array<Nullable<Jsonb>>,
        started_at: Vec<DateTime<Utc>> => Array<Timestamptz>,
        ended_at: Vec<DateTime<Utc>> => Array<Timestamptz>,
        claim_max: i32 => Integer,
    }
    sql: "SELECT * FROM task_finish(" ... ")"
}

/// A row of `task_finish`: an attempt recorded (its task's columns NULL), or a task claimed.
#[derive(QueryableByName)]
struct FinishRow {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(embed)]
    claimed: Option<ClaimRow>,
}

#[derive(QueryableByName)]
struct MaybeStatus {
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<TaskStatus>,
}

/// Records a failed attempt (the retry rule is `task_fail`'s); returns the task's new status,
/// `None` when this worker no longer holds it.
pub fn fail(
    conn: &mut PgConnection,
    worker: &str,
    key: AttemptKey,
    error: &str,
    retryable: bool,
    retry_base_ms: i64,
) -> QueryResult<Option<TaskStatus>> {
    Ok(
        sql_query("SELECT task_fail($1, $2, $3, $4, $5, $6) AS status")
            .bind::<Text, _>(worker)
            .bind::<BigInt, _>(key.task_id)
            .bind::<Integer, _>(key.attempt)
            .bind::<Text, _>(error)
            .bind::<Bool, _>(retryable)
            .bind::<BigInt, _>(retry_base_ms)
            .get_result::<MaybeStatus>(conn)?
            .status,
    )
}

/// The program asked to run again after `wait`: back to the queue without spending an
/// attempt (`task_snooze`). Returns the new status, `None` when no longer held.
pub fn snooze(
    conn: &mut PgConnection,
    worker: &str,
    key: AttemptKey,
    wait: std::time::Duration,
) -> QueryResult<Option<TaskStatus>> {
    Ok(sql_query("SELECT task_snooze($1, $2, $3, $4) AS status")
        .bind::<Text, _>(worker)
        .bind::<BigInt, _>(key.task_id)
        .bind::<Integer, _>(key.attempt)
        .bind::<Double, _>(wait.as_secs_f64())
        .get_result::<MaybeStatus>(conn)?
        .status)
}

/// A transactional attempt lost its database connection (its work rolled back): back to the
/// queue without spending an attempt (the rule, and its limit, are `task_connection_lost`'s).
/// Returns the new status, `None` when this worker no longer holds it.
pub fn connection_lost(
    conn: &mut PgConnection,
    worker: &str,
    key: AttemptKey,
    error: &str,
    retry_base_ms: i64,
) -> QueryResult<Option<TaskStatus>> {
    Ok(
        sql_query("SELECT task_connection_lost($1, $2, $3, $4, $5) AS status")
            .bind::<Text, _>(worker)
            .bind::<BigInt, _>(key.task_id)
            .bind::<Integer, _>(key.attempt)
            .bind::<Text, _>(error)
            .bind::<BigInt, _>(retry_base_ms)
            .get_result::<MaybeStatus>(conn)?
            .status,
    )
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Nullable<Bool>)]
    flag: Option<bool>,
}

/// The program stopped because someone asked it to; false when no longer held.
pub fn cancelled(conn: &mut PgConnection, worker: &str, key: AttemptKey) -> QueryResult<bool> {
    Ok(sql_query("SELECT task_cancelled($1, $2, $3) AS flag")
        .bind::<Text, _>(worker)
        .bind::<BigInt, _>(key.task_id)
        .bind::<Integer, _>(key.attempt)
        .get_result::<Flag>(conn)?
        .flag
        .unwrap_or(false))
}

/// Stores progress; `Some(cancel_requested)` while held, `None` once the attempt was lost.
pub fn progress(
    conn: &mut PgConnection,
    worker: &str,
    key: AttemptKey,
    done: i64,
    total: i64,
    message: &str,
) -> QueryResult<Option<bool>> {
    Ok(
        sql_query("SELECT task_progress($1, $2, $3, $4, $5, $6) AS flag")
            .bind::<Text, _>(worker)
            .bind::<BigInt, _>(key.task_id)
            .bind::<Integer, _>(key.attempt)
            .bind::<BigInt, _>(done)
            .bind::<BigInt, _>(total)
            .bind::<Text, _>(message)
            .get_result::<Flag>(conn)?
            .flag,
    )
}

#[derive(QueryableByName)]
struct BeatRow {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Bool)]
    cancel_requested: bool,
}

/// What a heartbeat learnt about the attempts it renewed.
#[derive(Debug, Default)]
pub struct Renewed {
    /// Still held by this worker.
    pub held: HashSet<AttemptKey>,
    /// Of those, the ones someone asked to cancel.
    pub cancel_requested: Vec<AttemptKey>,
}

/// Renews the leases of the attempts this worker holds, each with whether it has started
/// (the others wait in the local queue).
pub fn heartbeat(
    conn: &mut PgConnection,
    worker: &str,
    held: &[(AttemptKey, bool)],
) -> QueryResult<Renewed> {
    let rows: Vec<BeatRow> = sql_query("SELECT * FROM task_heartbeat($1, $2, $3, $4)")
        .bind::<Text, _>(worker)
        .bind::<Array<BigInt>, _>(held.iter().map(|(k, _)| k.task_id).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(held.iter().map(|(k, _)| k.attempt).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(held.iter().map(|(_, started)| *started).collect::<Vec<_>>())
        .load(conn)?;
    let mut renewed = Renewed::default();
    for row in rows {
        let key = AttemptKey {
            task_id: row.id,
            attempt: row.attempt,
        };
        renewed.held.insert(key);
        if row.cancel_requested {
            renewed.cancel_requested.push(key);
        }
    }
    Ok(renewed)
}

/// Of `keys`, the attempts this worker itself has ended (a transactional program records its
/// own outcome, and may do so just before a heartbeat that does not find it running).
pub fn ended_by(
    conn: &mut PgConnection,
    worker: &str,
    keys: &[AttemptKey],
) -> QueryResult<HashSet<AttemptKey>> {
    let ended: Vec<AttemptKey> = sql_query(
        // `t.id = ANY` lets the primary key find them: on statistics that know nothing of
        // this worker yet (a bulk load just analyzed), the join alone was planned as a scan
        // of both partitions (seconds beside a million tasks, the loop stalled meanwhile).
        "SELECT t.id, t.attempt FROM tasks t \
           JOIN unnest($2::bigint[], $3::integer[]) AS v(id, attempt) \
             ON t.id = v.id AND t.attempt = v.attempt \
          WHERE t.id = ANY ($2) AND t.worker_id = $1 AND t.status <> 'running'",
    )
    .bind::<Text, _>(worker)
    .bind::<Array<BigInt>, _>(keys.iter().map(|k| k.task_id).collect::<Vec<_>>())
    .bind::<Array<Integer>, _>(keys.iter().map(|k| k.attempt).collect::<Vec<_>>())
    .load(conn)?;
    Ok(ended.into_iter().collect())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    count: i32,
}

/// Re-queues (or ends) the tasks of workers that stopped renewing their leases.
pub fn rescue_lost(conn: &mut PgConnection, lease_seconds: f64) -> QueryResult<usize> {
    Ok(sql_query("SELECT task_rescue_lost($1) AS count")
        .bind::<Double, _>(lease_seconds)
        .get_result::<Count>(conn)?
        .count as usize)
}

/// At shutdown: attempts this worker could not finish go back to the queue.
pub fn requeue_interrupted(
    conn: &mut PgConnection,
    worker: &str,
    keys: &[AttemptKey],
) -> QueryResult<usize> {
    Ok(
        sql_query("SELECT task_requeue_interrupted($1, $2, $3) AS count")
            .bind::<Text, _>(worker)
            .bind::<Array<BigInt>, _>(keys.iter().map(|k| k.task_id).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(keys.iter().map(|k| k.attempt).collect::<Vec<_>>())
            .get_result::<Count>(conn)?
            .count as usize,
    )
}

/// What a SQL function program returned.
#[derive(QueryableByName)]
pub struct SqlFunctionResult {
    #[diesel(sql_type = Nullable<Text>)]
    pub text_result: Option<String>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub columns: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Json>)]
    pub cells: Option<Value>,
}

/// Runs a SQL function program under `statement_timeout` (inside the caller's transaction),
/// as task `task_id` (what `task_upstream()` and `task_batch()` read).
pub fn run_sql_function(
    conn: &mut PgConnection,
    task_id: TaskId,
    function_name: &str,
    params: &Value,
    timeout_seconds: i32,
) -> QueryResult<SqlFunctionResult> {
    sql_query(format!(
        "SET LOCAL statement_timeout = {}",
        i64::from(timeout_seconds.max(1)) * 1000
    ))
    .execute(conn)?;
    sql_query("SELECT * FROM task_run_sql_function($1, $2, $3)")
        .bind::<Text, _>(function_name)
        .bind::<Jsonb, _>(params)
        .bind::<BigInt, _>(task_id)
        .get_result(conn)
}

mod claim;
mod prepared;
mod schedules;

use claim::ClaimRow;
pub use claim::{
    ClaimRequest, Claimed, ClaimedTask, FunctionKind, NextDue, QueueCursor, claim, next_due,
};
pub use schedules::fire_due_schedules;
