//! Periodic clean-up every node runs: expired sessions, stale login counters, expired
//! password reset and address confirmation links, old mails, long-dead API tokens and audit
//! events past their keeping. Running it on several nodes at once is harmless (each DELETE is
//! idempotent).

use std::time::Duration;

use actix_web::web;
use diesel::{PgConnection, QueryResult};

use crate::{
    audit,
    config::Config,
    db::PgPool,
    domain::{
        accounts::{
            email, resets,
            sessions::{self, SessionPolicy},
            throttle::{self, ThrottlePolicy},
            tokens,
        },
        outbox,
    },
};

const INTERVAL: Duration = Duration::from_secs(300);

/// What to keep, from the configuration.
#[derive(Debug, Clone)]
pub struct Keeping {
    pub sessions: SessionPolicy,
    pub throttle: ThrottlePolicy,
    pub audit_days: u64,
}

impl From<&Config> for Keeping {
    fn from(config: &Config) -> Keeping {
        Keeping {
            sessions: SessionPolicy::from(config),
            throttle: ThrottlePolicy::from(config),
            audit_days: config.audit_days,
        }
    }
}

/// How many rows one round deleted, per kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub sessions: usize,
    pub session_ends: usize,
    pub counters: usize,
    pub reset_links: usize,
    pub address_links: usize,
    pub mails: usize,
    pub api_tokens: usize,
    pub audit_events: usize,
}

/// Runs until the future is dropped.
pub async fn run(pool: PgPool, keeping: Keeping) {
    let mut ticks = tokio::time::interval(INTERVAL);
    loop {
        ticks.tick().await;
        let (pool, keeping) = (pool.clone(), keeping.clone());
        let purged = web::block(move || -> anyhow::Result<Purged> {
            let mut conn = pool.get()?;
            Ok(sweep(&mut conn, &keeping)?)
        })
        .await;
        match purged {
            Ok(Ok(purged)) if purged == Purged::default() => {}
            Ok(Ok(purged)) => tracing::info!(?purged, "housekeeping purged"),
            Ok(Err(err)) => tracing::warn!("housekeeping: {err:#}"),
            Err(err) => tracing::warn!("housekeeping: {err}"),
        }
    }
}

/// One round: each kind's DELETE, one after the other (each on its own: a failure leaves
/// what the others did).
pub fn sweep(conn: &mut PgConnection, keeping: &Keeping) -> QueryResult<Purged> {
    Ok(Purged {
        sessions: sessions::purge_expired(conn, &keeping.sessions)?,
        session_ends: sessions::purge_session_ends(conn, &keeping.sessions)?,
        counters: throttle::purge_stale(conn, &keeping.throttle)?,
        reset_links: resets::purge_expired(conn)?,
        address_links: email::purge_expired(conn)?,
        mails: outbox::purge_old(conn)?,
        api_tokens: tokens::purge_dead(conn)?,
        audit_events: audit::purge_older_than(conn, keeping.audit_days)?,
    })
}
