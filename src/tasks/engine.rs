//! The engine: on its own actix `Arbiter` it claims due tasks (one statement, `FOR UPDATE SKIP
//! LOCKED`), runs each program on a thread of its own with a timeout and a panic guard, records
//! the outcome, keeps its leases alive with heartbeats, re-queues tasks of dead workers, fires
//! program schedules, and on shutdown lets running tasks finish within a grace period before
//! re-queueing the rest.
//!
//! Wake-up: a dedicated connection LISTENs on `bookstore_tasks` (sent by a trigger whenever a
//! task is queued, from Rust or from psql), polled every couple of milliseconds because
//! diesel's `notifications_iter` never blocks; a slow poll is the fallback.

use std::{
    collections::HashMap,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc as std_mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use actix_rt::Arbiter;
use chrono::Utc;
use diesel::{Connection, PgConnection, RunQueryDsl, sql_query};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::{
    db::PgPool,
    tasks::{
        Registry, TaskContext, TaskError, TaskOutput,
        store::{self, ClaimedTask},
    },
};

/// The LISTEN/NOTIFY channel (see the `task_engine` migration).
pub const CHANNEL: &str = "bookstore_tasks";
/// How often the listener checks its connection for notifications.
const LISTEN_POLL: Duration = Duration::from_millis(2);
/// The longest wait between retries of one task.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this node in `tasks.worker_id`; unique per process.
    pub worker_id: String,
    /// Tasks run at once on this node.
    pub concurrency: usize,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// A running task whose heartbeat is older than this belongs to a dead worker.
    pub lease: Duration,
    pub heartbeat_interval: Duration,
    /// How long running tasks may take to finish at shutdown.
    pub grace: Duration,
    /// First retry delay; doubled for each further attempt.
    pub retry_base: Duration,
    /// For the LISTEN connection.
    pub database_url: String,
}

/// A running engine; [`EngineHandle::shutdown`] stops it gracefully.
pub struct EngineHandle {
    stop: watch::Sender<bool>,
    stopped: oneshot::Receiver<()>,
    arbiter: Arbiter,
}

impl EngineHandle {
    /// Stops claiming, waits for running tasks up to the grace period, cancels and re-queues
    /// the rest, then stops the arbiter.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.stopped.await;
        self.arbiter.stop();
    }
}

struct Shared {
    /// For the programs (shared with the web side).
    pool: PgPool,
    /// The engine's own statements (claims, heartbeats, leases, schedules, outcomes) on
    /// connections of its own, so a busy web side can never starve the heartbeats into lost
    /// leases.
    engine_pool: PgPool,
    registry: Arc<Registry>,
    config: EngineConfig,
    /// Set at shutdown: a program stopped by it was interrupted, not cancelled by a user.
    shutting_down: AtomicBool,
}

pub fn start(
    pool: PgPool,
    registry: Arc<Registry>,
    config: EngineConfig,
) -> anyhow::Result<EngineHandle> {
    // One connection per running task (each records its outcome) plus the loop's own. Not
    // tested on checkout: a broken connection fails one statement, which the loop or the lease
    // retries, and the round trip saved per task is the engine's main cost.
    let engine_pool = diesel::r2d2::Pool::builder()
        .max_size(config.concurrency as u32 + 2)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(5))
        .test_on_check_out(false)
        .build(diesel::r2d2::ConnectionManager::new(
            config.database_url.clone(),
        ))?;
    let (stop, stop_rx) = watch::channel(false);
    let (stopped_tx, stopped) = oneshot::channel();
    let arbiter = Arbiter::new();
    let shared = Arc::new(Shared {
        pool,
        engine_pool,
        registry,
        config,
        shutting_down: AtomicBool::new(false),
    });
    arbiter.spawn(async move {
        run(shared, stop_rx).await;
        let _ = stopped_tx.send(());
    });
    Ok(EngineHandle {
        stop,
        stopped,
        arbiter,
    })
}

async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let config = &shared.config;
    tracing::info!(worker = %config.worker_id, concurrency = config.concurrency, "task engine started");
    let wake = Arc::new(Notify::new());
    let listener_stop = Arc::new(AtomicBool::new(false));
    let listener = spawn_listener(
        config.database_url.clone(),
        wake.clone(),
        listener_stop.clone(),
    );
    let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<i64>();
    let mut running: HashMap<i64, Arc<AtomicBool>> = HashMap::new();
    let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
    let mut reaper = tokio::time::interval((config.lease / 2).max(Duration::from_millis(100)));
    let mut schedules = tokio::time::interval(Duration::from_secs(1));

    loop {
        let mut wait = config.poll_interval;
        let free = config.concurrency.saturating_sub(running.len());
        if free > 0 {
            match with_conn(&shared, |conn| {
                store::claim_next_tasks(conn, &config.worker_id, free as i64)
            }) {
                Ok(claimed) => {
                    let full = claimed.len() == free;
                    for task in claimed {
                        let cancel = Arc::new(AtomicBool::new(false));
                        running.insert(task.id, cancel.clone());
                        spawn_task(shared.clone(), task, cancel, finished_tx.clone());
                    }
                    if full {
                        // There may be more: come back as soon as a slot frees up.
                        wait = Duration::ZERO;
                    } else if let Ok(Some(due)) = with_conn(&shared, store::next_due_at) {
                        // A retry waiting out its backoff: wake when it is due.
                        let until = (due - Utc::now())
                            .to_std()
                            .unwrap_or(Duration::from_millis(10));
                        wait = wait.min(until.max(Duration::from_millis(10)));
                    }
                }
                Err(err) => tracing::warn!("claiming tasks: {err:#}"),
            }
        }
        if wait.is_zero() && running.len() >= config.concurrency {
            wait = config.poll_interval;
        }
        tokio::select! {
            _ = stop.changed() => break,
            () = wake.notified() => {}
            Some(id) = finished_rx.recv() => { running.remove(&id); }
            _ = heartbeat.tick() => beat(&shared, &running),
            _ = reaper.tick() => {
                match with_conn(&shared, |conn| store::requeue_lost(conn, config.lease.as_secs_f64())) {
                    Ok(0) => {}
                    Ok(count) => tracing::warn!(count, "re-queued tasks of a lost worker"),
                    Err(err) => tracing::warn!("checking leases: {err:#}"),
                }
            }
            _ = schedules.tick() => {
                if let Err(err) = with_conn(&shared, store::fire_due_schedules) {
                    tracing::warn!("firing schedules: {err:#}");
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }

    // Graceful shutdown: claim nothing more; let running tasks finish within the grace period.
    shared.shutting_down.store(true, Ordering::SeqCst);
    listener_stop.store(true, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + config.grace;
    drain(
        &shared,
        &mut running,
        &mut finished_rx,
        &mut heartbeat,
        deadline,
    )
    .await;
    if !running.is_empty() {
        tracing::warn!(
            count = running.len(),
            "grace period over: cancelling and re-queueing running tasks"
        );
        // All of them go back to the queue, also those that stop when told to (they report
        // in as interrupted and write nothing); the statement skips any that ended meanwhile.
        let ids: Vec<i64> = running.keys().copied().collect();
        for cancel in running.values() {
            cancel.store(true, Ordering::SeqCst);
        }
        // Give cooperative programs a moment to notice; the rest are abandoned.
        let moment = tokio::time::Instant::now() + Duration::from_secs(1);
        drain(
            &shared,
            &mut running,
            &mut finished_rx,
            &mut heartbeat,
            moment,
        )
        .await;
        if let Err(err) = with_conn(&shared, |conn| {
            store::requeue_interrupted(conn, &config.worker_id, &ids)
        }) {
            tracing::error!("re-queueing interrupted tasks: {err:#}");
        }
    }
    let _ = tokio::task::spawn_blocking(move || listener.join()).await;
    tracing::info!(worker = %config.worker_id, "task engine stopped");
}

/// Waits for running tasks to report, keeping their leases alive, until `deadline`.
async fn drain(
    shared: &Shared,
    running: &mut HashMap<i64, Arc<AtomicBool>>,
    finished: &mut mpsc::UnboundedReceiver<i64>,
    heartbeat: &mut tokio::time::Interval,
    deadline: tokio::time::Instant,
) {
    while !running.is_empty() {
        tokio::select! {
            Some(id) = finished.recv() => { running.remove(&id); }
            _ = heartbeat.tick() => beat(shared, running),
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Refreshes this node's leases and passes cancel requests on to the programs.
fn beat(shared: &Shared, running: &HashMap<i64, Arc<AtomicBool>>) {
    if running.is_empty() {
        return;
    }
    let ids: Vec<i64> = running.keys().copied().collect();
    match with_conn(shared, |conn| {
        store::heartbeat(conn, &shared.config.worker_id, &ids)
    }) {
        Ok(cancel_ids) => {
            for id in cancel_ids {
                if let Some(cancel) = running.get(&id) {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
        }
        Err(err) => tracing::warn!("heartbeat: {err:#}"),
    }
}

/// Bookkeeping statements, on the engine's own connections.
fn with_conn<T>(
    shared: &Shared,
    work: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T>,
) -> anyhow::Result<T> {
    let mut conn = shared.engine_pool.get()?;
    Ok(work(&mut conn)?)
}

enum Outcome {
    Done(TaskOutput),
    /// The error, and whether another attempt may be made.
    Failed(String, bool),
    Cancelled,
    /// Stopped by the shutdown: back to the queue.
    Interrupted,
}

/// How long a timed-out program gets to stop after being told to.
const STOP_AFTER_TIMEOUT: Duration = Duration::from_secs(5);

fn spawn_task(
    shared: Arc<Shared>,
    task: ClaimedTask,
    cancel: Arc<AtomicBool>,
    finished: mpsc::UnboundedSender<i64>,
) {
    let (thread_shared, thread_task, thread_finished) =
        (shared.clone(), task.clone(), finished.clone());
    let spawned = thread::Builder::new()
        .name(format!("task-{}", task.id))
        .spawn(move || {
            let started = Instant::now();
            execute(&thread_shared, &thread_task, cancel, |outcome| {
                record(&thread_shared, &thread_task, outcome, started.elapsed())
            });
            let _ = thread_finished.send(thread_task.id);
        });
    if let Err(err) = spawned {
        record(
            &shared,
            &task,
            Outcome::Failed(format!("could not start a thread: {err}"), true),
            Duration::ZERO,
        );
        let _ = finished.send(task.id);
    }
}

/// Runs the program on a thread of its own, so a panic stays inside it and a timeout can be
/// enforced: the program is told to stop; if it does, the attempt failed and may be retried;
/// if it does not, the task ends in error (a retry would run beside the runaway) and this slot
/// stays taken until the thread really ends. `report` records the outcome as soon as it is
/// known.
fn execute(
    shared: &Arc<Shared>,
    task: &ClaimedTask,
    cancel: Arc<AtomicBool>,
    report: impl FnOnce(Outcome),
) {
    let Some(function) = shared.registry.get(&task.function_name) else {
        return report(Outcome::Failed(
            format!("this app has no function named {}", task.function_name),
            false,
        ));
    };
    let run = function.run;
    let context = TaskContext::new(
        task.id,
        task.attempt,
        task.parameters.clone().unwrap_or(serde_json::Value::Null),
        shared.pool.clone(),
        cancel.clone(),
    );
    let (sender, receiver) = std_mpsc::channel();
    let spawned = thread::Builder::new()
        .name(format!("program-{}", task.id))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| run(&context)));
            let _ = sender.send(result);
        });
    if let Err(err) = spawned {
        return report(Outcome::Failed(
            format!("could not start the program: {err}"),
            true,
        ));
    }
    let outcome = |result: std::thread::Result<Result<TaskOutput, TaskError>>| match result {
        Ok(Ok(output)) => Outcome::Done(output),
        Ok(Err(TaskError::Cancelled)) if shared.shutting_down.load(Ordering::SeqCst) => {
            Outcome::Interrupted
        }
        Ok(Err(TaskError::Cancelled)) => Outcome::Cancelled,
        Ok(Err(TaskError::Failed(message))) => Outcome::Failed(message, true),
        Err(panic) => Outcome::Failed(
            format!("the program panicked: {}", panic_message(&panic)),
            true,
        ),
    };
    let timeout = Duration::from_secs(task.timeout_seconds.max(1) as u64);
    match receiver.recv_timeout(timeout) {
        Ok(result) => report(outcome(result)),
        Err(std_mpsc::RecvTimeoutError::Timeout) => {
            cancel.store(true, Ordering::SeqCst);
            let message = format!("timed out after {} s", timeout.as_secs());
            match receiver.recv_timeout(STOP_AFTER_TIMEOUT) {
                Ok(_) => report(Outcome::Failed(message, true)),
                Err(_) => {
                    report(Outcome::Failed(
                        format!("{message} and did not stop when told to; not retried"),
                        false,
                    ));
                    // Keep the slot until the runaway ends.
                    let _ = receiver.recv();
                }
            }
        }
        Err(std_mpsc::RecvTimeoutError::Disconnected) => report(Outcome::Failed(
            "the program's thread vanished".into(),
            true,
        )),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

fn record(shared: &Shared, task: &ClaimedTask, outcome: Outcome, took: Duration) {
    let worker = &shared.config.worker_id;
    let written = (|| -> anyhow::Result<()> {
        let mut conn = shared.engine_pool.get()?;
        match &outcome {
            Outcome::Done(output) => store::finish(&mut conn, task, worker, output).map(|_| ())?,
            Outcome::Failed(error, retry) => {
                let delay = shared
                    .config
                    .retry_base
                    .saturating_mul(1 << (task.attempt.clamp(1, 20) - 1))
                    .min(MAX_RETRY_DELAY);
                store::fail(&mut conn, task, worker, error, delay.as_secs_f64(), *retry)
                    .map(|_| ())?
            }
            Outcome::Cancelled => store::mark_cancelled(&mut conn, task, worker).map(|_| ())?,
            Outcome::Interrupted => {
                store::requeue_interrupted(&mut conn, worker, &[task.id]).map(|_| ())?
            }
        }
        Ok(())
    })();
    match (&outcome, written) {
        (_, Err(err)) => tracing::error!(
            task = task.id,
            "recording the outcome: {err:#} (its lease will run out and it will be retried)"
        ),
        (Outcome::Failed(error, _), Ok(())) => {
            tracing::warn!(
                task = task.id,
                attempt = task.attempt,
                "task failed: {error}"
            )
        }
        _ => tracing::debug!(task = task.id, ms = took.as_millis() as u64, "task ended"),
    }
}

fn spawn_listener(url: String, wake: Arc<Notify>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("task-listener".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            while !stop.load(Ordering::Relaxed) {
                let connected = PgConnection::establish(&url)
                    .map_err(anyhow::Error::from)
                    .and_then(|mut conn| {
                        sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
                        Ok(conn)
                    });
                let mut conn = match connected {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(
                            "task listener cannot connect: {err:#}; retrying in {backoff:?}"
                        );
                        thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                // Catch up on whatever was queued while we were not listening.
                wake.notify_one();
                let mut checked = Instant::now();
                'poll: while !stop.load(Ordering::Relaxed) {
                    // Reading notifications does not notice a dead server; a query does.
                    if checked.elapsed() > Duration::from_secs(5) {
                        if let Err(err) = sql_query("SELECT 1").execute(&mut conn) {
                            tracing::warn!("task listener lost its connection: {err}");
                            break 'poll;
                        }
                        checked = Instant::now();
                    }
                    let mut woke = false;
                    for notification in conn.notifications_iter() {
                        match notification {
                            Ok(_) => woke = true,
                            Err(err) => {
                                tracing::warn!("task listener lost its connection: {err}");
                                break 'poll;
                            }
                        }
                    }
                    if woke {
                        wake.notify_one();
                    }
                    thread::sleep(LISTEN_POLL);
                }
            }
        })
        .expect("starting the task listener thread")
}
