//! "Forgot your password?": a login or an address in, a reset link out by mail, if there is
//! such an account with a confirmed address. The visitor is told the same thing either way,
//! so the form reveals no account; it is throttled per network address (openly: that says
//! nothing about accounts) and per account (silently).

use diesel::prelude::*;
use serde_json::json;

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::users,
    domain::{
        accounts::{
            Login, User,
            email::EmailAddress,
            find_by_login, find_user,
            throttle::{self, ThrottlePolicy},
        },
        outbox::{self, NewMail},
    },
    ids::UserId,
    mail::MailKind,
};

#[derive(Debug, thiserror::Error)]
pub enum ForgotError {
    /// This network address asked too often lately.
    #[error("Too many requests from your network lately.")]
    Throttled {
        until: chrono::DateTime<chrono::Utc>,
    },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// What the visitor typed, read as a login if it can be one, else as an address. `None`:
/// neither (the form then says what it takes; that reveals nothing about accounts).
pub fn parse_who(input: &str) -> Option<Who> {
    let input = input.trim();
    if input.contains('@') {
        EmailAddress::parse(input).ok().map(Who::Address)
    } else {
        Login::parse(input).ok().map(Who::Login)
    }
}

#[derive(Debug, Clone)]
pub enum Who {
    Login(Login),
    Address(EmailAddress),
}

/// Queues a reset mail to the account `who` names, if it exists, has a confirmed address
/// and has not had its share of reset mails this window; records the request (for the
/// account, when there is one). Returns whether a mail was queued, for the tests and logs
/// only: the page must not show it.
pub fn request_reset_mail(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    context: &AuditContext,
    address: &str,
    who: &Who,
) -> Result<bool, ForgotError> {
    conn.transaction(|conn| {
        if let Some(until) = throttle::reset_requests_locked_until(conn, policy, address)? {
            return Err(ForgotError::Throttled { until });
        }
        throttle::record_reset_request(conn, policy, address)?;
        let Some((user, email)) = account_with_address(conn, who)? else {
            return Ok(false);
        };
        if !throttle::take_reset_mail(conn, policy, user.id)? {
            tracing::info!(login = %user.login, "reset mail not sent: the account had its share this window");
            return Ok(false);
        }
        outbox::queue(
            conn,
            context,
            NewMail {
                kind: MailKind::PasswordReset,
                recipient: email,
                user_id: Some(user.id),
                subject: "Your password reset link for the Bookstore".into(),
                data: json!({}),
            },
        )?;
        let subject = format!("user {}", user.login);
        audit::record(conn, context, AuditAction::PasswordResetRequested, &subject, json!({}))?;
        Ok(true)
    })
}

/// The account and its confirmed address, found by login or by address (any case).
fn account_with_address(
    conn: &mut PgConnection,
    who: &Who,
) -> QueryResult<Option<(User, EmailAddress)>> {
    let user_id: Option<UserId> = match who {
        Who::Login(login) => find_by_login(conn, login.as_str())?.map(|(user, _)| user.id),
        Who::Address(email) => users::table
            .filter(super::lower(users::email.assume_not_null()).eq(email.as_str().to_lowercase()))
            .select(users::id)
            .first(conn)
            .optional()?,
    };
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let Some(email) = super::email::address_of(conn, user_id)? else {
        return Ok(None);
    };
    Ok(find_user(conn, user_id)?.map(|user| (user, email)))
}
