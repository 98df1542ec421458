//! Password reset links, `/password-reset/<token>`, valid [`LINK_LIFETIME`]: mailed to the
//! account's confirmed address when its owner asks ("Forgot your password?"), or handed over
//! by staff (or `bookstore reset-password`). Using one sets a new password and ends every
//! session of the account.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::password_resets,
    domain::accounts::{
        Login, NewPassword, User, find_by_login, find_user, hash_password,
        login::set_password_and_end_sessions, sessions::SessionToken,
    },
    ids::UserId,
};

/// How long a link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A link's secret: the same kind as a session token (256 random bits, 64 hex digits in the
/// link, only its SHA-256 in the database), in a type of its own so neither passes for the
/// other.
pub struct ResetToken(SessionToken);

impl ResetToken {
    /// `None` for anything that is not 64 hex digits.
    pub fn parse(text: &str) -> Option<ResetToken> {
        SessionToken::parse(text).map(ResetToken)
    }

    pub fn to_text(&self) -> String {
        self.0.to_text()
    }

    fn digest(&self) -> Vec<u8> {
        self.0.digest()
    }
}

impl std::fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetToken(..)")
    }
}

/// A link just created: the only time its token exists outside the caller.
#[derive(Debug)]
pub struct ResetLink {
    pub token: ResetToken,
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

impl ResetLink {
    /// The link without the site's address: `/password-reset/<token>`.
    pub fn path(&self) -> String {
        format!("/password-reset/{}", self.token.to_text())
    }
}

/// Who hands out a link: the staff pages may do it for customers only. A staff account's
/// link comes from the command line (someone with the server in hand), so one staff member
/// cannot take over another's account from the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkIssuer {
    StaffPage,
    CommandLine,
    /// The mail program, for the owner who asked: the link goes to the account's own
    /// confirmed address, so staff accounts may have theirs this way too.
    Mail,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateLinkError {
    #[error("There is no account with the login {0:?}.")]
    UnknownLogin(String),
    #[error(
        "{0:?} is a staff account: its reset link is made with `bookstore reset-password {0}` \
         on the server."
    )]
    StaffAccount(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Creates a link for the account with this login (any case), handed out by `context`, and
/// records it. Earlier links of that account are deleted: only the newest one handed out
/// works, so a link given to the wrong person is undone by giving out another.
pub fn create_link(
    conn: &mut PgConnection,
    context: &AuditContext,
    login: &Login,
    issuer: LinkIssuer,
) -> Result<ResetLink, CreateLinkError> {
    conn.transaction(|conn| {
        let (user, _) = find_by_login(conn, login.as_str())?
            .ok_or_else(|| CreateLinkError::UnknownLogin(login.as_str().to_owned()))?;
        if user.is_staff() && issuer == LinkIssuer::StaffPage {
            return Err(CreateLinkError::StaffAccount(user.login.to_string()));
        }
        diesel::delete(password_resets::table.filter(password_resets::user_id.eq(user.id)))
            .execute(conn)?;
        let token = ResetToken(SessionToken::generate());
        let now = Utc::now();
        let expires_at = now + LINK_LIFETIME;
        diesel::insert_into(password_resets::table)
            .values((
                password_resets::token_hash.eq(token.digest()),
                password_resets::user_id.eq(user.id),
                password_resets::created_at.eq(now),
                password_resets::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        let subject = format!("user {}", user.login);
        let action = AuditAction::PasswordResetIssued;
        audit::record(conn, context, action, &subject, json!({}))?;
        Ok(ResetLink {
            token,
            user,
            expires_at,
        })
    })
}

/// What a link is worth now.
#[derive(Debug)]
pub enum LinkState {
    /// It works, for this account.
    Usable(User),
    Used,
    Expired,
    /// No such link (never issued, or replaced by a newer one).
    Unknown,
}

pub fn check(conn: &mut PgConnection, token: &ResetToken) -> QueryResult<LinkState> {
    let row: Option<(UserId, DateTime<Utc>, Option<DateTime<Utc>>)> = password_resets::table
        .find(token.digest())
        .select((
            password_resets::user_id,
            password_resets::expires_at,
            password_resets::used_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => LinkState::Unknown,
        Some((_, _, Some(_))) => LinkState::Used,
        Some((_, expires_at, None)) if expires_at <= Utc::now() => LinkState::Expired,
        Some((user_id, _, None)) => match find_user(conn, user_id)? {
            Some(user) => LinkState::Usable(user),
            None => LinkState::Unknown,
        },
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("This link was used already or has expired.")]
    NotUsable,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Hashing(#[from] anyhow::Error),
}

/// Uses a link, by `context` (whoever holds it): marks it used, sets the new password, deletes
/// every session of the account and records it, in one transaction. The link is claimed by one
/// UPDATE that matches only while it is unused and unexpired: of two simultaneous uses, the
/// second waits for the first's row lock, then finds `used_at` set and matches nothing, so a
/// link works exactly once.
pub fn use_link(
    conn: &mut PgConnection,
    context: &AuditContext,
    token: &ResetToken,
    password: &NewPassword,
) -> Result<User, ResetError> {
    // Hashing is slow: done before the transaction, so no lock waits on it.
    let hash = hash_password(password.as_str())?;
    conn.transaction(|conn| {
        let now = Utc::now();
        let user_id: UserId = diesel::update(
            password_resets::table
                .find(token.digest())
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(now)),
        )
        .set(password_resets::used_at.eq(now))
        .returning(password_resets::user_id)
        .get_result(conn)
        .optional()?
        .ok_or(ResetError::NotUsable)?;
        set_password_and_end_sessions(conn, user_id, &hash)?;
        let user = find_user(conn, user_id)?.ok_or(ResetError::NotUsable)?;
        // The owner's way in past the throttle's ceiling: the new password works at once.
        super::throttle::forget_login(conn, &user.login)?;
        let subject = format!("user {}", user.login);
        audit::record(
            conn,
            context,
            AuditAction::PasswordReset,
            &subject,
            json!({}),
        )?;
        Ok(user)
    })
}

/// Deletes links a day past their lifetime; returns how many. Not sooner: until then, someone
/// opening an old link is told it expired, not that it never existed.
pub fn purge_expired(conn: &mut PgConnection) -> QueryResult<usize> {
    let day_ago = Utc::now() - chrono::Duration::days(1);
    diesel::delete(password_resets::table.filter(password_resets::expires_at.le(day_ago)))
        .execute(conn)
}
