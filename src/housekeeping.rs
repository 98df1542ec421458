//! Periodic clean-up every node runs: expired sessions, stale login counters, expired
//! password reset links and long-dead API tokens. Running it on
//! several nodes at once is harmless (each DELETE is idempotent).

use std::time::Duration;

use actix_web::web;

use crate::{
    db::PgPool,
    domain::accounts::{
        resets,
        sessions::{self, SessionPolicy},
        throttle::{self, ThrottlePolicy},
        tokens,
    },
};

const INTERVAL: Duration = Duration::from_secs(300);

/// Runs until the future is dropped.
pub async fn run(pool: PgPool, sessions_policy: SessionPolicy, throttle_policy: ThrottlePolicy) {
    let mut ticks = tokio::time::interval(INTERVAL);
    loop {
        ticks.tick().await;
        let pool = pool.clone();
        let purged = web::block(move || -> anyhow::Result<(usize, usize, usize, usize)> {
            let mut conn = pool.get()?;
            Ok((
                sessions::purge_expired(&mut conn, &sessions_policy)?,
                throttle::purge_stale(&mut conn, &throttle_policy)?,
                resets::purge_expired(&mut conn)?,
                tokens::purge_dead(&mut conn)?,
            ))
        })
        .await;
        match purged {
            Ok(Ok((0, 0, 0, 0))) => {}
            Ok(Ok((sessions, counters, reset_links, api_tokens))) => {
                tracing::info!(
                    sessions,
                    counters,
                    reset_links,
                    api_tokens,
                    "housekeeping purged"
                )
            }
            Ok(Err(err)) => tracing::warn!("housekeeping: {err:#}"),
            Err(err) => tracing::warn!("housekeeping: {err}"),
        }
    }
}
