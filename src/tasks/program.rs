//! What a program is and what it sees while it runs: its function (plain or transactional),
//! its typed parameters, a database connection, a cancellation flag and a progress reporter.
//! A leaf module: the engine depends on it, it depends on nothing of the engine.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use diesel::PgConnection;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    config::Config,
    db::{PgPool, PooledPg},
    ids::TaskId,
    tasks::{
        flow::{self, BatchCounts, UpstreamTask},
        params::ParamSpec,
        table::ResultTable,
    },
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
    /// The database went away under the program (or no connection could be had): the
    /// infrastructure failed, not the program. A transactional attempt's work rolled back
    /// with it, so the engine gives that attempt back.
    #[error("{0}")]
    ConnectionLost(String),
    /// Not a failure: run this task again after the given time, without spending an attempt
    /// (waiting for something outside, say). A transactional program's work rolls back.
    #[error("snoozed for {0:?}")]
    Snooze(Duration),
}

impl TaskError {
    pub fn failed(message: impl Into<String>) -> TaskError {
        TaskError::Failed(message.into())
    }
}

impl From<diesel::result::Error> for TaskError {
    fn from(err: diesel::result::Error) -> Self {
        if crate::db::lost_connection(&err) {
            TaskError::ConnectionLost(err.to_string())
        } else {
            TaskError::Failed(format!("database error: {err}"))
        }
    }
}

impl From<diesel::r2d2::PoolError> for TaskError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        TaskError::ConnectionLost(format!("no database connection: {err}"))
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
    /// From the program's parameter struct: `params::specs_of::<TheParams>()`.
    pub params: Vec<ParamSpec>,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Registered at start as a program of the same name, with this schedule.
    pub default_schedule: Option<&'static str>,
    /// Programs of this function start with this `max_running` limit (staff may change it).
    pub default_max_running: Option<u32>,
    pub run: ProgramFn,
}

impl ProgramFunction {
    /// Whether its work commits with its outcome (so a lost attempt had no effect).
    pub fn is_transactional(&self) -> bool {
        matches!(self.run, ProgramFn::Transactional(_))
    }
}

/// What the app's settings say to programs.
#[derive(Debug, Clone)]
pub struct ProgramSettings {
    /// The only folder `import_catalog` reads from (`BOOKSTORE_IMPORT_DIR`).
    pub import_dir: std::path::PathBuf,
    /// The largest file it reads (`BOOKSTORE_IMPORT_MAX_MB`).
    pub import_max_bytes: u64,
    /// How mails are composed and sent (`send_mail`), and the shop's public address.
    pub mail: crate::mail::Mailer,
    /// Where the `backup` program writes, and what it backs up.
    pub backups: crate::backup::BackupSettings,
}

impl From<&Config> for ProgramSettings {
    fn from(config: &Config) -> ProgramSettings {
        ProgramSettings {
            import_dir: config.import_dir(),
            import_max_bytes: config.import_max_mb.saturating_mul(1024 * 1024),
            mail: crate::mail::Mailer::from_config(config),
            backups: crate::backup::BackupSettings::from(config),
        }
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
    attempt: AttemptContext,
    last_progress: Mutex<Option<Instant>>,
}

/// What the engine gives one attempt (a [`TaskContext`] wraps it for the program).
pub struct AttemptContext {
    pub task_id: TaskId,
    pub attempt: i32,
    pub params: Value,
    pub pool: PgPool,
    pub cancel: Arc<AtomicBool>,
    pub reporter: Arc<dyn ProgressReporter>,
    pub settings: Arc<ProgramSettings>,
}

impl TaskContext {
    pub fn new(attempt: AttemptContext) -> TaskContext {
        TaskContext {
            attempt,
            last_progress: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &ProgramSettings {
        &self.attempt.settings
    }

    pub fn task_id(&self) -> TaskId {
        self.attempt.task_id
    }

    /// 1 for the first try.
    pub fn attempt(&self) -> i32 {
        self.attempt.attempt
    }

    pub fn conn(&self) -> Result<PooledPg, TaskError> {
        Ok(self.attempt.pool.get()?)
    }

    pub fn is_cancelled(&self) -> bool {
        self.attempt.cancel.load(Ordering::Relaxed)
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
        self.attempt.reporter.report(done, total, message);
        self.check_cancelled()
    }

    /// The tasks this one was queued after (`after => ..`), with their results: a step of a
    /// workflow reads what the steps before it produced.
    pub fn upstream(&self) -> Result<Vec<UpstreamTask>, TaskError> {
        let mut conn = self.conn()?;
        Ok(flow::upstream(&mut conn, self.task_id())?)
    }

    /// For a batch's callback: the batch's counts (finished, failed, of how many).
    pub fn batch(&self) -> Result<Option<BatchCounts>, TaskError> {
        let mut conn = self.conn()?;
        Ok(flow::batch_of_callback(&mut conn, self.task_id())?)
    }

    /// The task's parameters as the program's parameter struct. `run_program` checked them
    /// against the schema derived from that struct (and filled in its defaults), so a failure
    /// here means the task row was edited by hand.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        let params = match &self.attempt.params {
            Value::Null => Value::Object(Default::default()),
            params => params.clone(),
        };
        serde_json::from_value(params).map_err(|err| {
            TaskError::failed(format!("the parameters do not fit this program: {err}"))
        })
    }
}
