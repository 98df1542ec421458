//! Login throttling: after too many failures for one login, or from one address, within the
//! window, further attempts are refused until the window ends. Counters live in PostgreSQL so
//! every node sees the same ones.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Text, Timestamptz},
};

use crate::db::schema::login_throttle;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures for one login before it is locked for the rest of the window.
    pub max_failures_per_login: u32,
    /// Failures from one address (several people may share one, behind a NAT).
    pub max_failures_per_address: u32,
    pub window: Duration,
}

impl ThrottlePolicy {
    pub fn new(max_failures: u32, window: Duration) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures_per_login: max_failures,
            max_failures_per_address: max_failures.saturating_mul(4),
            window,
        }
    }
}

/// A digest of the login as typed (trimmed, lower-cased): any input, however long, makes a
/// key of one size (a raw 4 kB login was larger than an index row may be), and the table
/// holds no login names.
fn login_key(login: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(login.trim().to_lowercase().as_bytes());
    format!("login:{}", hex::encode(digest))
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

/// When the login or the address may try again, if either is locked now.
pub fn locked_until(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    address: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    let window_start = Utc::now() - policy.window;
    let rows: Vec<(String, i32, DateTime<Utc>)> = login_throttle::table
        .filter(login_throttle::key.eq_any([login_key(login), address_key(address)]))
        .filter(login_throttle::window_started_at.gt(window_start))
        .select((
            login_throttle::key,
            login_throttle::failures,
            login_throttle::window_started_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(key, failures, _)| {
            let limit = if key.starts_with("login:") {
                policy.max_failures_per_login
            } else {
                policy.max_failures_per_address
            };
            *failures as i64 >= limit as i64
        })
        .map(|(_, _, started)| started + policy.window)
        .max())
}

/// Counts a failure for the login and the address; a counter whose window has passed starts
/// over. One statement per key, so concurrent failures are all counted.
pub fn record_failure(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    address: &str,
) -> QueryResult<()> {
    for key in [login_key(login), address_key(address)] {
        diesel::sql_query(
            "INSERT INTO login_throttle (key, failures, window_started_at) VALUES ($1, 1, now()) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_started_at > $2 \
                          THEN login_throttle.failures + 1 ELSE 1 END, \
               window_started_at = CASE WHEN login_throttle.window_started_at > $2 \
                          THEN login_throttle.window_started_at ELSE now() END",
        )
        .bind::<Text, _>(key)
        .bind::<Timestamptz, _>(Utc::now() - policy.window)
        .execute(conn)?;
    }
    Ok(())
}

/// A successful login clears the login's counter (not the address's: one success must not
/// reset a guessing run over many logins).
pub fn record_success(conn: &mut PgConnection, login: &str) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find(login_key(login))).execute(conn)?;
    Ok(())
}

/// Drops counters whose window has passed.
pub fn purge_stale(conn: &mut PgConnection, policy: &ThrottlePolicy) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_started_at.lt(Utc::now() - policy.window)),
    )
    .execute(conn)
}
