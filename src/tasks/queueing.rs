//! Queueing with engine v3's options: priority, unique keys, waiting for other tasks, many
//! tasks in one statement, batches with a callback, and a program's defaults and limits.
//! Each calls the SQL function a DBA would (migration `engine_v3`), where the rules live.
//! The `*_as` forms are how the pages and the API call them, by someone: their own
//! transaction, whose SQL records the change under that actor.

use chrono::Duration as ChronoDuration;
use diesel::{
    pg::data_types::PgInterval,
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Bool, Integer, Interval, Jsonb, Nullable, Text},
};
use serde_json::Value;

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::programs,
    ids::{TaskBatchId, TaskId},
    tasks::{
        ops::{self, OperationError},
        trace,
    },
};

/// How a task is queued beyond its program and parameters. The default is a plain task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// -100..=100, higher first; `None`: the program's default.
    pub priority: Option<i32>,
    /// While a task of the program with this key is queued or running (or ended within
    /// `unique_for`), queueing another returns that task instead.
    pub unique_key: Option<String>,
    pub unique_for: Option<ChronoDuration>,
    /// Tasks that must all finish first (if one fails, this one is cancelled).
    pub after: Vec<TaskId>,
}

/// What queueing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Enqueued {
    #[diesel(sql_type = BigInt, column_name = task_id)]
    pub id: TaskId,
    /// The unique key was held: `id` is the task that holds it, nothing new was queued.
    #[diesel(sql_type = Bool)]
    pub existed: bool,
}

fn interval(duration: ChronoDuration) -> PgInterval {
    PgInterval::from_microseconds(duration.num_microseconds().unwrap_or(i64::MAX))
}

/// `run_program(name, params, priority => .., unique_key => .., unique_for => .., after => ..)`.
pub fn enqueue(
    conn: &mut PgConnection,
    name: &str,
    params: Option<&Value>,
    options: &RunOptions,
) -> Result<Enqueued, OperationError> {
    Ok(
        sql_query("SELECT task_id, existed FROM task_enqueue($1, $2, $3, $4, $5, $6)")
            .bind::<Text, _>(name)
            .bind::<Nullable<Jsonb>, _>(params)
            .bind::<Nullable<Integer>, _>(options.priority)
            .bind::<Nullable<Text>, _>(options.unique_key.as_deref())
            .bind::<Nullable<Interval>, _>(options.unique_for.map(interval))
            .bind::<Nullable<Array<BigInt>>, _>(
                (!options.after.is_empty()).then_some(&options.after),
            )
            .get_result(conn)?,
    )
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
}

/// `run_programs(name, params[], priority)`: one task per element, in one statement; their
/// ids in order. One bad element refuses them all.
pub fn enqueue_many(
    conn: &mut PgConnection,
    name: &str,
    params: &[Value],
    priority: Option<i32>,
) -> Result<Vec<TaskId>, OperationError> {
    let rows: Vec<Id> = sql_query("SELECT id FROM run_programs($1, $2, $3) AS r(id)")
        .bind::<Text, _>(name)
        .bind::<Array<Jsonb>, _>(params)
        .bind::<Nullable<Integer>, _>(priority)
        .load(conn)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

#[derive(QueryableByName)]
struct NewBatch {
    #[diesel(sql_type = BigInt)]
    id: TaskBatchId,
}

/// `run_batch(name, params[], callback, callback_params)`: the batch's id.
pub fn enqueue_batch(
    conn: &mut PgConnection,
    name: &str,
    params: &[Value],
    callback: Option<&str>,
    callback_params: Option<&Value>,
) -> Result<TaskBatchId, OperationError> {
    Ok(sql_query("SELECT run_batch($1, $2, $3, $4) AS id")
        .bind::<Text, _>(name)
        .bind::<Array<Jsonb>, _>(params)
        .bind::<Nullable<Text>, _>(callback)
        .bind::<Nullable<Jsonb>, _>(callback_params)
        .get_result::<NewBatch>(conn)?
        .id)
}

/// A program's default priority and its limits across the cluster.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub struct ProgramOptions {
    pub priority: i32,
    pub max_running: Option<i32>,
    pub per_minute: Option<i32>,
}

#[derive(QueryableByName)]
struct OptionsRow {
    #[diesel(sql_type = Jsonb)]
    options: Value,
}

/// `set_program_options(name, priority, max_running, per_minute)`: every option is set (a
/// `None` limit removes it); returns them as stored.
pub fn set_program_options(
    conn: &mut PgConnection,
    name: &str,
    options: ProgramOptions,
) -> Result<ProgramOptions, OperationError> {
    let row: OptionsRow = sql_query("SELECT set_program_options($1, $2, $3, $4) AS options")
        .bind::<Text, _>(name)
        .bind::<Integer, _>(options.priority)
        .bind::<Integer, _>(options.max_running.unwrap_or(0))
        .bind::<Integer, _>(options.per_minute.unwrap_or(0))
        .get_result(conn)?;
    serde_json::from_value(row.options).map_err(|err| {
        OperationError::Database(diesel::result::Error::DeserializationError(err.into()))
    })
}

/// [`enqueue`] by `context`: the SQL function records the queueing under that actor (a key
/// already held queues nothing and records nothing, so unlike `ops::as_actor` this logs only
/// a task it queued).
pub fn enqueue_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    params: Option<&Value>,
    options: &RunOptions,
) -> Result<Enqueued, OperationError> {
    let done = conn.transaction(|conn| {
        audit::act_as(conn, context)?;
        let done = enqueue(conn, name, params, options)?;
        if !done.existed {
            trace::record(conn, &[done.id])?;
        }
        Ok::<_, OperationError>(done)
    })?;
    if !done.existed {
        audit::log(
            context,
            AuditAction::TaskQueued,
            &format!("task {}", done.id),
        );
    }
    Ok(done)
}

/// [`set_program_options`] by `context` (the SQL function records it under that actor).
pub fn set_program_options_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    options: ProgramOptions,
) -> Result<ProgramOptions, OperationError> {
    let subject = |_: &ProgramOptions| format!("program {name}");
    ops::as_actor(
        conn,
        context,
        AuditAction::ProgramOptionsSet,
        subject,
        |conn| set_program_options(conn, name, options),
    )
}

/// [`enqueue_many`] by `context` (the SQL function records it under that actor).
pub fn enqueue_many_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    params: &[Value],
    priority: Option<i32>,
) -> Result<Vec<TaskId>, OperationError> {
    let subject = |ids: &Vec<TaskId>| match (ids.first(), ids.last()) {
        (Some(first), Some(last)) => format!("tasks {first} to {last}"),
        _ => "no tasks".to_owned(),
    };
    ops::as_actor(conn, context, AuditAction::TaskQueued, subject, |conn| {
        let ids = enqueue_many(conn, name, params, priority)?;
        trace::record(conn, &ids)?;
        Ok(ids)
    })
}

/// [`enqueue_batch`] by `context` (the SQL function records it under that actor).
pub fn enqueue_batch_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    params: &[Value],
    callback: Option<(&str, Option<&Value>)>,
) -> Result<TaskBatchId, OperationError> {
    let subject = |id: &TaskBatchId| format!("batch {id}");
    let (callback, callback_params) = callback.unzip();
    ops::as_actor(conn, context, AuditAction::BatchQueued, subject, |conn| {
        let batch = enqueue_batch(conn, name, params, callback, callback_params.flatten())?;
        trace::record_batch(conn, batch)?;
        Ok(batch)
    })
}

/// A program's options as they are, if there is such a program.
pub fn program_options(conn: &mut PgConnection, name: &str) -> QueryResult<Option<ProgramOptions>> {
    programs::table
        .filter(programs::name.eq(name))
        .select((
            programs::priority,
            programs::max_running,
            programs::per_minute,
        ))
        .first(conn)
        .optional()
        .map(|found| {
            found.map(|(priority, max_running, per_minute)| ProgramOptions {
                priority,
                max_running,
                per_minute,
            })
        })
}

/// Whether [`enqueue`] would take this task now, without queueing it (it runs in a savepoint
/// that is rolled back): for a batch's callback, which SQL queues when the batch ends, too
/// late to refuse it to whoever asked for it.
pub fn check_queueable(
    conn: &mut PgConnection,
    name: &str,
    params: Option<&Value>,
) -> Result<(), OperationError> {
    let rolled_back = diesel::result::Error::RollbackTransaction;
    let tried = conn.transaction(|conn| {
        enqueue(conn, name, params, &RunOptions::default())?;
        Err::<(), _>(OperationError::Database(rolled_back))
    });
    match tried {
        Err(OperationError::Database(diesel::result::Error::RollbackTransaction)) => Ok(()),
        other => other,
    }
}
