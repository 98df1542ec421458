//! Log-in throttling by growing delays, not a hard lock (which would let anyone lock any
//! customer out by guessing wrong five times). Counters live in PostgreSQL so every node sees
//! the same ones; each has a window (15 minutes by default) and remembers its last failure.
//!
//! - Per login *and* address: the first [`FAILURES_WITHOUT_DELAY`] failures cost nothing (a
//!   password manager's stale entry, then the right one at once, must work); after n failures
//!   the next try from that address waits 2^(n-3) s (1, 2, 4 ... capped at the window).
//! - Per login, the account's ceiling: after `max_failures_per_login` failures in the window,
//!   addresses that already failed on it wait until the window ends, and every other address
//!   too waits a delay that doubles with each further failure on the account (1, 2, 4 ... s
//!   after the last one), one try per delay however many addresses ask at once: many
//!   addresses buy no more guesses than one. The owner keeps two ways in that the ceiling does
//!   not slow: a browser that has logged in to the account before ([`KnownDevice`]), and a
//!   password reset link (setting a new password clears the account's counters).
//! - Per address: after `max_failures_per_address` failures on any logins, it waits until the
//!   window ends (several people may share one address, behind a NAT).
//! - Registrations: at most `max_registrations_per_address` an address per window.
//!
//! [`KnownDevice`]: super::devices::KnownDevice

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_types::{Text, Timestamptz},
};

use crate::{config::Config, db::schema::login_throttle};

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

impl From<&Config> for ThrottlePolicy {
    fn from(config: &Config) -> ThrottlePolicy {
        ThrottlePolicy {
            max_registrations_per_address: config.registrations_per_address,
            ..ThrottlePolicy::new(
                config.login_max_failures,
                Duration::from_secs(config.login_lockout_seconds),
            )
        }
    }
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

    /// The wait after `failures` failures of one login from one address: none for the first
    /// few, then 1 s, doubling.
    fn delay_after(&self, failures: i32) -> chrono::Duration {
        if failures <= FAILURES_WITHOUT_DELAY {
            return chrono::Duration::zero();
        }
        self.doubling(failures - FAILURES_WITHOUT_DELAY)
    }

    /// The account's wait for every address without a known device, after `failures`
    /// failures on the login: none below the ceiling, then 1 s at it, doubling.
    fn ceiling_delay(&self, failures: i32) -> Option<chrono::Duration> {
        let over = failures - self.max_failures_per_login as i32;
        (over >= 0).then(|| self.doubling(over + 1))
    }

    /// 1 s for the first step, doubling, capped at the window.
    fn doubling(&self, step: i32) -> chrono::Duration {
        chrono::Duration::seconds(1i64 << (step.clamp(1, 30) - 1))
            .min(chrono::Duration::from_std(self.window).unwrap_or_default())
    }
}

/// Failures of one login from one address that delay nothing: a wrong password and then the
/// right one at once (a password manager's old entry) just works.
pub const FAILURES_WITHOUT_DELAY: i32 = 2;

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

/// Whether this address may try this login now: `Err(until)` when it must wait. A browser
/// that has logged in to the account before (`known_device`) is not paced by the account's
/// ceiling. When the ceiling is what paces the try, the try takes the account's one slot for
/// this delay (a compare-and-set on the counter), so many addresses asking at once still get
/// one try between them.
pub fn admit(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    address: &str,
    known_device: bool,
) -> QueryResult<Result<(), DateTime<Utc>>> {
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
    let ceiling =
        find(&login_wide)
            .filter(|_| !known_device)
            .and_then(|(_, failures, started, last)| {
                policy
                    .ceiling_delay(*failures)
                    .map(|delay| (*failures, *started, *last, delay))
            });
    let mut until: Vec<DateTime<Utc>> = Vec::new();
    if let Some((_, failures, started, _)) = find(&by_address)
        && *failures as u32 >= policy.max_failures_per_address
    {
        until.push(*started + window);
    }
    if let Some((_, failures, _, last)) = find(&pair) {
        until.push(*last + policy.delay_after(*failures));
        if let Some((_, started, _, _)) = ceiling {
            until.push(started + window);
        }
    }
    if let Some((_, _, last, delay)) = ceiling {
        until.push(last + delay);
    }
    let now = Utc::now();
    if let Some(at) = until.into_iter().max().filter(|at| *at > now) {
        return Ok(Err(at));
    }
    if let Some((failures, _, last, delay)) = ceiling {
        let taken = diesel::update(
            login_throttle::table
                .filter(login_throttle::key.eq(&login_wide))
                .filter(login_throttle::failures.eq(failures))
                .filter(login_throttle::last_failure_at.eq(last)),
        )
        .set(login_throttle::last_failure_at.eq(now))
        .execute(conn)?;
        if taken == 0 {
            return Ok(Err(now + delay));
        }
    }
    Ok(Ok(()))
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

/// A new password (a reset link used): the account's counters start over, so its owner can
/// log in at once from anywhere, whatever guessers did before.
pub fn forget_login(conn: &mut PgConnection, login: &str) -> QueryResult<()> {
    let digest = login_digest(login);
    diesel::delete(
        login_throttle::table.filter(
            login_throttle::key
                .eq(login_key(login))
                .or(login_throttle::key.like(format!("pair:{digest}:%"))),
        ),
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

/// "Forgot your password?" asked from one address: at most this many a window.
pub const RESET_REQUESTS_PER_ADDRESS: u32 = 10;
/// Reset mails sent to one account: at most this many a window, however many addresses ask
/// (a flood of mails to someone is a nuisance, and each holds a working link).
pub const RESET_MAILS_PER_ACCOUNT: u32 = 3;

/// When this address may ask for a reset mail again, if it asked too often lately. Says
/// nothing about accounts: the answer is the same whichever login or address was typed.
pub fn reset_requests_locked_until(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    address: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    let rows = counters(conn, policy, &[format!("forgot:{address}")])?;
    let window = chrono::Duration::from_std(policy.window).unwrap_or_default();
    Ok(rows
        .first()
        .filter(|(_, requests, _, _)| *requests as u32 >= RESET_REQUESTS_PER_ADDRESS)
        .map(|(_, _, started, _)| *started + window))
}

/// Counts a request from this address.
pub fn record_reset_request(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    address: &str,
) -> QueryResult<()> {
    count(conn, policy, format!("forgot:{address}"))
}

/// Whether one more reset mail may go to this account in this window; counts it when so.
pub fn take_reset_mail(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    user_id: crate::ids::UserId,
) -> QueryResult<bool> {
    let key = format!("reset-mail:{user_id}");
    let rows = counters(conn, policy, std::slice::from_ref(&key))?;
    if rows
        .first()
        .is_some_and(|(_, sent, _, _)| *sent as u32 >= RESET_MAILS_PER_ACCOUNT)
    {
        return Ok(false);
    }
    count(conn, policy, key)?;
    Ok(true)
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
        let delays: Vec<i64> = [1, 2, 3, 4, 5, 14, 40]
            .map(|n| policy.delay_after(n).num_seconds())
            .to_vec();
        assert_eq!(delays, [0, 0, 1, 2, 4, 2048, 3600]);
    }

    #[test]
    fn the_account_ceiling_starts_at_the_limit_and_doubles() {
        let policy = ThrottlePolicy::new(5, Duration::from_secs(900));
        let delays: Vec<Option<i64>> = [4, 5, 6, 7, 13, 14, 30]
            .map(|n| policy.ceiling_delay(n).map(|d| d.num_seconds()))
            .to_vec();
        assert_eq!(
            delays,
            [
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(256),
                Some(512),
                Some(900)
            ]
        );
    }
}
