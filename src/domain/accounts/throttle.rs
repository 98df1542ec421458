//! Log-in throttling by growing delays, not a hard lock (which would let anyone lock any
//! customer out by guessing wrong five times). Counters live in PostgreSQL so every node sees
//! the same ones; each has a window (an hour by default) and remembers its last failure.
//!
//! - Per login *and* address: after n failures, the next try from that address waits
//!   2^(n-1) s (1, 2, 4, 8 ... capped at the window). The owner elsewhere is not slowed down.
//! - Per login: after `max_failures_per_login` failures in the window (the guesses an hour),
//!   addresses that already failed on it wait until the window ends; an address that never
//!   failed on it (the owner at home) may still try with the right password.
//! - Per address: after `max_failures_per_address` failures on any logins, it waits until the
//!   window ends (several people may share one address, behind a NAT).
//! - Registrations: at most `max_registrations_per_address` an address per window.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Text, Timestamptz},
};

use crate::db::schema::login_throttle;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures for one login within the window (the guesses an hour).
    pub max_failures_per_login: u32,
    /// Failures from one address within the window.
    pub max_failures_per_address: u32,
    /// Accounts one address may create within the window (`new` sets 10).
    pub max_registrations_per_address: u32,
    pub window: Duration,
}

impl ThrottlePolicy {
    pub fn new(max_failures: u32, window: Duration) -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures_per_login: max_failures,
            max_failures_per_address: max_failures.saturating_mul(4),
            max_registrations_per_address: 10,
            window,
        }
    }

    /// The wait after `failures` failures of one login from one address.
    fn delay_after(&self, failures: i32) -> chrono::Duration {
        let seconds = 1i64 << (failures.clamp(1, 30) - 1);
        chrono::Duration::seconds(seconds)
            .min(chrono::Duration::from_std(self.window).unwrap_or_default())
    }
}

/// A digest of the login as typed (trimmed, lower-cased): any input, however long, makes a
/// key of one size (a raw 4 kB login was larger than an index row may be), and the table
/// holds no login names.
fn login_digest(login: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(login.trim().to_lowercase().as_bytes()))
}

fn login_key(login: &str) -> String {
    format!("login:{}", login_digest(login))
}

fn pair_key(login: &str, address: &str) -> String {
    format!("pair:{}:{address}", login_digest(login))
}

fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

fn registration_key(address: &str) -> String {
    format!("register:{address}")
}

/// A live counter: (key, failures, window started, last failure).
type Counter = (String, i32, DateTime<Utc>, DateTime<Utc>);

/// The live counters among `keys`.
fn counters(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    keys: &[String],
) -> QueryResult<Vec<Counter>> {
    login_throttle::table
        .filter(login_throttle::key.eq_any(keys))
        .filter(login_throttle::window_started_at.gt(Utc::now() - policy.window))
        .select((
            login_throttle::key,
            login_throttle::failures,
            login_throttle::window_started_at,
            login_throttle::last_failure_at,
        ))
        .load(conn)
}

/// When this address may try this login again, if it must wait now.
pub fn locked_until(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    address: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    let (pair, login_wide, by_address) = (
        pair_key(login, address),
        login_key(login),
        address_key(address),
    );
    let rows = counters(
        conn,
        policy,
        &[pair.clone(), login_wide.clone(), by_address.clone()],
    )?;
    let find = |key: &str| rows.iter().find(|row| row.0 == key);
    let window = chrono::Duration::from_std(policy.window).unwrap_or_default();
    let mut until: Vec<DateTime<Utc>> = Vec::new();
    if let Some((_, failures, started, _)) = find(&by_address)
        && *failures as u32 >= policy.max_failures_per_address
    {
        until.push(*started + window);
    }
    if let Some((_, failures, _, last)) = find(&pair) {
        until.push(*last + policy.delay_after(*failures));
        if let Some((_, login_failures, started, _)) = find(&login_wide)
            && *login_failures as u32 >= policy.max_failures_per_login
        {
            until.push(*started + window);
        }
    }
    Ok(until.into_iter().max().filter(|at| *at > Utc::now()))
}

/// Counts one more event under `key`; a counter whose window has passed starts over. One
/// statement, so concurrent events are all counted.
fn count(conn: &mut PgConnection, policy: &ThrottlePolicy, key: String) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO login_throttle (key, failures, window_started_at, last_failure_at) \
         VALUES ($1, 1, now(), now()) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_started_at > $2 \
                      THEN login_throttle.failures + 1 ELSE 1 END, \
           window_started_at = CASE WHEN login_throttle.window_started_at > $2 \
                      THEN login_throttle.window_started_at ELSE now() END, \
           last_failure_at = now()",
    )
    .bind::<Text, _>(key)
    .bind::<Timestamptz, _>(Utc::now() - policy.window)
    .execute(conn)?;
    Ok(())
}

/// Counts a failure for the login from this address, the login and the address.
pub fn record_failure(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    address: &str,
) -> QueryResult<()> {
    for key in [
        pair_key(login, address),
        login_key(login),
        address_key(address),
    ] {
        count(conn, policy, key)?;
    }
    Ok(())
}

/// A successful log-in clears the login's counters (not the address's: one success must not
/// reset a guessing run over many logins).
pub fn record_success(conn: &mut PgConnection, login: &str, address: &str) -> QueryResult<()> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::key.eq_any([login_key(login), pair_key(login, address)])),
    )
    .execute(conn)?;
    Ok(())
}

/// When this address may register again, if it has registered too many accounts lately.
pub fn registration_locked_until(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    address: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    let rows = counters(conn, policy, &[registration_key(address)])?;
    let window = chrono::Duration::from_std(policy.window).unwrap_or_default();
    Ok(rows
        .first()
        .filter(|(_, registrations, _, _)| {
            *registrations as u32 >= policy.max_registrations_per_address
        })
        .map(|(_, _, started, _)| *started + window))
}

/// Counts a registration from this address.
pub fn record_registration(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    address: &str,
) -> QueryResult<()> {
    count(conn, policy, registration_key(address))
}

/// Drops counters whose window has passed.
pub fn purge_stale(conn: &mut PgConnection, policy: &ThrottlePolicy) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(login_throttle::window_started_at.lt(Utc::now() - policy.window)),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_window() {
        let policy = ThrottlePolicy::new(5, Duration::from_secs(3600));
        let delays: Vec<i64> = [1, 2, 3, 4, 12, 40]
            .map(|n| policy.delay_after(n).num_seconds())
            .to_vec();
        assert_eq!(delays, [1, 2, 4, 8, 2048, 3600]);
    }
}
