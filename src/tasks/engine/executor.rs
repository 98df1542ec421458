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
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use self::local_queue::LocalQueue;

use crate::{
    monitoring,
    tasks::{
        engine::{
            attempt,
            job::{ExecutorContext, Job, Outcome, Report, StopReason, StopSignal},
            store::AttemptKey,
        },
        trace,
    },
};

/// How long a timed-out program gets to stop after being told to.
const STOP_AFTER_TIMEOUT: Duration = Duration::from_secs(5);

struct Running {
    key: AttemptKey,
    deadline: Instant,
    timeout: Duration,
    signal: Arc<StopSignal>,
    told_to_stop_at: Option<Instant>,
    /// The watchdog gave up on it and reported its failure; its own report is dropped.
    abandoned: bool,
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

    /// Jobs of limited programs waiting for one of their program's running tasks to end.
    pub fn set_aside(&self) -> usize {
        self.queue.set_aside()
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
            queue.finished(&job.task);
            let _ = reports.send(Report {
                key,
                outcome,
                ran_for: None,
            });
            continue;
        }
        job.signal.mark_started();
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
        // Its program's function has returned (a runaway's too, however late).
        queue.finished(&job.task);
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
