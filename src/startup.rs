//! Builds the application on a bound port; `main` and the tests both go through here. A node
//! serves pages, runs tasks, or both (its role).

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use actix_web::dev::{Server, ServerHandle};

use anyhow::Context;
use tokio::sync::Notify;

use crate::{
    config::{Config, SeedDemo},
    db::{self, PgPool, replicas::Replicas},
    domain::accounts::throttle::ThrottlePolicy,
    housekeeping, programs, seed,
    tasks::{
        engine::{self, EngineConfig, EngineHandle},
        program::ProgramSettings,
    },
    web::{self, AppState},
};

/// Makes a database ready for this build, under the prepare lock: migrations, the app's
/// functions and built-in programs (before anything can queue a task), and, when asked, the
/// demo catalog and accounts on an empty database. Returns the demo accounts it created, with
/// their passwords: the caller shows them once.
pub fn prepare(
    conn: &mut diesel::PgConnection,
    seed_demo: SeedDemo,
) -> anyhow::Result<Vec<seed::DemoAccount>> {
    db::with_prepare_lock(conn, |conn| {
        db::migrate(conn)?;
        programs::registry()
            .sync(conn)
            .context("registering the built-in programs")?;
        if seed_demo == SeedDemo::Off {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let report =
            seed::load_demo_catalog(conn, seed_demo).context("loading the demo catalog")?;
        if report.books_inserted > 0 {
            tracing::info!(
                books = report.books_inserted,
                seconds = started.elapsed().as_secs_f64(),
                "demo catalog loaded"
            );
        }
        seed::load_demo_accounts(conn).context("creating the demo accounts")
    })
}

/// Writes the demo accounts' passwords to a file only its owner may read
/// (`<data dir>/demo-accounts.txt`) and says where it is. The passwords themselves are never
/// printed: standard output and standard error end up in log files that others may read.
pub fn announce_demo_accounts(accounts: &[seed::DemoAccount], data_dir: &std::path::Path) {
    use std::{io::Write, os::unix::fs::OpenOptionsExt, os::unix::fs::PermissionsExt};
    if accounts.is_empty() {
        return;
    }
    let mut text =
        String::from("Demo accounts (shown once; change or remove them anywhere real):\n");
    for account in accounts {
        text.push_str(&format!(
            "  {:<8} {:<8} password: {}\n",
            account.login,
            account.role.as_str(),
            account.password
        ));
    }
    let logins = accounts
        .iter()
        .map(|account| format!("{} ({})", account.login, account.role.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let path = data_dir.join("demo-accounts.txt");
    let written = std::fs::create_dir_all(data_dir).and_then(|()| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        // `mode` applies only to a new file: an older one keeps its own unless set here.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())
    });
    match written {
        Ok(()) => println!(
            "Demo accounts created: {logins}. Their passwords are in {} (readable by its owner \
             only).",
            path.display()
        ),
        Err(err) => tracing::warn!(
            "writing {}: {err}; the demo accounts {logins} have passwords nobody knows: give \
             them new ones with `bookstore reset-password <login>`",
            path.display()
        ),
    }
}

pub struct Application {
    addr: Option<SocketAddr>,
    server: Option<Server>,
    /// The scrape's own listener (`BOOKSTORE_METRICS_ADDR`), on any role.
    metrics: Option<(SocketAddr, Server)>,
    engine: Option<EngineHandle>,
    stop: Arc<Notify>,
    termination: Termination,
    pool: PgPool,
    /// What the housekeeping keeps.
    keeping: housekeeping::Keeping,
}

/// Stops an application from outside, like SIGTERM does (tests).
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<Notify>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

impl Application {
    /// Binds `config.addr` (port 0 picks a free port) when the role serves pages, and starts
    /// the task engine when it runs tasks. `config.database_url` must name the pool's database
    /// (the engine LISTENs on a connection of its own).
    pub fn build(config: &Config, pool: PgPool) -> anyhow::Result<Application> {
        // Made now, so an import asked for before the first upload is told to upload a file,
        // and no message needs to mention the folder.
        let imports = config.import_dir();
        if let Err(err) = std::fs::create_dir_all(&imports) {
            tracing::warn!(
                "cannot create the import folder {} (BOOKSTORE_IMPORT_DIR): {err}; imports and \
                 uploads will be refused",
                imports.display()
            );
        }
        // Installed before anything counts.
        crate::monitoring::handle();
        let engine = if config.role.runs_tasks() {
            let url = config
                .database_url
                .clone()
                .context("the task engine needs the database URL")?;
            Some(engine::start(
                pool.clone(),
                Arc::new(programs::registry()),
                EngineConfig::from_config(config, url),
            )?)
        } else {
            None
        };
        let engine_alive = engine.as_ref().map(EngineHandle::alive);
        let metrics = match config.metrics_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("listening on {addr} (BOOKSTORE_METRICS_ADDR)"))?;
                let addr = listener.local_addr()?;
                let server = web::metrics::server(listener, pool.clone(), engine_alive.clone())?;
                Some((addr, server))
            }
            None => None,
        };
        let (addr, server) = if config.role.serves_web() {
            let mut conn = pool.get().context("connecting to PostgreSQL")?;
            let cookie_key =
                db::secrets::cookie_key(&mut conn).context("loading the cookie key")?;
            drop(conn);
            let listener = TcpListener::bind(config.addr)
                .with_context(|| format!("listening on {} (BOOKSTORE_ADDR)", config.addr))?;
            let addr = listener.local_addr()?;
            let replicas = Replicas::open(
                &db::replicas::urls(config.database_replica_urls.as_deref()),
                config.pool_size,
                Duration::from_millis(config.replica_max_lag_ms),
                pool.clone(),
            )?;
            let state = AppState {
                pool: pool.clone(),
                replicas,
                throttle: ThrottlePolicy::from(config),
                page_size: config.page_size.into(),
                programs: ProgramSettings::from(config),
                secure_cookies: config.secure_cookies,
                cookie_key: cookie_key.clone(),
                engine: engine_alive,
            };
            (
                Some(addr),
                Some(web::server(listener, state, config, cookie_key)?),
            )
        } else {
            (None, None)
        };
        Ok(Application {
            addr,
            server,
            metrics,
            engine,
            stop: Arc::new(Notify::new()),
            termination: Termination::install(),
            pool,
            keeping: housekeeping::Keeping::from(config),
        })
    }

    /// The web address; a worker-only node has none.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("this node serves no pages")
    }

    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Where `/metrics` has its own listener (`BOOKSTORE_METRICS_ADDR`), if it has one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stop: self.stop.clone(),
        }
    }

    /// Runs until SIGINT/SIGTERM or a [`StopHandle`]: the web server finishes in-flight
    /// requests, then the engine lets running tasks finish (within the grace period).
    ///
    /// The signals are ours, not actix-server's: on a signal it would stop the whole actix
    /// System, and with it the engine's Arbiter, before the tasks could finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let archive = crate::tasks::archive::run(self.pool.clone());
        let housekeeping = housekeeping::run(self.pool, self.keeping);
        let cleanup = async {
            tokio::join!(housekeeping, archive, metrics_upkeep());
        };
        let stop_requested = async {
            tokio::select! {
                () = self.termination.received() => {}
                () = self.stop.notified() => {}
            }
        };
        let served = match self.server {
            Some(mut server) => {
                let handle: ServerHandle = server.handle();
                tokio::select! {
                    served = &mut server => served,
                    () = stop_requested => {
                        tracing::info!("stopping: finishing in-flight requests");
                        // The server future itself carries out the stop: drive both.
                        let ((), served) = tokio::join!(handle.stop(true), server);
                        served
                    }
                    () = cleanup => Ok(()),
                }
            }
            None => {
                tokio::select! {
                    () = stop_requested => {}
                    () = cleanup => {}
                }
                Ok(())
            }
        };
        if let Some(engine) = self.engine {
            engine.shutdown().await;
        }
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        served
    }
}

/// The metrics exporter's upkeep, so histograms stay small between scrapes; runs until the
/// app stops.
async fn metrics_upkeep() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        every.tick().await;
        crate::monitoring::upkeep();
    }
}

/// SIGINT and SIGTERM, listened for from `build` on: a signal that arrives right after the app
/// says it is ready must find the handler installed, or it would kill the process outright.
struct Termination {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Termination {
    fn install() -> Termination {
        use tokio::signal::unix::{SignalKind, signal};
        Termination {
            terminate: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn received(mut self) {
        async fn on(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = on(&mut self.terminate) => {}
            () = on(&mut self.interrupt) => {}
        }
    }
}
