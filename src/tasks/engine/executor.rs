//! Runs programs on a fixed pool of threads (one per unit of concurrency; no thread per
//! task). Claimed tasks wait in a local queue (highest priority first, [`local_queue`]); each thread
//! runs one at a time ([`attempt`]: under a panic guard, transactional programs inside the
//! transaction that records their success) and reports the outcome to the engine's loop,
//! which records outcomes in batches.
//!
//! Timeouts: the loop's watchdog ([`Executor::watch`]) tells a program past its deadline to
//! stop; one that has not stopped a while later is given up on (its failure is recorded, not
//! retried: a retry would run beside the runaway) and keeps its thread until it really ends.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use self::local_queue::LocalQueue;

use crate::{
    db::PgPool,
    monitoring,
    tasks::{
        Registry,
        engine::{
            attempt,
            store::{AttemptKey, ClaimedTask, Success},
        },
        program::ProgramSettings,
        trace,
    },
};

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
    /// What the program sees (`ctx.is_cancelled()`).
    pub(super) flag: Arc<AtomicBool>,
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
    /// The program asked to run again after `wait`: back to the queue, no attempt spent.
    Snoozed {
        wait: Duration,
    },
    /// No longer held by this node: nothing to write.
    Lost,
}

impl Outcome {
    /// The `outcome` label of `bookstore_task_runs_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done(_) | Outcome::Recorded => "finished",
            Outcome::Failed { .. } => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Interrupted => "interrupted",
            Outcome::ConnectionLost { .. } => "connection_lost",
            Outcome::Snoozed { .. } => "snoozed",
            Outcome::Lost => "lost",
        }
    }
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
    /// The local queue the threads take from.
    queue: Arc<LocalQueue>,
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
        let executor = Executor {
            queue: Arc::new(LocalQueue::default()),
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
        self.queue.push(job);
    }

    /// Takes back the jobs no thread has started (at shutdown).
    pub fn take_queued(&self) -> Vec<Job> {
        self.queue.drain()
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
        self.queue.close();
    }
}

fn work(
    queue: &LocalQueue,
    slot: &Mutex<Option<Running>>,
    context: &ExecutorContext,
    reports: &mpsc::UnboundedSender<Report>,
) {
    loop {
        let Some(job) = queue.pop() else { return };
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
        let outcome = trace::attempt_span(&context.pool, &job.task)
            .in_scope(|| attempt::execute(context, &job));
        let abandoned = slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some_and(|running| running.abandoned);
        let program = &job.task.program_name;
        if abandoned {
            // Its failure was recorded when it was given up on, and a replacement thread
            // took its place: this one is done.
            monitoring::task_ran(program, "timed_out", Some(started.elapsed()));
            return;
        }
        monitoring::task_ran(program, outcome.label(), Some(started.elapsed()));
        let _ = reports.send(Report {
            key,
            outcome,
            ran_for: Some(started.elapsed()),
        });
    }
}

mod local_queue;
#[cfg(test)]
mod tests;
