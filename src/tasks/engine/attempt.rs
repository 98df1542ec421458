//! One attempt at a task, on an executor thread: the program runs under a panic guard and,
//! when it is transactional (or a SQL function), inside the transaction that records its
//! success, which commits only while the attempt is still this node's. What its end means
//! (failed, cancelled, timed out, interrupted, lost, its connection lost) is decided here.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use chrono::Utc;
use diesel::{Connection, PgConnection};
use serde_json::Value;

use crate::{
    db::PgPool,
    tasks::{
        engine::{
            job::{ExecutorContext, Job, Outcome, StopReason, StopSignal},
            store::{self, AttemptKey, FunctionKind, Success},
        },
        program::{
            AttemptContext, ProgramFn, ProgressReporter, TaskContext, TaskError, TaskOutput,
        },
        table::ResultTable,
    },
};

/// The longest a progress report waits for a connection.
const PROGRESS_WAIT: Duration = Duration::from_secs(1);

/// Why a transaction around a program did not commit.
enum Rollback {
    Program(TaskError),
    Database(diesel::result::Error),
    /// The attempt is no longer ours: its work is undone.
    Lost,
}

impl From<diesel::result::Error> for Rollback {
    fn from(err: diesel::result::Error) -> Self {
        Rollback::Database(err)
    }
}

impl From<TaskError> for Rollback {
    fn from(err: TaskError) -> Self {
        Rollback::Program(err)
    }
}

pub(super) fn execute(context: &ExecutorContext, job: &Job) -> Outcome {
    let task = &job.task;
    let started_at = Utc::now();
    let params = task.parameters.clone().unwrap_or(Value::Null);
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Outcome, Rollback> {
        match task.function_kind {
            FunctionKind::Sql => in_transaction(context, job, started_at, |conn| {
                let ran = store::run_sql_function(
                    conn,
                    task.key.task_id,
                    &task.function_name,
                    &params,
                    task.timeout_seconds,
                )?;
                Ok(sql_output(&task.function_name, ran))
            }),
            FunctionKind::Rust => {
                let Some(function) = context.registry.get(&task.function_name) else {
                    return Ok(Outcome::Failed {
                        error: format!("this app has no function named {}", task.function_name),
                        retryable: false,
                    });
                };
                let ctx = TaskContext::new(AttemptContext {
                    task_id: task.key.task_id,
                    attempt: task.key.attempt,
                    params: params.clone(),
                    pool: context.pool.clone(),
                    cancel: job.signal.flag.clone(),
                    reporter: Arc::new(AttemptReporter {
                        pool: context.pool.clone(),
                        worker_id: context.worker_id.clone(),
                        key: task.key,
                        signal: job.signal.clone(),
                    }),
                    settings: context.settings.clone(),
                });
                match function.run {
                    ProgramFn::Plain(run) => {
                        // Outside a transaction whatever it did before the database went away
                        // stays done: an ordinary failure, retried by the program's policy.
                        let output = run(&ctx).map_err(|err| match err {
                            TaskError::ConnectionLost(error) => TaskError::Failed(format!(
                                "the database connection was lost: {error}"
                            )),
                            other => other,
                        })?;
                        let (result, result_table) = output.into_parts();
                        Ok(Outcome::Done(Success {
                            key: task.key,
                            result,
                            result_table,
                            started_at,
                            ended_at: Utc::now(),
                            limited: task.limited,
                            has_dependents: task.has_dependents,
                        }))
                    }
                    ProgramFn::Transactional(run) => {
                        in_transaction(context, job, started_at, |conn| Ok(run(&ctx, conn)?))
                    }
                }
            }
        }
    }));
    match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(Rollback::Lost)) => Outcome::Lost,
        Ok(Err(Rollback::Program(TaskError::Cancelled))) => {
            stopped(&job.signal, task.timeout_seconds)
        }
        Ok(Err(Rollback::Program(TaskError::Failed(error)))) => {
            if job.signal.reason() == Some(StopReason::TimedOut) {
                timed_out(task.timeout_seconds)
            } else {
                Outcome::Failed {
                    error,
                    retryable: true,
                }
            }
        }
        Ok(Err(Rollback::Program(TaskError::ConnectionLost(error)))) => {
            Outcome::ConnectionLost { error }
        }
        Ok(Err(Rollback::Program(TaskError::Snooze(wait)))) => Outcome::Snoozed { wait },
        Ok(Err(Rollback::Database(err))) if sql_snooze(&err).is_some() => Outcome::Snoozed {
            wait: sql_snooze(&err).unwrap_or_default(),
        },
        Ok(Err(Rollback::Database(err))) if crate::db::lost_connection(&err) => {
            Outcome::ConnectionLost {
                error: err.to_string(),
            }
        }
        Ok(Err(Rollback::Database(err))) => Outcome::Failed {
            error: database_message(&err),
            retryable: true,
        },
        Err(panic) => Outcome::Failed {
            error: format!("the program panicked: {}", panic_message(&panic)),
            retryable: true,
        },
    }
}

/// Runs `work` and records its success in one transaction: both commit or neither does.
fn in_transaction(
    context: &ExecutorContext,
    job: &Job,
    started_at: chrono::DateTime<Utc>,
    work: impl FnOnce(&mut PgConnection) -> Result<TaskOutput, Rollback>,
) -> Result<Outcome, Rollback> {
    let mut conn = context
        .pool
        .get()
        .map_err(|err| Rollback::Program(TaskError::from(err)))?;
    conn.transaction(|conn| {
        let (result, result_table) = work(conn)?.into_parts();
        let success = Success {
            key: job.task.key,
            result,
            result_table,
            started_at,
            ended_at: Utc::now(),
            limited: job.task.limited,
            has_dependents: job.task.has_dependents,
        };
        let recorded = store::finish(conn, &context.worker_id, std::slice::from_ref(&success))?;
        if recorded.contains(&job.task.key) {
            Ok(Outcome::Recorded)
        } else {
            Err(Rollback::Lost)
        }
    })
}

fn sql_output(function_name: &str, ran: store::SqlFunctionResult) -> TaskOutput {
    if let Some(text) = ran.text_result {
        return TaskOutput::Text(text);
    }
    let columns = ran
        .columns
        .unwrap_or_else(|| vec![function_name.to_owned()]);
    let mut table = ResultTable {
        columns,
        ..ResultTable::default()
    };
    if let Some(Value::Array(rows)) = ran.cells {
        for row in rows {
            let Value::Array(cells) = row else { continue };
            let mut cells: Vec<String> = cells
                .into_iter()
                .map(|cell| match cell {
                    Value::String(text) => text,
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            cells.resize(table.columns.len(), String::new());
            table.rows.push(cells);
        }
    }
    TaskOutput::Table(table)
}

/// The program returned `Cancelled`: what stopped it decides what that means.
fn stopped(signal: &StopSignal, timeout_seconds: i32) -> Outcome {
    match signal.reason() {
        Some(StopReason::Shutdown) => Outcome::Interrupted,
        Some(StopReason::Lost) => Outcome::Lost,
        Some(StopReason::TimedOut) => timed_out(timeout_seconds),
        Some(StopReason::Cancelled) | None => Outcome::Cancelled,
    }
}

fn timed_out(timeout_seconds: i32) -> Outcome {
    Outcome::Failed {
        error: format!("timed out after {} s", timeout_seconds.max(1)),
        retryable: true,
    }
}

/// A SQL program called `task_snooze_sql(wait)`: its error's DETAIL is
/// `{"snooze_seconds": n}`.
fn sql_snooze(err: &diesel::result::Error) -> Option<Duration> {
    let diesel::result::Error::DatabaseError(_, info) = err else {
        return None;
    };
    #[derive(serde::Deserialize)]
    struct Snooze {
        snooze_seconds: f64,
    }
    let snooze: Snooze = serde_json::from_str(info.details()?).ok()?;
    Duration::try_from_secs_f64(snooze.snooze_seconds.max(0.0)).ok()
}

/// PostgreSQL's own message for errors raised inside a SQL program.
fn database_message(err: &diesel::result::Error) -> String {
    match err {
        diesel::result::Error::DatabaseError(_, info) => info.message().to_owned(),
        other => format!("database error: {other}"),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Writes a running attempt's progress for this attempt only, and stops the program when the
/// task was cancelled or the attempt is no longer this node's.
struct AttemptReporter {
    pool: PgPool,
    worker_id: String,
    key: AttemptKey,
    signal: Arc<StopSignal>,
}

impl ProgressReporter for AttemptReporter {
    fn report(&self, done: u64, total: u64, message: &str) {
        // Best effort: with the database away a program must not stall on its progress.
        let written = self
            .pool
            .get_timeout(PROGRESS_WAIT)
            .map_err(|err| err.to_string())
            .and_then(|mut conn| {
                store::progress(
                    &mut conn,
                    &self.worker_id,
                    self.key,
                    done.min(i64::MAX as u64) as i64,
                    total.min(i64::MAX as u64) as i64,
                    message,
                )
                .map_err(|err| err.to_string())
            });
        match written {
            Ok(Some(false)) => {}
            Ok(Some(true)) => self.signal.stop(StopReason::Cancelled),
            Ok(None) => self.signal.stop(StopReason::Lost),
            Err(err) => tracing::warn!(task = %self.key.task_id, "recording progress: {err}"),
        }
    }
}
