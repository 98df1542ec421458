//! Personal API tokens: created and revoked by their owner, shown once, stored hashed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::{
    db::schema::api_tokens,
    domain::accounts::{User, find_user},
};

/// Every token starts with this, so leaked ones are easy to recognise.
const PREFIX: &str = "bks_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Queryable)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
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

/// Creates a token; returns it in clear, the only time it exists outside the caller.
pub fn create(conn: &mut PgConnection, user_id: i64, name: &str) -> QueryResult<String> {
    // Two uuid v4 are 244 bits from the operating system's random source.
    let token = format!(
        "{PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(hash(&token)),
        ))
        .execute(conn)?;
    Ok(token)
}

pub fn list(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<TokenInfo>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::created_at.desc())
        .select((
            api_tokens::id,
            api_tokens::name,
            api_tokens::created_at,
            api_tokens::last_used_at,
            api_tokens::revoked_at,
        ))
        .load(conn)
}

/// Revokes one of the user's own tokens; `false` if there is no such live token of theirs.
pub fn revoke(conn: &mut PgConnection, user_id: i64, token_id: i64) -> QueryResult<bool> {
    let revoked = diesel::update(
        api_tokens::table
            .find(token_id)
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(diesel::dsl::now))
    .execute(conn)?;
    Ok(revoked == 1)
}

/// The owner of a live token, and the token's name.
pub fn authenticate(conn: &mut PgConnection, token: &str) -> QueryResult<Option<(User, String)>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let owner: Option<(i64, String)> = diesel::update(
        api_tokens::table
            .filter(api_tokens::token_hash.eq(hash(token)))
            .filter(api_tokens::revoked_at.is_null()),
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
