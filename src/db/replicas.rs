//! Streaming replicas (PostgreSQL's own replication, `DATABASE_REPLICA_URLS`): one pool per
//! replica, a checker that measures each one's lag against the primary every second, and a
//! round-robin among those healthy. Only reads that may lag come here (the web layer's
//! `with_read_conn`); writes, the engine, LISTEN and migrations use the primary alone.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use diesel::{
    PgConnection, QueryableByName, RunQueryDsl,
    r2d2::{ConnectionManager, Pool},
    sql_query,
    sql_types::{Bool, Nullable, Text},
};

use crate::db::{PgPool, with_connect_timeout};

/// How often each replica's health and lag are measured.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The replicas of one node; cheap to clone. Without any, every read goes to the primary.
#[derive(Clone, Default)]
pub struct Replicas {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    members: Vec<Replica>,
    next: AtomicUsize,
    max_lag: Duration,
    primary: PgPool,
}

struct Replica {
    /// Where it is, for logs (the host part only: a connection string may hold a password).
    name: String,
    pool: PgPool,
    healthy: AtomicBool,
}

/// One replica chosen for a read; tell it when it failed, so the next read skips it.
#[derive(Clone)]
pub struct ReplicaLease {
    inner: Arc<Inner>,
    index: usize,
}

impl ReplicaLease {
    pub fn pool(&self) -> &PgPool {
        &self.inner.members[self.index].pool
    }

    /// The read failed on it (down, or cut off): none goes there until the checker has seen it
    /// well again.
    pub fn failed(&self, err: &dyn std::fmt::Display) {
        let replica = &self.inner.members[self.index];
        if replica.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(replica = %replica.name, "replica failed a read: {err}; reading from the primary meanwhile");
        }
    }
}

/// `DATABASE_REPLICA_URLS` split at its commas (a replica's own string has none: it names one
/// server).
pub fn urls(listed: Option<&str>) -> Vec<String> {
    listed
        .into_iter()
        .flat_map(|urls| urls.split(','))
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Replicas {
    /// A pool per URL, opened lazily (a replica down at start stops nothing), and the checker,
    /// which stops once the last clone of these replicas is gone. Each starts unhealthy until
    /// its first check.
    pub fn open(
        urls: &[String],
        pool_size: u32,
        max_lag: Duration,
        primary: PgPool,
    ) -> anyhow::Result<Replicas> {
        if urls.is_empty() {
            return Ok(Replicas::default());
        }
        let members = urls
            .iter()
            .map(|url| {
                Ok(Replica {
                    name: host_of(url),
                    pool: replica_pool(url, pool_size)?,
                    healthy: AtomicBool::new(false),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let inner = Arc::new(Inner {
            members,
            next: AtomicUsize::new(0),
            max_lag,
            primary,
        });
        let watched = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("replica-checker".into())
            .spawn(move || check_until_dropped(watched))
            .context("starting the replica checker")?;
        Ok(Replicas { inner: Some(inner) })
    }

    /// The next healthy replica in turn, or `None`: read from the primary.
    pub fn pick(&self) -> Option<ReplicaLease> {
        let inner = self.inner.as_ref()?;
        let count = inner.members.len();
        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|offset| (start + offset) % count)
            .find(|&index| inner.members[index].healthy.load(Ordering::Relaxed))
            .map(|index| ReplicaLease {
                inner: inner.clone(),
                index,
            })
    }

    pub fn configured(&self) -> bool {
        self.inner.is_some()
    }

    /// How long after a write its writer reads from the primary: a replica serving reads is
    /// at most `max_lag` behind when checked, and checks are a second apart.
    pub fn primary_after_write(&self) -> Duration {
        self.inner
            .as_ref()
            .map_or(Duration::ZERO, |inner| inner.max_lag + 2 * CHECK_INTERVAL)
    }
}

/// A replica's pool gives up quickly: a read that cannot have one goes to the primary instead
/// of waiting.
fn replica_pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    Ok(Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_millis(1000))
        .test_on_check_out(true)
        .build_unchecked(ConnectionManager::new(with_connect_timeout(url, 2))))
}

fn check_until_dropped(watched: Weak<Inner>) {
    while let Some(inner) = watched.upgrade() {
        let primary_lsn = primary_lsn(&inner.primary);
        for replica in &inner.members {
            let verdict = check(replica, primary_lsn.as_deref(), inner.max_lag);
            let was = replica.healthy.swap(verdict.is_ok(), Ordering::Relaxed);
            match verdict {
                Ok(()) if !was => tracing::info!(replica = %replica.name, "replica serves reads"),
                Err(why) if was => {
                    tracing::warn!(replica = %replica.name, "replica skipped: {why}")
                }
                _ => {}
            }
        }
        drop(inner);
        std::thread::sleep(CHECK_INTERVAL);
    }
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(QueryableByName)]
struct ReplayState {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = Nullable<Bool>)]
    caught_up: Option<bool>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    lag_ms: Option<f64>,
}

/// Where the primary's WAL is now; `None` when it cannot be asked (then only the replica's
/// own clock judges its lag).
fn primary_lsn(primary: &PgPool) -> Option<String> {
    let mut conn = primary.get().ok()?;
    sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
        .get_result::<Position>(&mut conn)
        .ok()
        .map(|position| position.lsn)
}

/// Healthy: reachable, still a standby (a promoted one is someone else's primary, or a split
/// brain), and either replayed up to the primary's position or behind by less than `max_lag`
/// since its last replayed commit. An idle primary writes nothing, so the time since the last
/// replayed commit alone would grow without any lag: the positions are compared first.
fn check(replica: &Replica, primary_lsn: Option<&str>, max_lag: Duration) -> Result<(), String> {
    let mut conn = replica.pool.get().map_err(|err| err.to_string())?;
    let state = replay_state(&mut conn, primary_lsn).map_err(|err| err.to_string())?;
    if !state.in_recovery {
        return Err("it is not a standby (promoted?)".into());
    }
    if state.caught_up == Some(true) {
        return Ok(());
    }
    match state.lag_ms {
        Some(lag) if lag <= max_lag.as_millis() as f64 => Ok(()),
        Some(lag) => Err(format!("{lag:.0} ms behind the primary")),
        None => Err("it has replayed nothing yet".into()),
    }
}

fn replay_state(
    conn: &mut PgConnection,
    primary_lsn: Option<&str>,
) -> diesel::QueryResult<ReplayState> {
    sql_query(
        "SELECT pg_is_in_recovery() AS in_recovery, \
           pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up, \
           (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 \
             AS lag_ms",
    )
    .bind::<Nullable<Text>, _>(primary_lsn)
    .get_result(conn)
}

/// The host part of a connection string, for logs.
fn host_of(url: &str) -> String {
    if let Some((_, rest)) = url.split_once("://") {
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        return host.split(['/', '?']).next().unwrap_or("").to_owned();
    }
    url.split_whitespace()
        .filter(|pair| pair.starts_with("host=") || pair.starts_with("port="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn logs_name_a_replica_without_its_password() {
        assert_eq!(
            host_of("postgres://shop:s3cret@replica1:5432/shop?sslmode=require"),
            "replica1:5432"
        );
        assert_eq!(
            host_of("host=/run/pg port=5433 user=shop password=s3cret dbname=shop"),
            "host=/run/pg port=5433"
        );
    }
}
