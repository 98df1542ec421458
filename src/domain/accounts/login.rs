//! Log-ins and password changes: a password checked under the throttle, each attempt at the
//! log-in form recorded in the audit log, and a new password that ends every session.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::{
    audit::{self, Actor, AuditAction, AuditContext},
    db::schema::users,
    domain::accounts::{
        NewPassword, User,
        devices::KnownDevice,
        find_by_login, hash_password,
        password::{verify_against_dummy, verify_password},
        sessions,
        throttle::{self, ThrottlePolicy},
    },
    ids::UserId,
};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer whether the login exists or not.
    #[error("Wrong login or password.")]
    WrongCredentials,
    #[error("Too many failed log-ins: wait a while before trying again.")]
    Throttled { until: DateTime<Utc> },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Checks a log-in attempt. Unknown logins cost the same hashing time as known ones, and every
/// failure counts against the login and the address (see [`super::throttle`]). `device` is what the
/// browser showed of an earlier log-in; on success the mark for this one is returned.
fn authenticate(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    password: &str,
    address: &str,
    device: Option<&KnownDevice>,
) -> Result<(User, KnownDevice), LoginError> {
    let account = find_by_login(conn, login.trim())?;
    let known_device = match (&account, device) {
        (Some((user, hash)), Some(device)) => device.vouches_for(user.id, hash),
        _ => false,
    };
    if let Err(until) = throttle::admit(conn, policy, login, address, known_device)? {
        return Err(LoginError::Throttled { until });
    }
    let verified = match account {
        Some((user, hash)) => verify_password(password, &hash).then(|| {
            let device = KnownDevice::of(user.id, &hash);
            (user, device)
        }),
        None => {
            verify_against_dummy(password);
            None
        }
    };
    match verified {
        Some(user) => {
            throttle::record_success(conn, login, address)?;
            Ok(user)
        }
        None => {
            throttle::record_failure(conn, policy, login, address)?;
            Err(LoginError::WrongCredentials)
        }
    }
}

/// A log-in at the form from `address`: [`authenticate`], then its outcome in the audit log,
/// under the user it logged in as, or "visitor". Not one transaction with the check: the
/// throttle's counters are written as the attempt goes (the slot it takes before the slow
/// password check must be seen by concurrent guesses at once), so the record follows them.
pub fn log_in(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    login: &str,
    password: &str,
    address: &str,
    device: Option<&KnownDevice>,
) -> Result<(User, KnownDevice), LoginError> {
    let outcome = authenticate(conn, policy, login, password, address, device);
    let (action, actor) = match &outcome {
        Ok((user, _)) => (AuditAction::LoginSucceeded, user.actor()),
        Err(LoginError::WrongCredentials) => (AuditAction::LoginFailed, Actor::Visitor),
        Err(LoginError::Throttled { .. }) => (AuditAction::LoginThrottled, Actor::Visitor),
        Err(LoginError::Database(_)) => return outcome,
    };
    let context = AuditContext::new(actor, Some(address.to_owned()));
    let subject = format!("login {}", login.trim());
    audit::record(conn, &context, action, &subject, json!({}))?;
    outcome
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("That is not your current password.")]
    WrongPassword,
    #[error("Too many wrong passwords: wait a while before trying again.")]
    Throttled { until: DateTime<Utc> },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Hashing(#[from] anyhow::Error),
}

/// A logged-in user changes their password, from `address`. The current one is checked
/// exactly like a log-in ([`authenticate`]: same throttle, same counters), so an open session
/// someone walked up to is no way around the growing delays for guessing it. Every session of
/// the user ends with the change, in the transaction that records it; the caller renews its
/// own (`web::auth::start_session`), which is then the only one.
pub fn change_password(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    user: &User,
    current: &str,
    new: &NewPassword,
    address: &str,
    device: Option<&KnownDevice>,
) -> Result<KnownDevice, PasswordChangeError> {
    match authenticate(conn, policy, &user.login, current, address, device) {
        Ok((checked, _)) if checked.id == user.id => {}
        Ok(_) | Err(LoginError::WrongCredentials) => {
            return Err(PasswordChangeError::WrongPassword);
        }
        Err(LoginError::Throttled { until }) => {
            return Err(PasswordChangeError::Throttled { until });
        }
        Err(LoginError::Database(err)) => return Err(err.into()),
    }
    let hash = hash_password(new.as_str())?;
    let context = AuditContext::new(user.actor(), Some(address.to_owned()));
    conn.transaction(|conn| {
        set_password_and_end_sessions(conn, user.id, &hash)?;
        let subject = format!("user {}", user.login);
        audit::record(
            conn,
            &context,
            AuditAction::PasswordChanged,
            &subject,
            json!({}),
        )
    })?;
    Ok(KnownDevice::of(user.id, &hash))
}

/// Stores a new password hash and deletes every session of the user. Run it inside a
/// transaction: the password and the sessions change together or not at all.
pub(super) fn set_password_and_end_sessions(
    conn: &mut PgConnection,
    user_id: UserId,
    hash: &str,
) -> QueryResult<()> {
    // The update locks the user row first, the order `sessions::create` takes at a log-in.
    diesel::update(users::table.find(user_id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?;
    sessions::end_all_of_user(conn, user_id, sessions::SessionEnd::PasswordChanged)?;
    Ok(())
}
