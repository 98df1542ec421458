//! Periodic clean-up every node runs: expired sessions, stale login counters, expired
//! password reset links, long-dead API tokens and audit events past their keeping. Running it on
//! several nodes at once is harmless (each DELETE is idempotent).

use std::time::Duration;

use actix_web::web;

use crate::{
    db::PgPool,
    domain::{
        accounts::{
            resets,
            sessions::{self, SessionPolicy},
            throttle::{self, ThrottlePolicy},
            tokens,
        },
        audit,
    },
};

const INTERVAL: Duration = Duration::from_secs(300);

/// Runs until the future is dropped.
pub async fn run(
    pool: PgPool,
    sessions_policy: SessionPolicy,
    throttle_policy: ThrottlePolicy,
    audit_days: u64,
) {
    let mut ticks = tokio::time::interval(INTERVAL);
    loop {
        ticks.tick().await;
        let pool = pool.clone();
        let purged = web::block(move || -> anyhow::Result<[usize; 6]> {
            let mut conn = pool.get()?;
            Ok([
                sessions::purge_expired(&mut conn, &sessions_policy)?,
                sessions::purge_session_ends(&mut conn, &sessions_policy)?,
                throttle::purge_stale(&mut conn, &throttle_policy)?,
                resets::purge_expired(&mut conn)?,
                tokens::purge_dead(&mut conn)?,
                audit::purge_older_than(&mut conn, audit_days)?,
            ])
        })
        .await;
        match purged {
            Ok(Ok([0, 0, 0, 0, 0, 0])) => {}
            Ok(Ok(
                [
                    sessions,
                    session_ends,
                    counters,
                    reset_links,
                    api_tokens,
                    audit_events,
                ],
            )) => {
                tracing::info!(
                    sessions,
                    session_ends,
                    counters,
                    reset_links,
                    api_tokens,
                    audit_events,
                    "housekeeping purged"
                )
            }
            Ok(Err(err)) => tracing::warn!("housekeeping: {err:#}"),
            Err(err) => tracing::warn!("housekeeping: {err}"),
        }
    }
}
