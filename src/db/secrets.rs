//! Secrets every app node must share, kept in the database so nodes need no shared files.

use actix_web::cookie::Key;
use diesel::prelude::*;

use crate::db::schema::app_secrets;

const COOKIE_KEY: &str = "session_cookie_key";

/// The key that signs session cookies; the first node to ask creates it.
pub fn cookie_key(conn: &mut PgConnection) -> QueryResult<Key> {
    let candidate = Key::generate();
    diesel::insert_into(app_secrets::table)
        .values((
            app_secrets::name.eq(COOKIE_KEY),
            app_secrets::value.eq(candidate.master()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    let stored: Vec<u8> = app_secrets::table
        .find(COOKIE_KEY)
        .select(app_secrets::value)
        .first(conn)?;
    Ok(Key::try_from(stored.as_slice()).unwrap_or(candidate))
}
