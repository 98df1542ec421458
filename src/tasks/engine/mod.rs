//! The engine: on its own actix `Arbiter`, a loop ([`run`]) claims due tasks in batches into a
//! small local queue, a fixed pool of threads runs them ([`executor`], one [`attempt`] at a
//! time), the outcome writer ([`completer`]) records their outcomes in batches (a busy node's
//! successes on a connection of their own, [`writer`], while the loop claims), and timed
//! services ([`maintenance`]) renew the leases of what the node holds, rescue tasks of lost
//! workers and fire program schedules. At shutdown the loop lets running tasks finish within
//! a grace period before re-queueing the rest. A LISTEN connection ([`listener`]) wakes it when
//! a task is queued. Its statements are in [`store`]; the rules they apply are SQL functions.

mod attempt;
mod completer;
mod connection;
mod executor;
mod job;
pub mod listener;
mod maintenance;
mod run;
pub mod store;
mod writer;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix_rt::Arbiter;
use tokio::sync::{oneshot, watch};

use crate::{
    config::Config,
    db::{PgPool, Statements},
    tasks::{Registry, program::ProgramSettings},
};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this node in `tasks.worker_id`; unique per process.
    pub worker_id: String,
    /// Programs run at once on this node (its executor threads).
    pub concurrency: usize,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// A running task whose heartbeat is older than this belongs to a lost worker.
    pub lease: Duration,
    pub heartbeat_interval: Duration,
    /// How long running tasks may take to finish at shutdown.
    pub grace: Duration,
    /// First retry delay; doubled for each further attempt (the rule is `task_fail`'s).
    pub retry_base: Duration,
    /// For the engine's own connection.
    pub database_url: String,
    /// For LISTEN: a direct connection (a transaction pooler cannot hold a LISTEN).
    pub listen_url: String,
    /// How the engine's own connection sends statements.
    pub statements: Statements,
    /// What programs are told of the app's settings.
    pub programs: ProgramSettings,
}

impl EngineConfig {
    /// The engine's settings from the app's; `database_url` is the one the pool uses.
    pub fn from_config(config: &Config, database_url: String) -> EngineConfig {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "node".to_owned());
        EngineConfig {
            worker_id: format!(
                "{host}-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
            concurrency: config.task_concurrency as usize,
            poll_interval: Duration::from_secs(config.task_poll_seconds),
            lease: Duration::from_secs(config.task_lease_seconds),
            heartbeat_interval: Duration::from_secs(config.task_heartbeat_seconds),
            grace: Duration::from_secs(config.task_grace_seconds),
            retry_base: Duration::from_millis(config.task_retry_base_ms),
            listen_url: config
                .database_listen_url
                .clone()
                .unwrap_or_else(|| database_url.clone()),
            statements: Statements::for_pooler(config.transaction_pooler),
            database_url,
            programs: ProgramSettings::from(config),
        }
    }
}

/// A running engine; [`EngineHandle::shutdown`] stops it gracefully.
pub struct EngineHandle {
    stop: watch::Sender<bool>,
    stopped: oneshot::Receiver<()>,
    arbiter: Arbiter,
    alive: EngineAlive,
}

/// Whether the engine's loop runs: false once it has ended, stopped or by a panic (`/readyz`).
#[derive(Debug, Clone)]
pub struct EngineAlive(Arc<AtomicBool>);

impl EngineAlive {
    pub fn is_running(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Held by the loop's future: dropped when it ends, however it ends (a panic unwinds it too).
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl EngineHandle {
    pub fn alive(&self) -> EngineAlive {
        self.alive.clone()
    }

    /// Stops claiming, waits for running tasks up to the grace period, re-queues the rest,
    /// records what it can, then stops the arbiter.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.stopped.await;
        self.arbiter.stop();
    }
}

/// Starts the engine on an Arbiter of its own. `pool` is for the programs.
pub fn start(
    pool: PgPool,
    registry: Arc<Registry>,
    config: EngineConfig,
) -> anyhow::Result<EngineHandle> {
    let (stop, stop_rx) = watch::channel(false);
    let (stopped_tx, stopped) = oneshot::channel();
    let arbiter = Arbiter::new();
    let engine = run::Engine::new(pool, registry, config)?;
    let alive = Arc::new(AtomicBool::new(true));
    let running = Running(alive.clone());
    arbiter.spawn(async move {
        let _running = running;
        engine.run(stop_rx).await;
        let _ = stopped_tx.send(());
    });
    Ok(EngineHandle {
        stop,
        stopped,
        arbiter,
        alive: EngineAlive(alive),
    })
}
