//! The operations staff, the API and a DBA use: the four of our specification, which call the
//! SQL functions of the same names (migration `task_engine`) so psql and the app share one
//! implementation, plus cancel and program settings. The engine's own statements live in
//! `engine::store`, bulk actions in `tasks::bulk`.
//!
//! The SQL operations that change something record their own audit events under the
//! transaction's actor. Each comes twice: as psql has it (`run_program`: the actor is whoever
//! the caller's transaction named with `audit::act_as`, e.g. the schedule firer), and as the
//! pages and the API call it, by someone (`run_program_as`: its own transaction under that
//! [`AuditContext`]). Program settings exist only here, so they take the context and write
//! their records themselves, in the transaction of the change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    result::Error as DieselError,
    sql_query,
    sql_types::{BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use serde_json::{Value, json};

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::programs,
    ids::{ProgramId, TaskId},
    tasks::{
        refusal::{FieldProblem, ParamRefusal},
        schedule::{self, Schedule},
        status::TaskStatus,
    },
};

/// Why an operation was refused, as our SQL functions name it in their error's DETAIL (and the
/// API's error `code` says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    ProgramNotFound,
    ProgramDisabled,
    InvalidParameters,
    InvalidSchedule,
    TaskNotFound,
    UnknownFunction,
    NameTaken,
    InvalidName,
    /// A run option (priority, unique key, limits, ...) out of range.
    InvalidOption,
    /// `after` names a task that does not exist.
    UnknownUpstream,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::ProgramNotFound => "program_not_found",
            RefusalCode::ProgramDisabled => "program_disabled",
            RefusalCode::InvalidParameters => "invalid_parameters",
            RefusalCode::InvalidSchedule => "invalid_schedule",
            RefusalCode::TaskNotFound => "task_not_found",
            RefusalCode::UnknownFunction => "unknown_function",
            RefusalCode::NameTaken => "name_taken",
            RefusalCode::InvalidName => "invalid_name",
            RefusalCode::InvalidOption => "invalid_option",
            RefusalCode::UnknownUpstream => "unknown_upstream",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused operation: a machine-readable code, a readable message, and a problem per field.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error("{message}")]
    Refused {
        code: RefusalCode,
        message: String,
        fields: BTreeMap<String, FieldProblem>,
    },
    #[error(transparent)]
    Database(DieselError),
}

impl OperationError {
    pub fn code(&self) -> &'static str {
        match self {
            OperationError::Refused { code, .. } => code.as_str(),
            OperationError::Database(_) => "internal",
        }
    }
}

/// Our SQL functions raise errors with a JSON DETAIL `{"code", "fields"}`; anything else is a
/// database failure.
impl From<DieselError> for OperationError {
    fn from(err: DieselError) -> Self {
        if let DieselError::DatabaseError(_, info) = &err {
            #[derive(serde::Deserialize)]
            struct Detail {
                code: RefusalCode,
                #[serde(default)]
                fields: BTreeMap<String, String>,
            }
            if let Some(detail) = info
                .details()
                .and_then(|d| serde_json::from_str::<Detail>(d).ok())
            {
                return OperationError::Refused {
                    code: detail.code,
                    message: info.message().to_owned(),
                    fields: detail
                        .fields
                        .into_iter()
                        .map(|(field, text)| (field, FieldProblem::AfterName(text)))
                        .collect(),
                };
            }
        }
        OperationError::Database(err)
    }
}

#[derive(QueryableByName)]
struct NewProgram {
    #[diesel(sql_type = BigInt)]
    id: ProgramId,
}

#[derive(QueryableByName)]
struct NewTask {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
}

/// A program's refusal of its parameters before they are queued (`programs::check_before_queueing`,
/// for the pages and the API) is the same refusal `run_program` gives.
impl From<ParamRefusal> for OperationError {
    fn from(refusal: ParamRefusal) -> OperationError {
        OperationError::Refused {
            code: RefusalCode::InvalidParameters,
            message: refusal.message(),
            fields: BTreeMap::from([(refusal.param.to_owned(), refusal.problem)]),
        }
    }
}

/// `run_program(name, params)`: validates and queues a task; returns its id.
pub fn run_program(
    conn: &mut PgConnection,
    name: &str,
    params: Option<&Value>,
) -> Result<TaskId, OperationError> {
    Ok(sql_query("SELECT run_program($1, $2) AS id")
        .bind::<Text, _>(name)
        .bind::<Nullable<Jsonb>, _>(params)
        .get_result::<NewTask>(conn)?
        .id)
}

/// `register_program(name, function_name)`: returns the new program's id.
pub fn register_program(
    conn: &mut PgConnection,
    name: &str,
    function_name: &str,
) -> Result<ProgramId, OperationError> {
    Ok(sql_query("SELECT register_program($1, $2) AS id")
        .bind::<Text, _>(name)
        .bind::<Text, _>(function_name)
        .get_result::<NewProgram>(conn)?
        .id)
}

/// Runs `work` (our SQL operations) in a transaction whose events name `context` as their
/// actor, then writes the log line of `action` (the SQL functions wrote the rows).
pub(crate) fn as_actor<T>(
    conn: &mut PgConnection,
    context: &AuditContext,
    action: AuditAction,
    subject: impl FnOnce(&T) -> String,
    work: impl FnOnce(&mut PgConnection) -> Result<T, OperationError>,
) -> Result<T, OperationError> {
    let done = conn.transaction(|conn| {
        audit::act_as(conn, context)?;
        work(conn)
    })?;
    audit::log(context, action, &subject(&done));
    Ok(done)
}

/// [`run_program`] by `context`.
pub fn run_program_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    params: Option<&Value>,
) -> Result<TaskId, OperationError> {
    let subject = |id: &TaskId| format!("task {id}");
    as_actor(conn, context, AuditAction::TaskQueued, subject, |conn| {
        let id = run_program(conn, name, params)?;
        super::trace::record(conn, &[id])?;
        Ok(id)
    })
}

/// [`register_program`] by `context`.
pub fn register_program_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    name: &str,
    function_name: &str,
) -> Result<ProgramId, OperationError> {
    let subject = |_: &ProgramId| format!("program {name}");
    as_actor(
        conn,
        context,
        AuditAction::ProgramRegistered,
        subject,
        |conn| register_program(conn, name, function_name),
    )
}

/// One row of `get_programs()`.
#[derive(Debug, Clone, QueryableByName, serde::Serialize, utoipa::ToSchema)]
pub struct ProgramInfo {
    #[diesel(sql_type = BigInt)]
    pub id: ProgramId,
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
    pub last_task_id: Option<TaskId>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_status: Option<TaskStatus>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_run_at: Option<DateTime<Utc>>,
    /// Its queued tasks wait until it is resumed.
    #[diesel(sql_type = Bool)]
    pub paused: bool,
    /// Its tasks' default priority (higher runs first).
    #[diesel(sql_type = Integer)]
    pub priority: i32,
    /// At most this many of its tasks claimed at once, cluster-wide.
    #[diesel(sql_type = Nullable<Integer>)]
    pub max_running: Option<i32>,
    /// At most this many of its tasks started in any 60 s.
    #[diesel(sql_type = Nullable<Integer>)]
    pub per_minute: Option<i32>,
}

pub fn get_programs(conn: &mut PgConnection) -> QueryResult<Vec<ProgramInfo>> {
    sql_query("SELECT * FROM get_programs()").load(conn)
}

/// One row of `get_task_result(id)`.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct TaskResult {
    #[diesel(sql_type = BigInt)]
    pub id: TaskId,
    #[diesel(sql_type = Text)]
    pub program: String,
    #[diesel(sql_type = Text)]
    pub status: TaskStatus,
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
    task_id: TaskId,
) -> Result<TaskResult, OperationError> {
    Ok(sql_query("SELECT * FROM get_task_result($1)")
        .bind::<BigInt, _>(task_id)
        .get_result(conn)?)
}

/// `cancel_task(id)`: returns the status after the call (`running` means "asked to stop").
pub fn cancel_task(conn: &mut PgConnection, task_id: TaskId) -> Result<TaskStatus, OperationError> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: TaskStatus,
    }
    Ok(sql_query("SELECT cancel_task($1) AS status")
        .bind::<BigInt, _>(task_id)
        .get_result::<Status>(conn)?
        .status)
}

/// [`cancel_task`] by `context`.
pub fn cancel_task_as(
    conn: &mut PgConnection,
    context: &AuditContext,
    task_id: TaskId,
) -> Result<TaskStatus, OperationError> {
    let subject = |_: &TaskStatus| format!("task {task_id}");
    as_actor(conn, context, AuditAction::TaskCancelled, subject, |conn| {
        cancel_task(conn, task_id)
    })
}

/// Sets or clears a program's schedule (validated here) and enables or disables it, by
/// `context`, recording what changed: the schedule when it reads differently (the page shows
/// "0 3 * * *" as "daily at 03:00": saving that is no change), and enabling or disabling.
pub fn configure_program(
    conn: &mut PgConnection,
    context: &AuditContext,
    program_id: ProgramId,
    schedule: Option<&str>,
    enabled: bool,
) -> Result<(), OperationError> {
    let schedule = schedule.map(str::trim).filter(|s| !s.is_empty());
    let next = match schedule {
        None => None,
        Some(text) => {
            let parsed = Schedule::parse(text).map_err(|message| OperationError::Refused {
                code: RefusalCode::InvalidSchedule,
                message: format!("invalid schedule: {message}"),
                fields: BTreeMap::from([("schedule".to_owned(), FieldProblem::AfterName(message))]),
            })?;
            parsed.next_after(Utc::now())
        }
    };
    conn.transaction(|conn| {
        // The settings replaced, locked until the records of what changed are written.
        let before: Option<(String, Option<String>, bool)> = programs::table
            .find(program_id)
            .select((programs::name, programs::schedule, programs::enabled))
            // Not a key update: tasks' foreign key checks (each task queued or archived
            // takes a KEY SHARE lock on its program) need not wait for this.
            .for_no_key_update()
            .first(conn)
            .optional()
            .map_err(OperationError::Database)?;
        let Some((name, schedule_before, enabled_before)) = before else {
            return Err(OperationError::Refused {
                code: RefusalCode::ProgramNotFound,
                message: format!("no program with id {program_id}"),
                fields: BTreeMap::new(),
            });
        };
        diesel::update(programs::table.find(program_id))
            .set((
                programs::schedule.eq(schedule),
                programs::next_run_at.eq(next),
                programs::enabled.eq(enabled),
            ))
            .execute(conn)
            .map_err(OperationError::Database)?;
        let subject = format!("program {name}");
        let schedule = schedule.unwrap_or("");
        if schedule::in_words(schedule_before.as_deref().unwrap_or(""))
            != schedule::in_words(schedule)
        {
            let details = json!({ "schedule": schedule });
            audit::record(
                conn,
                context,
                AuditAction::ProgramScheduled,
                &subject,
                details,
            )?;
        }
        if enabled_before != enabled {
            let action = if enabled {
                AuditAction::ProgramEnabled
            } else {
                AuditAction::ProgramDisabled
            };
            audit::record(conn, context, action, &subject, json!({}))?;
        }
        Ok(())
    })
}

/// Pauses or resumes a program's queue, and records who did it: queued tasks wait while it
/// is paused (its schedule still queues them); resuming wakes the workers. Returns whether
/// the program exists.
pub fn set_paused(
    conn: &mut PgConnection,
    context: &AuditContext,
    program: &str,
    paused: bool,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let updated = diesel::update(programs::table.filter(programs::name.eq(program)))
            .set(programs::paused.eq(paused))
            .execute(conn)?;
        if updated == 0 {
            return Ok(false);
        }
        if !paused {
            sql_query("SELECT pg_notify('bookstore_tasks', '')").execute(conn)?;
        }
        let action = if paused {
            AuditAction::ProgramPaused
        } else {
            AuditAction::ProgramResumed
        };
        let subject = format!("program {program}");
        audit::record(conn, context, action, &subject, json!({}))?;
        Ok(true)
    })
}

/// The function a program runs, if there is such a program.
pub fn function_of(conn: &mut PgConnection, program: &str) -> QueryResult<Option<String>> {
    programs::table
        .filter(programs::name.eq(program))
        .select(programs::function_name)
        .first(conn)
        .optional()
}
