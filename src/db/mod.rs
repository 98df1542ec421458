//! The database: connection pool, the private cluster and migrations. (What runs after the
//! migrations, the registry sync and the demo seed, is `startup::prepare`'s.)

pub mod cluster;
pub mod counting;
pub mod replicas;
pub mod schema;
pub mod secrets;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use diesel::{
    PgConnection, RunQueryDsl,
    r2d2::{ConnectionManager, Pool, PooledConnection},
    sql_query,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{
    config::Config,
    db::cluster::{ClusterOptions, EmbeddedCluster},
};

/// What opening the database needs to know.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`; `None` runs the private cluster.
    pub url: Option<String>,
    /// The private cluster's folder.
    pub data_dir: PathBuf,
    /// Where the PostgreSQL server binaries are; `None` searches for them.
    pub pg_bin_dir: Option<PathBuf>,
    pub pool_size: u32,
    /// `url` is a transaction-pooling PgBouncer.
    pub transaction_pooler: bool,
}

impl From<&Config> for DatabaseSettings {
    fn from(config: &Config) -> DatabaseSettings {
        DatabaseSettings {
            url: config.database_url.clone(),
            data_dir: config.data_dir.clone(),
            pg_bin_dir: config.pg_bin_dir.clone(),
            pool_size: config.pool_size,
            transaction_pooler: config.transaction_pooler,
        }
    }
}

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PooledPg = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Name of the app's database inside the private cluster.
pub const DATABASE_NAME: &str = "bookstore";

/// Key of the advisory lock held while migrating and seeding.
const PREPARE_LOCK_KEY: i64 = 0x626f_6f6b_7374_6f72; // "bookstor"

/// Where the app's data lives, and the private cluster when the app runs its own.
pub struct Database {
    pub pool: PgPool,
    /// The connection string the pool uses (for `bookstore psql`).
    pub url: String,
    cluster: Option<Arc<Mutex<EmbeddedCluster>>>,
    /// The root of the private cluster, when the app runs one.
    cluster_root: Option<PathBuf>,
    watcher: Option<ClusterWatcher>,
}

/// Checks every second that the private cluster's postmaster lives, and starts it again
/// (with growing pauses between failed tries, logged) when it died.
struct ClusterWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl ClusterWatcher {
    fn start(cluster: Arc<Mutex<EmbeddedCluster>>) -> std::io::Result<ClusterWatcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cluster-watcher".into())
            .spawn(move || {
                let mut pause = Duration::from_secs(1);
                while !stopping.load(Ordering::Relaxed) {
                    // Woken early by `stop`.
                    std::thread::park_timeout(pause);
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut cluster = cluster.lock().unwrap_or_else(|e| e.into_inner());
                    pause = match cluster.revive_if_dead() {
                        Ok(_) => Duration::from_secs(1),
                        Err(err) => {
                            let next = (pause * 2).min(Duration::from_secs(60));
                            tracing::error!(
                                "restarting PostgreSQL failed: {err:#}; trying again in {next:?}"
                            );
                            next
                        }
                    };
                }
            })?;
        Ok(ClusterWatcher { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the private cluster and watches over it.
    pub fn open(settings: &DatabaseSettings) -> anyhow::Result<Database> {
        let (url, cluster) = locate(settings, true)?;
        let pool = build_pool_with(
            &url,
            settings.pool_size,
            Statements::for_pooler(settings.transaction_pooler),
        )?;
        let cluster_root = cluster.as_ref().map(|c| c.root().to_path_buf());
        let cluster = cluster.map(|c| Arc::new(Mutex::new(c)));
        let watcher = cluster
            .clone()
            .map(ClusterWatcher::start)
            .transpose()
            .context("starting the cluster watcher")?;
        Ok(Database {
            pool,
            url,
            cluster,
            cluster_root,
            watcher,
        })
    }

    /// The private cluster's folder, when the app runs one.
    pub fn cluster_root(&self) -> Option<&Path> {
        self.cluster_root.as_deref()
    }

    /// Closes the pool, stops watching, then stops the private cluster if this process
    /// started it.
    pub fn shutdown(self) -> anyhow::Result<()> {
        let Database {
            pool,
            cluster,
            watcher,
            ..
        } = self;
        drop(pool);
        if let Some(watcher) = watcher {
            watcher.stop();
        }
        if let Some(cluster) = cluster {
            cluster.lock().unwrap_or_else(|e| e.into_inner()).stop()?;
        }
        Ok(())
    }
}

/// The connection string to use and, without `DATABASE_URL`, the started private cluster.
/// `adopt_orphan`: see [`ClusterOptions::adopt_orphan`].
pub fn locate(
    settings: &DatabaseSettings,
    adopt_orphan: bool,
) -> anyhow::Result<(String, Option<EmbeddedCluster>)> {
    if let Some(url) = &settings.url {
        return Ok((url.clone(), None));
    }
    let cluster = EmbeddedCluster::start(&ClusterOptions {
        root: settings.data_dir.clone(),
        bin_dir: settings.pg_bin_dir.clone(),
        durable: true,
        adopt_orphan,
    })?;
    cluster.ensure_database(DATABASE_NAME)?;
    Ok((cluster.conninfo(DATABASE_NAME), Some(cluster)))
}

/// The server went away (restart, crash, failover) under a connection that was in use, or the
/// connection leads to a server that cannot take writes yet (failover): not
/// the fault of the statement or of whoever sent it. Pages answer 503 for it; the engine gives
/// a transactional task its attempt back.
pub fn lost_connection(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        // A failover in progress: the name of the primary (DNS) still leads to a standby, or
        // a standby not yet promoted. Nothing was written; the next try finds the new primary.
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "terminating connection",
                "server closed the connection",
                "the database system is shutting down",
                "the database system is starting up",
                "no connection to the server",
            ]
            .iter()
            .any(|needle| message.contains(needle))
        }
        // COMMIT (or the ROLLBACK after it) could not be sent.
        Error::RollbackErrorOnCommit { commit_error, .. } => lost_connection(commit_error),
        _ => false,
    }
}

/// `url` with libpq's `connect_timeout` (seconds), unless it sets one: a server that accepts
/// the connection but never answers (stopped, or cut off) must not hold a thread forever.
pub fn with_connect_timeout(url: &str, seconds: u32) -> String {
    if url.contains("connect_timeout") {
        return url.to_owned();
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}connect_timeout={seconds}")
    } else {
        format!("{url} connect_timeout={seconds}")
    }
}

pub fn build_pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    build_pool_with(url, size, Statements::Prepared)
}

/// How statements are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statements {
    /// Named prepared statements, cached per connection (PostgreSQL, or a session pooler).
    Prepared,
    /// Unnamed, parsed with each call (`PQsendQueryParams`): a transaction-pooling PgBouncer
    /// hands each transaction any server connection, where a named statement may not exist.
    Unprepared,
}

impl Statements {
    pub fn for_pooler(transaction_pooler: bool) -> Statements {
        if transaction_pooler {
            Statements::Unprepared
        } else {
            Statements::Prepared
        }
    }

    /// Applies the mode to a connection opened outside a pool.
    pub fn apply(self, conn: &mut PgConnection) {
        if self == Statements::Unprepared {
            diesel::Connection::set_prepared_statement_cache_size(
                conn,
                diesel::connection::CacheSize::Disabled,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connect_timeout_is_added_unless_given() {
        use super::with_connect_timeout as with;
        assert_eq!(
            with("host=/run port=5432", 5),
            "host=/run port=5432 connect_timeout=5"
        );
        assert_eq!(
            with("postgres://u@h/db", 5),
            "postgres://u@h/db?connect_timeout=5"
        );
        assert_eq!(
            with("postgres://u@h/db?sslmode=require", 5),
            "postgres://u@h/db?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            with("postgres://h/db?connect_timeout=2", 5),
            "postgres://h/db?connect_timeout=2"
        );
    }
}

#[derive(Debug)]
struct StatementMode(Statements);

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for StatementMode {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        self.0.apply(conn);
        Ok(())
    }
}

pub fn build_pool_with(url: &str, size: u32, statements: Statements) -> anyhow::Result<PgPool> {
    Pool::builder()
        .max_size(size)
        // Fail a request with "database unavailable" quickly instead of hanging it for 30 s
        // (within the web's deadline for the database, `web::DATABASE_DEADLINE`).
        .connection_timeout(Duration::from_secs(3))
        // Opening connections lazily lets the app start even when the pool is large.
        .min_idle(Some(1))
        .test_on_check_out(true)
        .connection_customizer(Box::new(StatementMode(statements)))
        .build(ConnectionManager::new(with_connect_timeout(url, 5)))
        .context("connecting to PostgreSQL")
}

/// Runs `work` under an advisory lock, so that app processes starting together on one
/// database take turns at migrating and seeding instead of racing through the same DDL.
pub fn with_prepare_lock<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    sql_query(format!("SELECT pg_advisory_lock({PREPARE_LOCK_KEY})")).execute(conn)?;
    let result = work(conn);
    sql_query(format!("SELECT pg_advisory_unlock({PREPARE_LOCK_KEY})")).execute(conn)?;
    result
}

/// Runs the pending embedded migrations.
/// The migrations of this build that the database has not run (empty: its schema is current).
pub fn pending_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let pending = conn
        .pending_migrations(MIGRATIONS)
        .map_err(|err| anyhow::anyhow!("reading the applied migrations: {err}"))?;
    Ok(pending.iter().map(|m| m.name().to_string()).collect())
}

pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|err| anyhow::anyhow!("running migrations: {err}"))?;
    for migration in applied {
        tracing::info!(%migration, "migration applied");
    }
    Ok(())
}
