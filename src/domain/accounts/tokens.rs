//! Personal API tokens: created and revoked by their owner, shown once, stored hashed, told
//! apart by their first characters, optionally expiring.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use sha2::{Digest, Sha256};

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::api_tokens,
    domain::accounts::{User, find_user},
    ids::{ApiTokenId, UserId},
};

/// Every token starts with this, so leaked ones are easy to recognise.
const PREFIX: &str = "bks_";

/// How many of a token's first characters are kept in clear to tell tokens apart: `bks_` and
/// 8 hex digits, 32 of its 244 random bits (the database checks the shape).
const DISPLAY_PREFIX_LEN: usize = PREFIX.len() + 8;

/// The furthest ahead an expiry date may be: a forgotten token should not outlive its script
/// by years.
pub const MAX_LIFETIME_DAYS: u64 = 365;

/// The unique index on live names (migration 000015), told apart from the token hash's.
const LIVE_NAME_INDEX: &str = "api_tokens_live_name_key";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A live token as its owner sees it on the list.
#[derive(Debug, Clone, Queryable)]
pub struct TokenInfo {
    pub id: ApiTokenId,
    /// `None` for tokens made before prefixes were kept.
    pub display_prefix: Option<String>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token name: trimmed, 1-100 characters.
pub fn parse_name(input: &str) -> Result<String, String> {
    let name = crate::domain::collapse_spaces(input);
    match name.chars().count() {
        0 => Err("Give the token a name, like \"nightly report script\".".into()),
        1..=100 => Ok(name),
        _ => Err("A token name has at most 100 characters.".into()),
    }
}

/// An optional expiry typed as a date (`2027-01-31`): the token stops working at 00:00 UTC
/// that day, so it must be tomorrow at the earliest and at most [`MAX_LIFETIME_DAYS`] ahead.
/// Empty means it never expires. `today` is the current UTC date, passed in for the tests.
pub fn parse_expiry(input: &str, today: NaiveDate) -> Result<Option<DateTime<Utc>>, String> {
    let text = input.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let latest = today + Days::new(MAX_LIFETIME_DAYS);
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        "The expiry is a date like 2027-01-31, or empty for a token that does not expire."
            .to_owned()
    })?;
    if day <= today {
        return Err(format!(
            "The expiry date must be in the future: {} at the earliest.",
            today + Days::new(1)
        ));
    }
    if day > latest {
        return Err(format!(
            "A token expires at most a year ahead: {latest} at the latest."
        ));
    }
    Ok(Some(day.and_time(NaiveTime::MIN).and_utc()))
}

/// The characters of `token` shown on the list.
pub fn display_prefix(token: &str) -> &str {
    &token[..DISPLAY_PREFIX_LEN]
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("You already have a token named “{0}”: choose another name, or revoke that one.")]
    NameTaken(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Creates a token for `user_id`, made by `context`, and records it; returns the token in
/// clear, the only time it exists outside the caller. The unique index on live names decides
/// between two creations of the same name, so there is no check before the insert to race
/// with: a refused name rolls back the whole creation.
pub fn create(
    conn: &mut PgConnection,
    context: &AuditContext,
    user_id: UserId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, CreateError> {
    conn.transaction(|conn| {
        let token = insert_token(conn, user_id, name, expires_at)?;
        let details = serde_json::json!({
            "prefix": display_prefix(&token),
            "expires_at": expires_at,
        });
        let subject = format!("token {name}");
        audit::record(conn, context, AuditAction::TokenCreated, &subject, details)?;
        Ok(token)
    })
}

fn insert_token(
    conn: &mut PgConnection,
    user_id: UserId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, CreateError> {
    // Two uuid v4 are 244 bits from the operating system's random source; the first 8 hex
    // digits of a v4 uuid are all random, so prefixes differ as much as they can.
    let token = format!(
        "{PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    // An expired token is off the list but still in the unique index (its predicate cannot
    // mention now()): retire the owner's expired tokens, as revoked when they expired, so an
    // expired name can be used again.
    diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null())
            .filter(api_tokens::expires_at.le(diesel::dsl::now)),
    )
    .set(api_tokens::revoked_at.eq(api_tokens::expires_at))
    .execute(conn)?;
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(hash(&token)),
            api_tokens::display_prefix.eq(display_prefix(&token)),
            api_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map_err(|err| match err {
            diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some(LIVE_NAME_INDEX) =>
            {
                CreateError::NameTaken(name.to_owned())
            }
            other => other.into(),
        })?;
    Ok(token)
}

/// A token that still works: neither revoked nor expired (what the list shows, what a revoke
/// may find and what authenticates, all by this one rule).
#[diesel::dsl::auto_type]
fn is_live() -> _ {
    api_tokens::revoked_at.is_null().and(
        api_tokens::expires_at
            .is_null()
            .or(api_tokens::expires_at.gt(diesel::dsl::now)),
    )
}

/// The user's live tokens (neither revoked nor expired), newest first.
pub fn list(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Vec<TokenInfo>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(is_live())
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .select(TOKEN_INFO_COLUMNS)
        .load(conn)
}

/// One of the user's live tokens, for the revoke confirmation.
pub fn find(
    conn: &mut PgConnection,
    user_id: UserId,
    token_id: ApiTokenId,
) -> QueryResult<Option<TokenInfo>> {
    api_tokens::table
        .find(token_id)
        .filter(api_tokens::user_id.eq(user_id))
        .filter(is_live())
        .select(TOKEN_INFO_COLUMNS)
        .first(conn)
        .optional()
}

const TOKEN_INFO_COLUMNS: (
    api_tokens::id,
    api_tokens::display_prefix,
    api_tokens::name,
    api_tokens::created_at,
    api_tokens::last_used_at,
    api_tokens::expires_at,
) = (
    api_tokens::id,
    api_tokens::display_prefix,
    api_tokens::name,
    api_tokens::created_at,
    api_tokens::last_used_at,
    api_tokens::expires_at,
);

/// Revokes one of the user's own tokens, by `context`, and records it; `false` (and nothing
/// recorded) if there is no such token of theirs that is not already revoked.
pub fn revoke(
    conn: &mut PgConnection,
    context: &AuditContext,
    user_id: UserId,
    token_id: ApiTokenId,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let revoked = diesel::update(
            api_tokens::table
                .find(token_id)
                .filter(api_tokens::user_id.eq(user_id))
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)?;
        if revoked == 1 {
            let subject = format!("token #{token_id}");
            let details = serde_json::json!({});
            audit::record(conn, context, AuditAction::TokenRevoked, &subject, details)?;
        }
        Ok(revoked == 1)
    })
}

/// The owner of a live token (neither revoked nor expired), and the token's name.
pub fn authenticate(conn: &mut PgConnection, token: &str) -> QueryResult<Option<(User, String)>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let owner: Option<(UserId, String)> = diesel::update(
        api_tokens::table
            .filter(api_tokens::token_hash.eq(hash(token)))
            .filter(is_live()),
    )
    .set(api_tokens::last_used_at.eq(diesel::dsl::now))
    .returning((api_tokens::user_id, api_tokens::name))
    .get_result(conn)
    .optional()?;
    match owner {
        Some((user_id, name)) => Ok(find_user(conn, user_id)?.map(|user| (user, name))),
        None => Ok(None),
    }
}

/// How long revoked and expired tokens are kept (for "why does my script get 401?") before
/// housekeeping deletes them.
const KEEP_DEAD_DAYS: i64 = 90;

/// Deletes tokens revoked or expired more than [`KEEP_DEAD_DAYS`] ago; returns how many.
pub fn purge_dead(conn: &mut PgConnection) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::days(KEEP_DEAD_DAYS);
    diesel::delete(
        api_tokens::table.filter(
            api_tokens::revoked_at
                .lt(cutoff)
                .or(api_tokens::expires_at.lt(cutoff)),
        ),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn an_expiry_is_an_optional_future_date_within_a_year() {
        assert_eq!(parse_expiry("  ", today()), Ok(None));
        let tomorrow = parse_expiry("2026-11-26", today()).unwrap().unwrap();
        assert_eq!(tomorrow.to_rfc3339(), "2026-11-26T00:00:00+00:00");
        assert!(parse_expiry("2027-11-25", today()).unwrap().is_some());
        for (input, says) in [
            ("2026-11-25", "in the future: 2026-11-26"),
            ("2020-01-01", "in the future"),
            ("2027-11-26", "at most a year ahead: 2027-11-25"),
            ("25/11/2027", "a date like"),
            ("tomorrow", "a date like"),
        ] {
            let message = parse_expiry(input, today()).unwrap_err();
            assert!(message.contains(says), "{input}: {message}");
        }
    }

    #[test]
    fn the_display_prefix_is_the_start_of_the_token() {
        assert_eq!(display_prefix("bks_1a2b3c4d5e6f"), "bks_1a2b3c4d");
    }
}
