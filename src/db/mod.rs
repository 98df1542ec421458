//! The database: connection pool, the private cluster and migrations. (What runs after the
//! migrations, the registry sync and the demo seed, is `startup::prepare`'s.)

pub mod cluster;
pub mod schema;
pub mod secrets;

use std::time::Duration;

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
    cluster: Option<EmbeddedCluster>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the private cluster.
    pub fn open(config: &Config) -> anyhow::Result<Database> {
        let (url, cluster) = locate(config, true)?;
        let pool = build_pool(&url, config.pool_size)?;
        Ok(Database { pool, url, cluster })
    }

    /// The private cluster's folder, when the app runs one.
    pub fn cluster(&self) -> Option<&EmbeddedCluster> {
        self.cluster.as_ref()
    }

    /// Closes the pool, then stops the private cluster if this process started it.
    pub fn shutdown(self) -> anyhow::Result<()> {
        let Database { pool, cluster, .. } = self;
        drop(pool);
        if let Some(mut cluster) = cluster {
            cluster.stop()?;
        }
        Ok(())
    }
}

/// The connection string to use and, without `DATABASE_URL`, the started private cluster.
/// `adopt_orphan`: see [`ClusterOptions::adopt_orphan`].
pub fn locate(
    config: &Config,
    adopt_orphan: bool,
) -> anyhow::Result<(String, Option<EmbeddedCluster>)> {
    if let Some(url) = &config.database_url {
        return Ok((url.clone(), None));
    }
    let cluster = EmbeddedCluster::start(&ClusterOptions {
        root: config.data_dir.clone(),
        bin_dir: config.pg_bin_dir.clone(),
        durable: true,
        adopt_orphan,
    })?;
    cluster.ensure_database(DATABASE_NAME)?;
    Ok((cluster.conninfo(DATABASE_NAME), Some(cluster)))
}

pub fn build_pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    Pool::builder()
        .max_size(size)
        // Fail a request with "database unavailable" quickly instead of hanging it for 30 s
        // (within the web's deadline for the database, `web::DATABASE_DEADLINE`).
        .connection_timeout(Duration::from_secs(3))
        // Opening connections lazily lets the app start even when the pool is large.
        .min_idle(Some(1))
        .test_on_check_out(true)
        .build(ConnectionManager::new(url))
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
pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<()> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|err| anyhow::anyhow!("running migrations: {err}"))?;
    for migration in applied {
        tracing::info!(%migration, "migration applied");
    }
    Ok(())
}
