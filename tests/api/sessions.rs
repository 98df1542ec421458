//! The server-side session store (`domain::accounts::sessions`) on its own, against a real
//! database: one session per account, why a session ended (told once), timeouts, and a table
//! that holds no usable token.

use std::time::Duration;

use bookstore::{
    db::schema::{sessions as sessions_table, users},
    domain::accounts::sessions::{
        self, SessionEnd, SessionPolicy, SessionState, SessionToken, USER_ID_KEY,
    },
    ids::UserId,
};
use diesel::{Connection, PgConnection, prelude::*};

use crate::helpers::fresh_database;

const POLICY: SessionPolicy = SessionPolicy {
    lifetime: Duration::from_secs(12 * 3600),
    idle_timeout: Duration::from_secs(30 * 60),
};

fn connect() -> PgConnection {
    PgConnection::establish(&fresh_database()).expect("connecting")
}

fn alice(conn: &mut PgConnection) -> UserId {
    users::table
        .filter(users::login.eq("alice"))
        .select(users::id)
        .first(conn)
        .unwrap()
}

fn logged_in(user_id: UserId) -> SessionState {
    SessionState::from([(USER_ID_KEY.to_owned(), user_id.to_string())])
}

/// What the table keys a session by: SHA-256 of the token's bytes.
fn digest_of(token: &SessionToken) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(hex::decode(token.to_text()).unwrap()).to_vec()
}

fn is_live(conn: &mut PgConnection, token: &SessionToken) -> bool {
    sessions::load(conn, &POLICY, token).unwrap().is_some()
}

#[test]
fn a_log_in_ends_the_users_earlier_session_and_says_why_once() {
    let mut conn = connect();
    let user = alice(&mut conn);
    let first = sessions::create(&mut conn, &POLICY, &logged_in(user)).unwrap();
    let visitor = sessions::create(&mut conn, &POLICY, &SessionState::new()).unwrap();

    let second = sessions::create(&mut conn, &POLICY, &logged_in(user)).unwrap();

    assert!(!is_live(&mut conn, &first), "the earlier session is gone");
    assert!(is_live(&mut conn, &second));
    assert!(
        is_live(&mut conn, &visitor),
        "a visitor's session is nobody's log-in"
    );
    assert_eq!(sessions::count_for_user(&mut conn, user).unwrap(), 1);
    let (why, _) = sessions::take_end_of(&mut conn, &first).unwrap().unwrap();
    assert_eq!(why, SessionEnd::LoggedInElsewhere);
    assert_eq!(
        sessions::take_end_of(&mut conn, &first).unwrap(),
        None,
        "told once"
    );
    assert_eq!(sessions::take_end_of(&mut conn, &second).unwrap(), None);
}

#[test]
fn a_new_password_ends_every_session_with_its_own_reason() {
    let mut conn = connect();
    let user = alice(&mut conn);
    let token = sessions::create(&mut conn, &POLICY, &logged_in(user)).unwrap();

    let ended = conn
        .transaction(|conn| sessions::end_all_of_user(conn, user, SessionEnd::PasswordChanged))
        .unwrap();

    assert_eq!(ended, 1);
    assert!(!is_live(&mut conn, &token));
    let (why, _) = sessions::take_end_of(&mut conn, &token).unwrap().unwrap();
    assert_eq!(why, SessionEnd::PasswordChanged);
}

#[test]
fn an_idle_or_expired_session_is_no_session_and_is_purged() {
    let mut conn = connect();
    let idle = sessions::create(&mut conn, &POLICY, &SessionState::new()).unwrap();
    let live = sessions::create(&mut conn, &POLICY, &SessionState::new()).unwrap();
    diesel::update(sessions_table::table.find(digest_of(&idle)))
        .set(sessions_table::last_seen_at.eq(chrono::Utc::now() - chrono::Duration::hours(1)))
        .execute(&mut conn)
        .unwrap();

    assert!(!is_live(&mut conn, &idle), "sat idle past the timeout");
    assert_eq!(sessions::purge_expired(&mut conn, &POLICY).unwrap(), 1);
    assert!(is_live(&mut conn, &live), "the live one is left alone");
    assert_eq!(sessions::purge_past_lifetime(&mut conn).unwrap(), 0);
}

#[test]
fn an_update_never_brings_a_deleted_session_back() {
    let mut conn = connect();
    let token = sessions::create(&mut conn, &POLICY, &SessionState::new()).unwrap();
    sessions::delete(&mut conn, &token).unwrap();

    let state = SessionState::from([("cart_note".to_owned(), "\"x\"".to_owned())]);
    sessions::update(&mut conn, &token, &state).unwrap();

    assert!(!is_live(&mut conn, &token));
}

#[test]
fn the_table_holds_only_a_digest_of_the_token() {
    let mut conn = connect();
    let token = sessions::create(&mut conn, &POLICY, &SessionState::new()).unwrap();
    let text = token.to_text();
    assert_eq!(text.len(), 64, "256 bits as hex");
    assert_eq!(SessionToken::parse(&text), Some(token.clone()));
    assert_eq!(SessionToken::parse("not a token"), None);
    assert!(
        !format!("{token:?}").contains(&text),
        "no token in a log line"
    );

    let stored: Vec<Vec<u8>> = sessions_table::table
        .select(sessions_table::token_hash)
        .load(&mut conn)
        .unwrap();
    assert_eq!(stored, vec![digest_of(&token)]);
    assert!(
        stored.iter().all(|hash| hex::encode(hash) != text),
        "what is stored is no cookie that works"
    );
}
