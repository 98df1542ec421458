//! What a running program sees: its parameters, a database connection, a cancellation flag it
//! checks, and a progress reporter.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use serde_json::Value;

use crate::{
    db::{PgPool, PooledPg},
    tasks::{store, table::ResultTable},
};

/// What a program returns.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    Text(String),
    Table(ResultTable),
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

/// Progress is written at most this often; pages poll, nobody needs every step.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

pub struct TaskContext {
    task_id: i64,
    attempt: i32,
    params: Value,
    pool: PgPool,
    cancel: Arc<AtomicBool>,
    last_progress: Mutex<Option<Instant>>,
}

impl TaskContext {
    pub fn new(
        task_id: i64,
        attempt: i32,
        params: Value,
        pool: PgPool,
        cancel: Arc<AtomicBool>,
    ) -> TaskContext {
        TaskContext {
            task_id,
            attempt,
            params,
            pool,
            cancel,
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

    /// Reports `done` of `total` steps; stored for the pages at most every 250 ms (and always
    /// for the last step).
    pub fn progress(&self, done: u64, total: u64, message: &str) {
        {
            let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
            if done < total && last.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        let written = self
            .pool
            .get()
            .map_err(|err| err.to_string())
            .and_then(|mut conn| {
                store::record_progress(
                    &mut conn,
                    self.task_id,
                    self.attempt,
                    done as i64,
                    total as i64,
                    message,
                )
                .map_err(|err| err.to_string())
            });
        if let Err(err) = written {
            tracing::warn!(task = self.task_id, "recording progress: {err}");
        }
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
