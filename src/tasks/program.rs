//! What a program is and what it sees while it runs: its function (plain or transactional),
//! its parameters, a database connection, a cancellation flag and a progress reporter. A leaf
//! module: the engine depends on it, it depends on nothing of the engine.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use diesel::PgConnection;
use serde::Serialize;
use serde_json::Value;

use crate::{
    db::{PgPool, PooledPg},
    tasks::table::ResultTable,
};

/// What a program returns.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    Text(String),
    Table(ResultTable),
}

impl TaskOutput {
    /// The text form (`tasks.result`) and, for a table, its columns and rows.
    pub fn into_parts(self) -> (String, Option<Value>) {
        match self {
            TaskOutput::Text(text) => (text, None),
            TaskOutput::Table(table) => (
                table.to_text(),
                Some(serde_json::to_value(&table).unwrap_or(Value::Null)),
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The program saw the cancellation flag and stopped.
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

impl TaskError {
    pub fn failed(message: impl Into<String>) -> TaskError {
        TaskError::Failed(message.into())
    }
}

impl From<diesel::result::Error> for TaskError {
    fn from(err: diesel::result::Error) -> Self {
        TaskError::Failed(format!("database error: {err}"))
    }
}

impl From<diesel::r2d2::PoolError> for TaskError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        TaskError::Failed(format!("no database connection: {err}"))
    }
}

/// How a program's function runs.
#[derive(Clone, Copy)]
pub enum ProgramFn {
    /// Outside any transaction: may take connections, report progress, touch files. Its
    /// outcome is recorded after it returns, so after a crash it may run again (at least once).
    Plain(fn(&TaskContext) -> Result<TaskOutput, TaskError>),
    /// Inside the transaction that records its outcome: its writes and the task's end commit
    /// together or not at all, so its effect happens exactly once. Database work only.
    Transactional(fn(&TaskContext, &mut PgConnection) -> Result<TaskOutput, TaskError>),
}

/// A Rust function that programs can name.
pub struct ProgramFunction {
    pub name: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamSpec>,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Registered at start as a program of the same name, with this schedule.
    pub default_schedule: Option<&'static str>,
    pub run: ProgramFn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Text,
    Int,
    Bool,
    Date,
    Enum,
}

/// One parameter of a program, as the run form and `task_parameters_check` see it.
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: ParamKind,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub help: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl ParamSpec {
    fn new(name: &'static str, kind: ParamKind, help: &'static str) -> ParamSpec {
        ParamSpec {
            name,
            kind,
            required: false,
            default: None,
            help,
            choices: Vec::new(),
            min: None,
            max: None,
        }
    }

    pub fn text(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Text, help)
    }

    pub fn int(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Int, help)
    }

    pub fn bool(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Bool, help)
    }

    pub fn date(name: &'static str, help: &'static str) -> ParamSpec {
        ParamSpec::new(name, ParamKind::Date, help)
    }

    pub fn choice(name: &'static str, choices: &[&'static str], help: &'static str) -> ParamSpec {
        ParamSpec {
            choices: choices.to_vec(),
            ..ParamSpec::new(name, ParamKind::Enum, help)
        }
    }

    pub fn required(mut self) -> ParamSpec {
        self.required = true;
        self
    }

    pub fn default(mut self, value: impl Into<Value>) -> ParamSpec {
        self.default = Some(value.into());
        self
    }

    pub fn range(mut self, min: i64, max: i64) -> ParamSpec {
        self.min = Some(min);
        self.max = Some(max);
        self
    }
}

/// Where a running attempt's progress goes. The engine's reporter writes it for this attempt
/// only and raises the cancellation flag when the task was cancelled or the attempt lost.
pub trait ProgressReporter: Send + Sync {
    fn report(&self, done: u64, total: u64, message: &str);
}

/// Progress is written at most this often; pages poll, nobody needs every step.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

pub struct TaskContext {
    task_id: i64,
    attempt: i32,
    params: Value,
    pool: PgPool,
    cancel: Arc<AtomicBool>,
    reporter: Arc<dyn ProgressReporter>,
    last_progress: Mutex<Option<Instant>>,
}

impl TaskContext {
    pub fn new(
        task_id: i64,
        attempt: i32,
        params: Value,
        pool: PgPool,
        cancel: Arc<AtomicBool>,
        reporter: Arc<dyn ProgressReporter>,
    ) -> TaskContext {
        TaskContext {
            task_id,
            attempt,
            params,
            pool,
            cancel,
            reporter,
            last_progress: Mutex::new(None),
        }
    }

    pub fn task_id(&self) -> i64 {
        self.task_id
    }

    /// 1 for the first try.
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    pub fn conn(&self) -> Result<PooledPg, TaskError> {
        Ok(self.pool.get()?)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the task is asked to stop: `ctx.check_cancelled()?` in loops.
    pub fn check_cancelled(&self) -> Result<(), TaskError> {
        if self.is_cancelled() {
            Err(TaskError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps, waking early (with `Err(Cancelled)`) when the task is cancelled.
    pub fn sleep(&self, duration: Duration) -> Result<(), TaskError> {
        let end = Instant::now() + duration;
        loop {
            self.check_cancelled()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    /// Reports `done` of `total` steps (stored for the pages at most every 250 ms, and always
    /// for the last step). Returns `Err(Cancelled)` once the task is asked to stop, so
    /// `ctx.progress(..)?` makes any program that reports progress cancellable.
    pub fn progress(&self, done: u64, total: u64, message: &str) -> Result<(), TaskError> {
        self.check_cancelled()?;
        {
            let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
            if done < total && last.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        self.reporter.report(done, total, message);
        self.check_cancelled()
    }

    /// Parameters were checked against the schema by `run_program` (defaults filled in), so a
    /// missing or mistyped one here is a bug in the program's schema.
    fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name).filter(|v| !v.is_null())
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.param(name).and_then(Value::as_str).map(str::to_owned)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.param(name).and_then(Value::as_i64)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.param(name).and_then(Value::as_bool)
    }

    pub fn date(&self, name: &str) -> Option<NaiveDate> {
        self.text(name)
            .and_then(|text| NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok())
    }

    /// A required parameter, or a readable failure.
    pub fn required<T>(&self, name: &str, value: Option<T>) -> Result<T, TaskError> {
        value.ok_or_else(|| {
            TaskError::failed(format!("parameter {name} is missing or has the wrong type"))
        })
    }
}
