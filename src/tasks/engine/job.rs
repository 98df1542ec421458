//! What the engine's loop hands an executor thread and what comes back: the job (a claimed
//! task and its stop signal), the reasons to stop it, and the outcome reported. Its own module
//! so that the executor (which schedules attempts) and an attempt (which runs one) share these
//! without importing each other.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering},
    },
    time::Duration,
};

use crate::{
    db::PgPool,
    tasks::{
        Registry,
        engine::store::{AttemptKey, ClaimedTask, Success},
        program::ProgramSettings,
    },
};

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

    /// A thread took the attempt from the local queue.
    pub(super) fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
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

/// What every executor thread needs.
pub struct ExecutorContext {
    pub pool: PgPool,
    pub registry: Arc<Registry>,
    pub worker_id: String,
    pub settings: Arc<ProgramSettings>,
}
