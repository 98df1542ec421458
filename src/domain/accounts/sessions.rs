//! Server-side sessions. The browser holds only a random token; the state, the user and the
//! expiry live in the `sessions` table, so any app node can check any session, and logging in
//! can end a user's other sessions.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, upsert::excluded};

use crate::ids::UserId;
use crate::{
    config::Config,
    db::schema::{ended_sessions, sessions, users},
};

/// The session-state key holding the logged-in user's id (as JSON, like every value).
pub const USER_ID_KEY: &str = "user_id";

/// How long a session may live, and how long it may sit unused.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub lifetime: Duration,
    pub idle_timeout: Duration,
}

impl From<&Config> for SessionPolicy {
    fn from(config: &Config) -> SessionPolicy {
        SessionPolicy {
            lifetime: Duration::from_secs(config.session_lifetime_hours * 3600),
            idle_timeout: Duration::from_secs(config.session_idle_minutes * 60),
        }
    }
}

/// How often `last_seen_at` is written: sliding the idle timeout on every request would turn
/// every page view into a write.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

pub type SessionState = HashMap<String, String>;

fn user_id_of(state: &SessionState) -> Option<UserId> {
    state
        .get(USER_ID_KEY)
        .and_then(|value| serde_json::from_str(value).ok())
}

fn to_json(state: &SessionState) -> serde_json::Value {
    serde_json::to_value(state).expect("a map of strings is JSON")
}

/// A session token: 256 random bits, which the browser's cookie holds as 64 hex digits. The
/// database keeps only its SHA-256 (`token_hash`), so reading the sessions table yields no
/// cookie that works.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken([u8; 32]);

impl SessionToken {
    pub fn generate() -> SessionToken {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        SessionToken(bytes)
    }

    /// A cookie's token; `None` for anything that is not one of ours.
    pub fn parse(text: &str) -> Option<SessionToken> {
        let bytes = hex::decode(text).ok()?;
        Some(SessionToken(bytes.try_into().ok()?))
    }

    pub fn to_text(&self) -> String {
        hex::encode(self.0)
    }

    /// What the database keeps (also of password-reset tokens, which are the same kind).
    pub(crate) fn digest(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.0).to_vec()
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

/// The state of a live session; `None` when it does not exist, has expired or sat idle too
/// long. Slides the idle timeout.
pub fn load(
    conn: &mut PgConnection,
    policy: &SessionPolicy,
    token: &SessionToken,
) -> QueryResult<Option<SessionState>> {
    let now = Utc::now();
    let row: Option<(serde_json::Value, DateTime<Utc>)> = sessions::table
        .find(token.digest())
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - policy.idle_timeout))
        .select((sessions::state, sessions::last_seen_at))
        .first(conn)
        .optional()?;
    let Some((state, last_seen_at)) = row else {
        return Ok(None);
    };
    if last_seen_at < now - TOUCH_INTERVAL {
        diesel::update(sessions::table.find(token.digest()))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    // A state we did not write ourselves is treated as no session at all.
    Ok(serde_json::from_value(state).ok())
}

/// Stores a new session under a fresh random token. A session that belongs to a user is a
/// log-in: in the same transaction, every earlier session of that user is deleted. The user
/// row is locked first so that two simultaneous log-ins cannot both survive.
pub fn create(
    conn: &mut PgConnection,
    policy: &SessionPolicy,
    state: &SessionState,
) -> QueryResult<SessionToken> {
    let token = SessionToken::generate();
    let user_id = user_id_of(state);
    let now = Utc::now();
    conn.transaction(|conn| {
        if let Some(user_id) = user_id {
            users::table
                .find(user_id)
                .select(users::id)
                .for_update()
                .first::<UserId>(conn)?;
            end_all_of_user(conn, user_id, SessionEnd::LoggedInElsewhere)?;
        }
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(token.digest()),
                sessions::user_id.eq(user_id),
                sessions::state.eq(to_json(state)),
                sessions::created_at.eq(now),
                sessions::last_seen_at.eq(now),
                sessions::expires_at.eq(now + policy.lifetime),
            ))
            .execute(conn)
    })?;
    Ok(token)
}

/// Replaces the state of a live session. A session that was deleted meanwhile (its user logged
/// in elsewhere, or out) stays deleted: nothing is resurrected. The user never changes here:
/// a log-in always creates a new session.
pub fn update(
    conn: &mut PgConnection,
    token: &SessionToken,
    state: &SessionState,
) -> QueryResult<()> {
    diesel::update(
        sessions::table
            .find(token.digest())
            .filter(sessions::expires_at.gt(Utc::now())),
    )
    .set((
        sessions::state.eq(to_json(state)),
        sessions::last_seen_at.eq(Utc::now()),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut PgConnection, token: &SessionToken) -> QueryResult<()> {
    diesel::delete(sessions::table.find(token.digest())).execute(conn)?;
    Ok(())
}

/// Deletes the reasons kept for ended sessions once those sessions would have expired anyway.
pub fn purge_session_ends(conn: &mut PgConnection, policy: &SessionPolicy) -> QueryResult<usize> {
    diesel::delete(
        ended_sessions::table.filter(ended_sessions::ended_at.le(Utc::now() - policy.lifetime)),
    )
    .execute(conn)
}

/// Deletes sessions past their lifetime or idle timeout; returns how many.
pub fn purge_expired(conn: &mut PgConnection, policy: &SessionPolicy) -> QueryResult<usize> {
    let now = Utc::now();
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(now - policy.idle_timeout)),
        ),
    )
    .execute(conn)
}

/// Deletes sessions past their absolute lifetime (the idle timeout is the app's setting; see
/// `purge_expired`).
pub fn purge_past_lifetime(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(Utc::now()))).execute(conn)
}

/// Why a session ended before its time; the browser that held it is told on its next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// One session per account: a log-in elsewhere ends the earlier one.
    LoggedInElsewhere,
    /// A changed or reset password ends every session.
    PasswordChanged,
}

impl SessionEnd {
    fn key(self) -> &'static str {
        match self {
            SessionEnd::LoggedInElsewhere => "logged_in_elsewhere",
            SessionEnd::PasswordChanged => "password_changed",
        }
    }

    fn from_key(key: &str) -> Option<SessionEnd> {
        [SessionEnd::LoggedInElsewhere, SessionEnd::PasswordChanged]
            .into_iter()
            .find(|end| end.key() == key)
    }
}

/// Ends every session of a user, keeping why under each token's hash. Callers run it in a
/// transaction, after locking or updating the user row, the order [`create`] takes too.
pub fn end_all_of_user(
    conn: &mut PgConnection,
    user_id: UserId,
    reason: SessionEnd,
) -> QueryResult<usize> {
    let ended: Vec<Vec<u8>> = diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
        .returning(sessions::token_hash)
        .get_results(conn)?;
    let now = Utc::now();
    let rows: Vec<_> = ended
        .iter()
        .map(|hash| {
            (
                ended_sessions::token_hash.eq(hash),
                ended_sessions::reason.eq(reason.key()),
                ended_sessions::ended_at.eq(now),
            )
        })
        .collect();
    // A token ended before (a session put back by hand) takes the latest reason.
    diesel::insert_into(ended_sessions::table)
        .values(&rows)
        .on_conflict(ended_sessions::token_hash)
        .do_update()
        .set((
            ended_sessions::reason.eq(excluded(ended_sessions::reason)),
            ended_sessions::ended_at.eq(excluded(ended_sessions::ended_at)),
        ))
        .execute(conn)?;
    Ok(ended.len())
}

/// Why the session of `token` was ended, and when; the record is used up (told once).
pub fn take_end_of(
    conn: &mut PgConnection,
    token: &SessionToken,
) -> QueryResult<Option<(SessionEnd, DateTime<Utc>)>> {
    let row: Option<(String, DateTime<Utc>)> =
        diesel::delete(ended_sessions::table.find(token.digest()))
            .returning((ended_sessions::reason, ended_sessions::ended_at))
            .get_result(conn)
            .optional()?;
    Ok(row.and_then(|(reason, at)| Some((SessionEnd::from_key(&reason)?, at))))
}

/// When a session started, was last used (to the minute: see `TOUCH_INTERVAL`) and ends.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The user's live session. Logging in deletes every earlier session of the user ([`create`]),
/// so there is at most one: asked from a page the user is looking at, it is that page's.
pub fn current_of(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Option<SessionInfo>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(Utc::now()))
        .order(sessions::created_at.desc())
        .select((
            sessions::created_at,
            sessions::last_seen_at,
            sessions::expires_at,
        ))
        .first::<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>(conn)
        .optional()
        .map(|row| {
            row.map(|(created_at, last_seen_at, expires_at)| SessionInfo {
                created_at,
                last_seen_at,
                expires_at,
            })
        })
}

/// How many live sessions a user has (for tests and the admin pages).
pub fn count_for_user(conn: &mut PgConnection, user_id: UserId) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(conn)
}
