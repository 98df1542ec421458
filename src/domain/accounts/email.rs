//! E-mail addresses: the parsed type, and confirming an address. An address counts (reset
//! links and order confirmations go to it) only once its owner opened the link mailed to it:
//! until then it waits in `email_confirmations`, and `users.email` keeps the confirmed one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use serde_json::json;

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::{email_confirmations, users},
    domain::{
        accounts::{User, find_user, sessions::SessionToken},
        outbox::{self, NewMail},
    },
    ids::{EmailConfirmationId, UserId},
    mail::MailKind,
};

/// An address that passed the rules: trimmed, at most 254 characters, no spaces or control
/// characters, one `@` between a local part (at most 64) and a domain that lettre accepts;
/// the domain in lower case (the local part's case is the owner's business, but two
/// accounts cannot hold one address in two cases: the unique index is on `lower(email)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, String> {
        let text = input.trim();
        if text.is_empty() {
            return Err("Tell us your e-mail address.".into());
        }
        if text.chars().count() > 254 {
            return Err("An e-mail address has at most 254 characters.".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("An e-mail address has no spaces or control characters.".into());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("An e-mail address looks like name@example.com.".into());
        };
        if local.is_empty() || local.chars().count() > 64 || !domain.contains('.') {
            return Err("An e-mail address looks like name@example.com.".into());
        }
        let normalised = format!("{local}@{}", domain.to_lowercase());
        normalised
            .parse::<lettre::Address>()
            .map_err(|_| "That is not an e-mail address we can send to.".to_owned())?;
        Ok(EmailAddress(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For addresses read back from the database (they passed `parse` on the way in).
    pub(crate) fn stored(text: String) -> EmailAddress {
        EmailAddress(text)
    }
}

/// How long a confirmation link works.
pub const CONFIRMATION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// At most this many addresses asked for per account an hour (each is a mail sent).
const REQUESTS_PER_HOUR: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum EmailChangeError {
    #[error("That is your address already.")]
    Unchanged,
    #[error("You asked for several addresses in the last hour: try again later.")]
    Throttled,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The account's confirmed address.
pub fn address_of(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Option<EmailAddress>> {
    users::table
        .find(user_id)
        .select(users::email)
        .first::<Option<String>>(conn)
        .map(|email| email.map(EmailAddress::stored))
}

/// The newest address waiting for its link to be opened, if any.
pub fn pending_address(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Option<String>> {
    email_confirmations::table
        .filter(email_confirmations::user_id.eq(user_id))
        .filter(email_confirmations::used_at.is_null())
        .filter(email_confirmations::expires_at.gt(Utc::now()))
        .order(email_confirmations::id.desc())
        .select(email_confirmations::email)
        .first(conn)
        .optional()
}

/// Asks for `email` to become the account's address: records the request and queues the mail
/// with its link, in one transaction (a savepoint within the caller's, as at registration),
/// as `context`. The address is not the
/// account's until the link is used. Whether another account holds it is not said here (that
/// would tell anyone which addresses have accounts): the link says so when it is opened.
pub fn request_change(
    conn: &mut PgConnection,
    context: &AuditContext,
    user: &User,
    email: &EmailAddress,
) -> Result<EmailConfirmationId, EmailChangeError> {
    conn.transaction(|conn| {
        let current = address_of(conn, user.id)?;
        if current.is_some_and(|current| current.as_str().eq_ignore_ascii_case(email.as_str())) {
            return Err(EmailChangeError::Unchanged);
        }
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        let recent: i64 = email_confirmations::table
            .filter(email_confirmations::user_id.eq(user.id))
            .filter(email_confirmations::created_at.gt(hour_ago))
            .count()
            .get_result(conn)?;
        if recent >= REQUESTS_PER_HOUR {
            return Err(EmailChangeError::Throttled);
        }
        let id: EmailConfirmationId = diesel::insert_into(email_confirmations::table)
            .values((
                email_confirmations::user_id.eq(user.id),
                email_confirmations::email.eq(email.as_str()),
                email_confirmations::expires_at.eq(Utc::now() + CONFIRMATION_LIFETIME),
            ))
            .returning(email_confirmations::id)
            .get_result(conn)?;
        outbox::queue(
            conn,
            context,
            NewMail {
                kind: MailKind::EmailConfirmation,
                recipient: email.clone(),
                user_id: Some(user.id),
                subject: "Confirm your e-mail address for the Bookstore".into(),
                data: json!({ "confirmation": id }),
            },
        )?;
        let subject = format!("user {}", user.login);
        let details = json!({ "email": email.as_str() });
        audit::record(
            conn,
            context,
            AuditAction::EmailChangeRequested,
            &subject,
            details,
        )?;
        Ok(id)
    })
}

/// A confirmation link's secret, made when its mail is sent: like a reset link's token.
pub struct ConfirmationToken(SessionToken);

impl ConfirmationToken {
    pub fn parse(text: &str) -> Option<ConfirmationToken> {
        SessionToken::parse(text).map(ConfirmationToken)
    }

    pub fn to_text(&self) -> String {
        self.0.to_text()
    }
}

impl std::fmt::Debug for ConfirmationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmationToken(..)")
    }
}

/// For the mail that carries it: a new token for a request still open (replacing one an
/// earlier, failed attempt made), with the address and when it stops working. `None` when
/// the request was used or has expired: there is nothing to send.
pub fn issue_token(
    conn: &mut PgConnection,
    id: EmailConfirmationId,
) -> QueryResult<Option<(ConfirmationToken, DateTime<Utc>)>> {
    let token = ConfirmationToken(SessionToken::generate());
    let expires_at: Option<DateTime<Utc>> = diesel::update(
        email_confirmations::table
            .find(id)
            .filter(email_confirmations::used_at.is_null())
            .filter(email_confirmations::expires_at.gt(Utc::now())),
    )
    .set(email_confirmations::token_hash.eq(token.0.digest()))
    .returning(email_confirmations::expires_at)
    .get_result(conn)
    .optional()?;
    Ok(expires_at.map(|at| (token, at)))
}

/// What a confirmation link is worth now.
#[derive(Debug)]
pub enum LinkState {
    Usable { email: String, login: String },
    Used,
    Expired,
    Unknown,
}

pub fn check(conn: &mut PgConnection, token: &ConfirmationToken) -> QueryResult<LinkState> {
    type Row = (UserId, String, DateTime<Utc>, Option<DateTime<Utc>>);
    let row: Option<Row> = email_confirmations::table
        .filter(email_confirmations::token_hash.eq(token.0.digest()))
        .select((
            email_confirmations::user_id,
            email_confirmations::email,
            email_confirmations::expires_at,
            email_confirmations::used_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => LinkState::Unknown,
        Some((_, _, _, Some(_))) => LinkState::Used,
        Some((_, _, expires_at, None)) if expires_at <= Utc::now() => LinkState::Expired,
        Some((user_id, email, _, None)) => match find_user(conn, user_id)? {
            Some(user) => LinkState::Usable {
                email,
                login: user.login,
            },
            None => LinkState::Unknown,
        },
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("This link was used already or has expired.")]
    NotUsable,
    #[error("Another account has confirmed this address meanwhile: it stays that account's.")]
    AddressTaken,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Uses a confirmation link, by `context` (whoever holds it: the link is the proof): the
/// address becomes the account's, the request is used up, and the change is recorded, in one
/// transaction. One UPDATE claims the link while it is unused, so it works once; the unique
/// index on `lower(email)` decides between two accounts confirming one address.
pub fn confirm(
    conn: &mut PgConnection,
    context: &AuditContext,
    token: &ConfirmationToken,
) -> Result<(User, EmailAddress), ConfirmError> {
    conn.transaction(|conn| {
        let now = Utc::now();
        let (user_id, email): (UserId, String) = diesel::update(
            email_confirmations::table
                .filter(email_confirmations::token_hash.eq(token.0.digest()))
                .filter(email_confirmations::used_at.is_null())
                .filter(email_confirmations::expires_at.gt(now)),
        )
        .set(email_confirmations::used_at.eq(now))
        .returning((email_confirmations::user_id, email_confirmations::email))
        .get_result(conn)
        .optional()?
        .ok_or(ConfirmError::NotUsable)?;
        let updated = conn.transaction(|conn| {
            diesel::update(users::table.find(user_id))
                .set(users::email.eq(&email))
                .execute(conn)
        });
        match updated {
            Ok(_) => {}
            Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(ConfirmError::AddressTaken);
            }
            Err(err) => return Err(err.into()),
        }
        let user = find_user(conn, user_id)?.ok_or(ConfirmError::NotUsable)?;
        let subject = format!("user {}", user.login);
        let details = json!({ "email": email });
        audit::record(
            conn,
            context,
            AuditAction::EmailConfirmed,
            &subject,
            details,
        )?;
        Ok((user, EmailAddress::stored(email)))
    })
}

/// Gives an account a confirmed address without a link (the demo accounts' example ones).
pub fn set_confirmed(
    conn: &mut PgConnection,
    user_id: UserId,
    email: &EmailAddress,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::email.eq(email.as_str()))
        .execute(conn)
        .map(drop)
}

/// Requests a day past their lifetime or their use; returns how many were deleted. Not
/// sooner: until then, someone opening the link is told it expired or was used, not that it
/// never existed.
pub fn purge_expired(conn: &mut PgConnection) -> QueryResult<usize> {
    let day_ago = Utc::now() - chrono::Duration::days(1);
    diesel::delete(
        email_confirmations::table.filter(
            email_confirmations::expires_at
                .le(day_ago)
                .or(email_confirmations::used_at.le(day_ago)),
        ),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_normalised() {
        assert_eq!(
            EmailAddress::parse("  Ann.Lee@Example.COM ")
                .unwrap()
                .as_str(),
            "Ann.Lee@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "ann lee@example.com",
            "ann@example.com\r\nBcc: eve@example.com",
            &format!("{}@example.com", "a".repeat(65)),
            &format!("ann@{}.com", "a".repeat(260)),
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
