//! Every SQL statement of the task system. The four operations of our specification call the
//! SQL functions of the same names (migration `task_engine`), so psql and the app share one
//! implementation; the engine's own statements (claim, heartbeat, finish) are here too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_query,
    sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    tasks::{context::TaskOutput, schedule::Schedule},
};

/// A refused operation: a machine-readable code, a readable message, and a message per field.
#[derive(Debug, thiserror::Error)]
pub enum TaskStoreError {
    #[error("{message}")]
    Refused {
        /// program_not_found, program_disabled, invalid_parameters, task_not_found,
        /// unknown_function, name_taken, invalid_name
        code: String,
        message: String,
        fields: BTreeMap<String, String>,
    },
    #[error(transparent)]
    Database(DieselError),
}

impl TaskStoreError {
    pub fn code(&self) -> &str {
        match self {
            TaskStoreError::Refused { code, .. } => code,
            TaskStoreError::Database(_) => "internal",
        }
    }
}

/// Our SQL functions raise errors with a JSON DETAIL `{"code", "fields"}`; anything else is a
/// database failure.
impl From<DieselError> for TaskStoreError {
    fn from(err: DieselError) -> Self {
        if let DieselError::DatabaseError(_, info) = &err {
            #[derive(serde::Deserialize)]
            struct Detail {
                code: String,
                #[serde(default)]
                fields: BTreeMap<String, String>,
            }
            if let Some(detail) = info
                .details()
                .and_then(|d| serde_json::from_str::<Detail>(d).ok())
            {
                return TaskStoreError::Refused {
                    code: detail.code,
                    message: info.message().to_owned(),
                    fields: detail.fields,
                };
            }
        }
        TaskStoreError::Database(err)
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// `run_program(name, params)`: validates and queues a task; returns its id.
pub fn run_program(
    conn: &mut PgConnection,
    name: &str,
    params: Option<&Value>,
) -> Result<i64, TaskStoreError> {
    Ok(sql_query("SELECT run_program($1, $2) AS id")
        .bind::<Text, _>(name)
        .bind::<Nullable<Jsonb>, _>(params)
        .get_result::<Id>(conn)?
        .id)
}

/// `register_program(name, function_name)`: returns the new program's id.
pub fn register_program(
    conn: &mut PgConnection,
    name: &str,
    function_name: &str,
) -> Result<i64, TaskStoreError> {
    Ok(sql_query("SELECT register_program($1, $2) AS id")
        .bind::<Text, _>(name)
        .bind::<Text, _>(function_name)
        .get_result::<Id>(conn)?
        .id)
}

/// One row of `get_programs()`.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct ProgramInfo {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub function_name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub parameters: Option<Value>,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub schedule: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub next_run_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_task_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_run_at: Option<DateTime<Utc>>,
}

pub fn get_programs(conn: &mut PgConnection) -> QueryResult<Vec<ProgramInfo>> {
    sql_query("SELECT * FROM get_programs()").load(conn)
}

/// One row of `get_task_result(id)`.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct TaskResult {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub program: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub parameters: Option<Value>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub start_time: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub end_time: Option<DateTime<Utc>>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub result: Option<String>,
}

pub fn get_task_result(
    conn: &mut PgConnection,
    task_id: i64,
) -> Result<TaskResult, TaskStoreError> {
    Ok(sql_query("SELECT * FROM get_task_result($1)")
        .bind::<BigInt, _>(task_id)
        .get_result(conn)?)
}

/// `cancel_task(id)`: returns the status after the call (`running` means "asked to stop").
pub fn cancel_task(conn: &mut PgConnection, task_id: i64) -> Result<String, TaskStoreError> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: String,
    }
    Ok(sql_query("SELECT cancel_task($1) AS status")
        .bind::<BigInt, _>(task_id)
        .get_result::<Status>(conn)?
        .status)
}

/// A task this worker has just claimed.
#[derive(Debug, Clone, QueryableByName)]
pub struct ClaimedTask {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub function_name: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub parameters: Option<Value>,
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    #[diesel(sql_type = Integer)]
    pub timeout_seconds: i32,
}

/// Marks up to `limit` due tasks running for `worker`, in one statement. `SKIP LOCKED` lets
/// any number of workers claim at once without ever taking the same task.
pub fn claim_next_tasks(
    conn: &mut PgConnection,
    worker: &str,
    limit: i64,
) -> QueryResult<Vec<ClaimedTask>> {
    sql_query(
        "UPDATE tasks t SET status = 'running', worker_id = $1, start_time = now(), \
                heartbeat_at = now(), attempt = t.attempt + 1, \
                progress_done = NULL, progress_total = NULL, progress_message = NULL \
           FROM programs p \
          WHERE p.id = t.program_id \
            AND t.id IN (SELECT id FROM tasks WHERE status = 'scheduled' AND run_after <= now() \
                          ORDER BY run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
      RETURNING t.id, p.function_name, t.parameters, t.attempt, t.timeout_seconds",
    )
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// When the next scheduled task becomes due, if any.
pub fn next_due_at(conn: &mut PgConnection) -> QueryResult<Option<DateTime<Utc>>> {
    tasks::table
        .filter(tasks::status.eq("scheduled"))
        .select(diesel::dsl::min(tasks::run_after))
        .first(conn)
}

/// The statements below only touch a task this worker still holds (same worker, same attempt,
/// still running): a task re-queued by another node after a lost lease is never overwritten.
const HELD: &str = "id = $1 AND worker_id = $2 AND attempt = $3 AND status = 'running'";

pub fn finish(
    conn: &mut PgConnection,
    task: &ClaimedTask,
    worker: &str,
    output: &TaskOutput,
) -> QueryResult<bool> {
    let (text, table) = match output {
        TaskOutput::Text(text) => (text.clone(), None),
        TaskOutput::Table(table) => (
            table.to_text(),
            Some(serde_json::to_value(table).unwrap_or(Value::Null)),
        ),
    };
    let updated = sql_query(format!(
        "UPDATE tasks SET status = 'finished', end_time = now(), result = $4, result_table = $5, \
                progress_done = coalesce(progress_total, progress_done) WHERE {HELD}"
    ))
    .bind::<BigInt, _>(task.id)
    .bind::<Text, _>(worker)
    .bind::<Integer, _>(task.attempt)
    .bind::<Text, _>(text)
    .bind::<Nullable<Jsonb>, _>(table)
    .execute(conn)?;
    Ok(updated == 1)
}

/// Records a failed attempt. With attempts left (and `retry` allowed) the task goes back to
/// the queue after `retry_in_seconds`; otherwise it ends in `error` with every attempt's error
/// in its result. A task someone asked to cancel ends `cancelled` instead of being retried.
/// Returns the new status.
pub fn fail(
    conn: &mut PgConnection,
    task: &ClaimedTask,
    worker: &str,
    error: &str,
    retry_in_seconds: f64,
    retry: bool,
) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let row = sql_query(format!(
        "UPDATE tasks SET \
            attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, 'error', $4::text, 'at', now())), \
            status = CASE WHEN cancel_requested THEN 'cancelled' \
                          WHEN attempt >= max_attempts OR NOT $6 THEN 'error' ELSE 'scheduled' END, \
            run_after = CASE WHEN attempt >= max_attempts OR NOT $6 OR cancel_requested THEN run_after \
                             ELSE now() + make_interval(secs => $5) END, \
            end_time = CASE WHEN attempt >= max_attempts OR NOT $6 OR cancel_requested THEN now() END, \
            result = CASE \
                WHEN cancel_requested THEN 'Cancelled; the attempt ended with: ' || $4::text \
                WHEN attempt >= max_attempts OR NOT $6 THEN \
                format('Failed after %s attempt%s:', attempt, CASE WHEN attempt = 1 THEN '' ELSE 's' END) || E'\\n' || \
                (SELECT string_agg(format('attempt %s: %s', e->>'attempt', e->>'error'), E'\\n' ORDER BY (e->>'attempt')::int) \
                   FROM jsonb_array_elements(attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, 'error', $4::text))) e) \
                ELSE result END \
          WHERE {HELD} RETURNING status"
    ))
    .bind::<BigInt, _>(task.id)
    .bind::<Text, _>(worker)
    .bind::<Integer, _>(task.attempt)
    .bind::<Text, _>(error)
    .bind::<Double, _>(retry_in_seconds)
    .bind::<Bool, _>(retry)
    .get_result::<Status>(conn)
    .optional()?;
    Ok(row.map(|row| row.status))
}

pub fn mark_cancelled(
    conn: &mut PgConnection,
    task: &ClaimedTask,
    worker: &str,
) -> QueryResult<bool> {
    let updated = sql_query(format!(
        "UPDATE tasks SET status = 'cancelled', end_time = now(), \
                result = 'Cancelled while running' || coalesce(format(' (at %s of %s)', progress_done, progress_total), '') || '.' \
          WHERE {HELD}"
    ))
    .bind::<BigInt, _>(task.id)
    .bind::<Text, _>(worker)
    .bind::<Integer, _>(task.attempt)
    .execute(conn)?;
    Ok(updated == 1)
}

/// Refreshes the leases of the tasks this worker is really running (one whose thread could not
/// start is not among `ids`, so its lease runs out); returns those asked to cancel.
pub fn heartbeat(conn: &mut PgConnection, worker: &str, ids: &[i64]) -> QueryResult<Vec<i64>> {
    let rows: Vec<(i64, bool)> = diesel::update(
        tasks::table
            .filter(tasks::worker_id.eq(worker))
            .filter(tasks::status.eq("running"))
            .filter(tasks::id.eq_any(ids)),
    )
    .set(tasks::heartbeat_at.eq(diesel::dsl::now))
    .returning((tasks::id, tasks::cancel_requested))
    .get_results(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, cancel)| *cancel)
        .map(|(id, _)| id)
        .collect())
}

/// Tasks whose worker stopped sending heartbeats (it crashed or lost the database) go back to
/// the queue, or end in `error` when their attempts are spent (`cancelled` if someone asked).
/// Any live node may run this.
pub fn requeue_lost(conn: &mut PgConnection, lease_seconds: f64) -> QueryResult<usize> {
    sql_query(
        "UPDATE tasks SET \
            attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, \
                'error', format('worker lost (%s sent no heartbeat for %s s)', worker_id, $1), 'at', now())), \
            status = CASE WHEN cancel_requested THEN 'cancelled' \
                          WHEN attempt >= max_attempts THEN 'error' ELSE 'scheduled' END, \
            end_time = CASE WHEN attempt >= max_attempts OR cancel_requested THEN now() END, \
            run_after = now(), \
            result = CASE WHEN cancel_requested THEN 'Cancelled; its worker was lost.' \
                          WHEN attempt >= max_attempts THEN format('Failed after %s attempts: worker lost', attempt) \
                          ELSE result END \
          WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(lease_seconds)
    .execute(conn)
}

/// At shutdown: this worker's unfinished tasks go back to the queue without spending an
/// attempt (they were interrupted, not failed), unless someone asked to cancel them.
pub fn requeue_interrupted(
    conn: &mut PgConnection,
    worker: &str,
    ids: &[i64],
) -> QueryResult<usize> {
    sql_query(
        "UPDATE tasks SET \
                status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'scheduled' END, \
                end_time = CASE WHEN cancel_requested THEN now() END, \
                result = CASE WHEN cancel_requested THEN 'Cancelled during a worker shutdown.' ELSE result END, \
                attempt = CASE WHEN cancel_requested THEN attempt ELSE attempt - 1 END, \
                start_time = CASE WHEN cancel_requested THEN start_time END, \
                run_after = now(), heartbeat_at = NULL, \
                attempts = attempts || jsonb_build_array(jsonb_build_object('attempt', attempt, \
                    'error', 'interrupted by a worker shutdown; re-queued', 'at', now())) \
          WHERE worker_id = $1 AND status = 'running' AND id = ANY($2)",
    )
    .bind::<Text, _>(worker)
    .bind::<Array<BigInt>, _>(ids)
    .execute(conn)
}

/// Only for the attempt that reports it: an abandoned earlier attempt cannot overwrite it.
pub fn record_progress(
    conn: &mut PgConnection,
    task_id: i64,
    attempt: i32,
    done: i64,
    total: i64,
    message: &str,
) -> QueryResult<()> {
    diesel::update(
        tasks::table
            .find(task_id)
            .filter(tasks::status.eq("running"))
            .filter(tasks::attempt.eq(attempt)),
    )
    .set((
        tasks::progress_done.eq(done.max(0)),
        tasks::progress_total.eq(total.max(0)),
        tasks::progress_message.eq(message),
    ))
    .execute(conn)?;
    Ok(())
}

/// Queues one task for every program whose schedule is due, and moves its next firing on.
/// The row lock (`SKIP LOCKED`) means one node fires a given slot, once; the others skip it.
pub fn fire_due_schedules(conn: &mut PgConnection) -> QueryResult<Vec<i64>> {
    conn.transaction(|conn| {
        type Due = (i64, String, Option<String>, Option<DateTime<Utc>>);
        let due: Vec<Due> = programs::table
            .filter(programs::enabled.eq(true))
            .filter(programs::schedule.is_not_null())
            .filter(programs::next_run_at.le(diesel::dsl::now))
            .select((
                programs::id,
                programs::name,
                programs::schedule,
                programs::next_run_at,
            ))
            .for_update()
            .skip_locked()
            .load(conn)?;
        let mut queued = Vec::new();
        for (id, name, schedule, slot) in due {
            let now = Utc::now();
            let schedule = schedule
                .as_deref()
                .and_then(|text| Schedule::parse(text).ok());
            // Keep the cadence from the slot; after downtime, fire once and carry on from now.
            let next = schedule.and_then(|schedule| {
                schedule
                    .next_after(slot.unwrap_or(now))
                    .filter(|next| *next > now)
                    .or_else(|| schedule.next_after(now))
            });
            diesel::update(programs::table.find(id))
                .set(programs::next_run_at.eq(next))
                .execute(conn)?;
            // A savepoint: a program whose defaults no longer validate must not stop the others.
            match conn.transaction(|conn| run_program(conn, &name, None)) {
                Ok(task_id) => queued.push(task_id),
                Err(err) => tracing::warn!(program = %name, "scheduled run refused: {err}"),
            }
        }
        Ok(queued)
    })
}

/// Sets or clears a program's schedule (validated here) and enables or disables it.
pub fn configure_program(
    conn: &mut PgConnection,
    program_id: i64,
    schedule: Option<&str>,
    enabled: bool,
) -> Result<(), TaskStoreError> {
    let schedule = schedule.map(str::trim).filter(|s| !s.is_empty());
    let next = match schedule {
        None => None,
        Some(text) => {
            let parsed = Schedule::parse(text).map_err(|message| TaskStoreError::Refused {
                code: "invalid_schedule".into(),
                message: format!("invalid schedule: {message}"),
                fields: BTreeMap::from([("schedule".to_owned(), message)]),
            })?;
            parsed.next_after(Utc::now())
        }
    };
    let updated = diesel::update(programs::table.find(program_id))
        .set((
            programs::schedule.eq(schedule),
            programs::next_run_at.eq(next),
            programs::enabled.eq(enabled),
        ))
        .execute(conn)
        .map_err(TaskStoreError::Database)?;
    if updated == 0 {
        return Err(TaskStoreError::Refused {
            code: "program_not_found".into(),
            message: format!("no program with id {program_id}"),
            fields: BTreeMap::new(),
        });
    }
    Ok(())
}

/// Whether a database error is the kind a retry can cure (for callers that loop).
pub fn is_transient(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection,
            _
        )
    )
}
