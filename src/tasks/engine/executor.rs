//! Runs programs on a fixed pool of threads (one per unit of concurrency; no thread per
//! task). Claimed tasks wait in a local queue (a channel the threads take from); each thread
//! runs one at a time under a panic guard and reports the outcome to the engine's loop, which
//! records outcomes in batches. Transactional and SQL programs record their own outcome inside
//! the transaction that did their work.
//!
//! Timeouts: the loop's watchdog ([`Executor::watch`]) tells a program past its deadline to
//! stop; one that has not stopped a while later is given up on (its failure is recorded, not
//! retried: a retry would run beside the runaway) and keeps its thread until it really ends.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use chrono::Utc;
use diesel::{Connection, PgConnection};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::{
    db::PgPool,
    tasks::{
        Registry,
        engine::store::{self, AttemptKey, ClaimedTask, FunctionKind, Success},
        program::{
            AttemptContext, ProgramFn, ProgramSettings, ProgressReporter, TaskContext, TaskError,
            TaskOutput,
        },
        table::ResultTable,
    },
};

/// The longest a progress report waits for a connection.
const PROGRESS_WAIT: Duration = Duration::from_secs(1);
/// How long a timed-out program gets to stop after being told to.
const STOP_AFTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an attempt was told to stop; the first reason wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StopReason {
    /// Someone asked to cancel the task.
    Cancelled = 1,
    /// It ran past its program's timeout.
    TimedOut = 2,
    /// Its lease was lost (another node may run it now): it must write nothing.
    Lost = 3,
    /// This node is shutting down: back to the queue.
    Shutdown = 4,
}

/// An attempt's stop flag (what the program checks) and the reason it was raised; also
/// whether a thread has taken the attempt from the local queue (heartbeats tell the database,
/// so that a lost worker's never-started attempts are not counted).
#[derive(Debug, Default)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    reason: AtomicU8,
    started: AtomicBool,
}

impl StopSignal {
    pub fn has_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn stop(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::TimedOut),
            3 => Some(StopReason::Lost),
            4 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}

/// A claimed task handed to the executor.
pub struct Job {
    pub task: ClaimedTask,
    pub signal: Arc<StopSignal>,
}

/// How an attempt ended, as far as this node is concerned.
#[derive(Debug)]
pub enum Outcome {
    /// Succeeded; to be recorded (in a batch).
    Done(Success),
    /// Succeeded and already recorded, in the transaction that did its work.
    Recorded,
    Failed {
        error: String,
        retryable: bool,
    },
    /// Stopped because someone asked.
    Cancelled,
    /// Stopped by this node's shutdown: back to the queue, no attempt spent.
    Interrupted,
    /// A transactional attempt lost its database connection: its work rolled back, so it
    /// goes back to the queue without spending an attempt.
    ConnectionLost {
        error: String,
    },
    /// No longer held by this node: nothing to write.
    Lost,
}

#[derive(Debug)]
pub struct Report {
    pub key: AttemptKey,
    pub outcome: Outcome,
    /// How long the program ran (None when it never started).
    pub ran_for: Option<Duration>,
}

struct Running {
    key: AttemptKey,
    deadline: Instant,
    timeout: Duration,
    signal: Arc<StopSignal>,
    told_to_stop_at: Option<Instant>,
    /// The watchdog gave up on it and reported its failure; its own report is dropped.
    abandoned: bool,
}

/// What every executor thread needs.
pub struct ExecutorContext {
    pub pool: PgPool,
    pub registry: Arc<Registry>,
    pub worker_id: String,
    pub settings: Arc<ProgramSettings>,
}

/// What one executor thread is running, for the watchdog.
type Slot = Arc<Mutex<Option<Running>>>;

pub struct Executor {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    /// The local queue, as the threads see it.
    queue: crossbeam_channel::Receiver<Job>,
    /// One per thread, replacements included.
    slots: Mutex<Vec<Slot>>,
    context: Arc<ExecutorContext>,
    reports: mpsc::UnboundedSender<Report>,
    /// Threads started to stand in for runaways, and how many may be.
    replacements: usize,
    max_replacements: usize,
}

impl Executor {
    pub fn start(
        threads: usize,
        context: Arc<ExecutorContext>,
        reports: mpsc::UnboundedSender<Report>,
    ) -> std::io::Result<Executor> {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let executor = Executor {
            jobs: Some(jobs),
            queue,
            slots: Mutex::new(Vec::new()),
            context,
            reports,
            replacements: 0,
            max_replacements: threads,
        };
        for _ in 0..threads {
            executor.start_thread()?;
        }
        Ok(executor)
    }

    fn start_thread(&self) -> std::io::Result<()> {
        let slot: Slot = Arc::new(Mutex::new(None));
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let index = slots.len();
        slots.push(slot.clone());
        let (queue, context, reports) = (
            self.queue.clone(),
            self.context.clone(),
            self.reports.clone(),
        );
        thread::Builder::new()
            .name(format!("task-executor-{index}"))
            .spawn(move || work(&queue, &slot, &context, &reports))?;
        Ok(())
    }

    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // The threads end only when the sender is dropped, so this cannot fail.
            let _ = jobs.send(job);
        }
    }

    /// Takes back the jobs no thread has started (at shutdown).
    pub fn take_queued(&self) -> Vec<Job> {
        self.queue.try_iter().collect()
    }

    /// The watchdog: tells programs past their deadline to stop, and gives up on those that
    /// were told a while ago and still run. Returns the failures to record for those.
    pub fn watch(&mut self) -> Vec<Report> {
        let now = Instant::now();
        let mut given_up = Vec::new();
        let slots: Vec<Slot> = self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for slot in slots {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            let Some(running) = slot.as_mut() else {
                continue;
            };
            if running.abandoned || now < running.deadline {
                continue;
            }
            match running.told_to_stop_at {
                None => {
                    running.signal.stop(StopReason::TimedOut);
                    running.told_to_stop_at = Some(now);
                }
                Some(told) if now.duration_since(told) >= STOP_AFTER_TIMEOUT => {
                    running.abandoned = true;
                    given_up.push(Report {
                        key: running.key,
                        outcome: Outcome::Failed {
                            error: format!(
                                "timed out after {} s and did not stop when told to; not retried",
                                running.timeout.as_secs()
                            ),
                            retryable: false,
                        },
                        ran_for: Some(running.timeout),
                    });
                }
                Some(_) => {}
            }
        }
        // The runaway keeps its thread until it ends (then the thread ends too); another one
        // takes its place, so the local queue is not left waiting behind it. Up to a limit: a
        // program that wedges every thread it gets must not start threads without end.
        for _ in 0..given_up.len() {
            if self.replacements >= self.max_replacements {
                tracing::error!("runaway programs hold task threads; no more replacements");
                break;
            }
            match self.start_thread() {
                Ok(()) => self.replacements += 1,
                Err(err) => tracing::error!("starting a replacement task thread: {err}"),
            }
        }
        given_up
    }

    /// Closes the local queue: threads end once their current program returns.
    pub fn close(&mut self) {
        self.jobs = None;
    }
}

fn work(
    queue: &crossbeam_channel::Receiver<Job>,
    slot: &Mutex<Option<Running>>,
    context: &ExecutorContext,
    reports: &mpsc::UnboundedSender<Report>,
) {
    loop {
        let Ok(job) = queue.recv() else { return };
        let key = job.task.key;
        // Stopped while it waited (cancelled, lost, shutdown): it never starts.
        if let Some(reason) = job.signal.reason() {
            let outcome = match reason {
                StopReason::Cancelled => Outcome::Cancelled,
                StopReason::Lost => Outcome::Lost,
                StopReason::Shutdown | StopReason::TimedOut => Outcome::Interrupted,
            };
            let _ = reports.send(Report {
                key,
                outcome,
                ran_for: None,
            });
            continue;
        }
        job.signal.started.store(true, Ordering::SeqCst);
        let timeout = Duration::from_secs(job.task.timeout_seconds.max(1) as u64);
        let started = Instant::now();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            key,
            deadline: started + timeout,
            timeout,
            signal: job.signal.clone(),
            told_to_stop_at: None,
            abandoned: false,
        });
        let outcome = execute(context, &job);
        let abandoned = slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some_and(|running| running.abandoned);
        if abandoned {
            // Its failure was recorded when it was given up on, and a replacement thread
            // took its place: this one is done.
            return;
        }
        let _ = reports.send(Report {
            key,
            outcome,
            ran_for: Some(started.elapsed()),
        });
    }
}

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

fn execute(context: &ExecutorContext, job: &Job) -> Outcome {
    let task = &job.task;
    let started_at = Utc::now();
    let params = task.parameters.clone().unwrap_or(Value::Null);
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Outcome, Rollback> {
        match task.function_kind {
            FunctionKind::Sql => in_transaction(context, job, started_at, |conn| {
                let ran = store::run_sql_function(
                    conn,
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
            Err(err) => tracing::warn!(task = self.key.task_id, "recording progress: {err}"),
        }
    }
}
