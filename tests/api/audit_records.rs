//! The audit idiom on its own, against a real database: each domain function that makes a
//! change writes its record (who, action, subject, details) in the change's transaction, so
//! when the record cannot be written the change is undone too. The pages' side of the same
//! records is in `audit.rs`.

use std::time::Duration;

use bookstore::{
    audit::{Actor, AuditContext},
    db::schema::{api_tokens, audit_events, books, password_resets, programs, tasks, users},
    domain::{
        accounts::{
            self, Login, NewPassword,
            resets::{self, LinkIssuer, LinkState},
            throttle::ThrottlePolicy,
            tokens,
        },
        catalog::edit,
    },
    ids::{BookId, ProgramId, UserId},
    tasks::{
        bulk::{self, BulkAction},
        ops,
    },
};
use diesel::{Connection, PgConnection, prelude::*};
use serde_json::Value;

use crate::helpers::{TestApp, fresh_database, spawn_app};

fn connect() -> PgConnection {
    PgConnection::establish(&fresh_database()).expect("connecting")
}

fn boss() -> AuditContext {
    AuditContext::new(Actor::Staff("staff".into()), Some("192.0.2.7".into()))
}

fn command_line() -> AuditContext {
    AuditContext::new(Actor::Cli, None)
}

/// Every audit event after the first `skip`, as "actor: action subject details".
fn events(conn: &mut PgConnection, skip: usize) -> Vec<String> {
    let columns = (
        audit_events::actor,
        audit_events::action,
        audit_events::subject,
        audit_events::details,
    );
    let all: Vec<(String, String, String, Value)> = audit_events::table
        .order(audit_events::id)
        .select(columns)
        .load(conn)
        .unwrap();
    let line = |(actor, action, subject, details)| format!("{actor}: {action} {subject} {details}");
    all.into_iter().skip(skip).map(line).collect()
}

fn user_id(conn: &mut PgConnection, login: &str) -> UserId {
    let user = accounts::find_by_login(conn, login).unwrap();
    user.expect("a demo account").0.id
}

fn password_hash(conn: &mut PgConnection, login: &str) -> String {
    let row = users::table.filter(users::login.eq(login));
    row.select(users::password_hash).first(conn).unwrap()
}

fn login(text: &str) -> Login {
    Login::parse(text).unwrap()
}

fn new_password() -> NewPassword {
    NewPassword::parse("violet harbour lantern 42", &[]).unwrap()
}

#[test]
fn account_changes_are_recorded_with_who_made_them() {
    let mut conn = connect();
    let staff = user_id(&mut conn, "staff");

    let token = tokens::create(&mut conn, &boss(), staff, "nightly", None).unwrap();
    let id: bookstore::ids::ApiTokenId = api_tokens::table
        .select(api_tokens::id)
        .first(&mut conn)
        .unwrap();
    assert!(tokens::revoke(&mut conn, &boss(), staff, id).unwrap());
    assert!(
        !tokens::revoke(&mut conn, &boss(), staff, id).unwrap(),
        "once"
    );
    let link = resets::create_link(
        &mut conn,
        &command_line(),
        &login("alice"),
        LinkIssuer::CommandLine,
    );
    let link = link.unwrap();
    let visitor = AuditContext::new(Actor::Visitor, Some("192.0.2.8".into()));
    resets::use_link(&mut conn, &visitor, &link.token, &new_password()).unwrap();
    let promoted =
        accounts::create_or_promote_staff(&mut conn, &command_line(), &login("ALICE"), None);
    let (alice, created) = promoted.unwrap();
    assert!(!created);
    let policy = ThrottlePolicy::new(5, Duration::from_secs(900));
    let wrong = accounts::log_in(&mut conn, &policy, " alice ", "nope", "192.0.2.9", None);
    assert!(wrong.is_err());
    let password = "violet harbour lantern 42";
    let (_, device) =
        accounts::log_in(&mut conn, &policy, "alice", password, "192.0.2.9", None).unwrap();
    let newer = NewPassword::parse("copper meadow sparrow 77", &[]).unwrap();
    let address = "192.0.2.9";
    accounts::change_password(
        &mut conn,
        &policy,
        &alice,
        password,
        &newer,
        address,
        Some(&device),
    )
    .unwrap();

    let prefix = tokens::display_prefix(&token);
    let expected = [
        format!(
            r#"staff staff: token.created token nightly {{"expires_at":null,"prefix":"{prefix}"}}"#
        ),
        format!("staff staff: token.revoked token #{id} {{}}"),
        "command line: password.reset_issued user alice {}".to_owned(),
        "visitor: password.reset user alice {}".to_owned(),
        "command line: staff.granted user alice {}".to_owned(),
        "visitor: login.failed login alice {}".to_owned(),
        "staff alice: login.succeeded login alice {}".to_owned(),
        "staff alice: password.changed user alice {}".to_owned(),
    ];
    assert_eq!(events(&mut conn, 0), expected);
    let addresses: Vec<Option<String>> = audit_events::table
        .order(audit_events::id)
        .select(audit_events::address)
        .load(&mut conn)
        .unwrap();
    let at = |address: &str| Some(address.to_owned());
    assert_eq!(addresses[0], at("192.0.2.7"));
    assert_eq!(addresses[2], None, "the command line has no address");
    assert_eq!(addresses[3], at("192.0.2.8"));
    assert_eq!(addresses[7], at("192.0.2.9"));
}

/// Makes every audit insert fail, as a full disk or a broken log table would.
fn break_the_audit_log(conn: &mut PgConnection) {
    diesel::sql_query(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'the audit log is unavailable'; END $$",
    )
    .execute(conn)
    .unwrap();
    diesel::sql_query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    )
    .execute(conn)
    .unwrap();
}

#[test]
fn a_change_whose_record_cannot_be_written_is_undone() {
    let mut conn = connect();
    let (staff, alice) = (user_id(&mut conn, "staff"), user_id(&mut conn, "alice"));
    tokens::create(&mut conn, &boss(), staff, "kept", None).unwrap();
    let token: bookstore::ids::ApiTokenId = api_tokens::table
        .select(api_tokens::id)
        .first(&mut conn)
        .unwrap();
    let link = resets::create_link(&mut conn, &boss(), &login("alice"), LinkIssuer::StaffPage);
    let link = link.unwrap();
    let queued = ops::run_program_as(&mut conn, &boss(), "noop", None).unwrap();
    let book: BookId = books::table.select(books::id).first(&mut conn).unwrap();
    let hash = password_hash(&mut conn, "alice");
    let recorded = events(&mut conn, 0).len();
    break_the_audit_log(&mut conn);

    let made = tokens::create(&mut conn, &boss(), staff, "lost", None);
    assert!(made.is_err());
    assert!(tokens::revoke(&mut conn, &boss(), staff, token).is_err());
    let live: Vec<String> = api_tokens::table
        .filter(api_tokens::revoked_at.is_null())
        .select(api_tokens::name)
        .load(&mut conn)
        .unwrap();
    assert_eq!(live, ["kept"], "no token made, none revoked");

    assert!(edit::set_hidden(&mut conn, &boss(), book, true).is_err());
    let hidden = books::table.find(book).select(books::hidden);
    assert!(!hidden.first::<bool>(&mut conn).unwrap());

    let visitor = AuditContext::new(Actor::Visitor, None);
    assert!(resets::use_link(&mut conn, &visitor, &link.token, &new_password()).is_err());
    assert_eq!(password_hash(&mut conn, "alice"), hash);
    let state = resets::check(&mut conn, &link.token).unwrap();
    assert!(
        matches!(state, LinkState::Usable(_)),
        "still unused: {state:?}"
    );
    let issued = resets::create_link(&mut conn, &boss(), &login("alice"), LinkIssuer::StaffPage);
    assert!(issued.is_err());
    let links: i64 = password_resets::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(links, 1, "the earlier link is not replaced");
    let policy = ThrottlePolicy::new(5, Duration::from_secs(900));
    let alice_user = accounts::find_user(&mut conn, alice).unwrap().unwrap();
    let changed = accounts::change_password(
        &mut conn,
        &policy,
        &alice_user,
        "alice-reads-books",
        &new_password(),
        "192.0.2.9",
        None,
    );
    assert!(changed.is_err());
    assert_eq!(password_hash(&mut conn, "alice"), hash);
    let promoted = accounts::create_or_promote_staff(
        &mut conn,
        &command_line(),
        &login("boss"),
        Some(&new_password()),
    );
    assert!(promoted.is_err());
    assert!(
        accounts::find_by_login(&mut conn, "boss")
            .unwrap()
            .is_none()
    );

    let noop: ProgramId = programs::table
        .filter(programs::name.eq("noop"))
        .select(programs::id)
        .first(&mut conn)
        .unwrap();
    let configured =
        ops::configure_program(&mut conn, &boss(), noop, Some("every 5 minutes"), false);
    assert!(configured.is_err());
    assert!(ops::set_paused(&mut conn, &boss(), "noop", true).is_err());
    let settings = programs::table.find(noop).select((
        programs::schedule,
        programs::enabled,
        programs::paused,
    ));
    let settings: (Option<String>, bool, bool) = settings.first(&mut conn).unwrap();
    assert_eq!(settings, (None, true, false), "settings unchanged");
    assert!(ops::run_program_as(&mut conn, &boss(), "noop", None).is_err());
    assert!(bulk::bulk(&mut conn, &boss(), BulkAction::Cancel, &[queued]).is_err());
    let statuses: Vec<String> = tasks::table.select(tasks::status).load(&mut conn).unwrap();
    assert_eq!(statuses, ["scheduled"], "no task queued, none cancelled");

    assert_eq!(events(&mut conn, 0).len(), recorded);
}

/// (actor, action, subject, details) of every event about books, oldest first.
async fn book_events(app: &TestApp) -> Vec<String> {
    app.db(|conn| {
        events(conn, 0)
            .into_iter()
            .filter(|line| line.contains(": book."))
            .collect()
    })
    .await
}

#[tokio::test]
async fn book_edits_from_the_staff_pages_are_recorded_with_what_changed() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let fields = [
        ("title", "Dune"),
        ("authors", "Frank Herbert"),
        ("price", "9.99"),
        ("stock", "3"),
    ];
    let created = app
        .submit("/admin/books/new", "/admin/books/new", &fields)
        .await;
    assert_eq!(created.status(), 303);
    let book_path = created.headers()["location"].to_str().unwrap().to_owned();
    let id = book_path.trim_start_matches("/books/").to_owned();
    let edit_path = format!("/admin{book_path}/edit");
    let fields = [
        ("title", "Dune Messiah"),
        ("authors", "Frank Herbert"),
        ("price", "12.50"),
        ("stock", "4"),
        ("stock_was", "3"),
    ];
    let saved = app.submit(&edit_path, &edit_path, &fields).await;
    assert_eq!(saved.status(), 303);
    for verb in ["hide", "unhide"] {
        let path = format!("/admin/books/{id}/{verb}");
        let done = app.submit("/admin/books", &path, &[]).await;
        assert_eq!(done.status(), 303, "{verb}");
    }

    let expected = [
        format!(
            r#"staff staff: book.created book {id} {{"price":"9.99","stock":3,"title":"Dune"}}"#
        ),
        format!(
            r#"staff staff: book.edited book {id} {{"price":"12.50","stock":4,"title":"Dune Messiah"}}"#
        ),
        format!(r#"staff staff: book.hidden book {id} {{"title":"Dune Messiah"}}"#),
        format!(r#"staff staff: book.unhidden book {id} {{"title":"Dune Messiah"}}"#),
    ];
    assert_eq!(book_events(&app).await, expected);
}
