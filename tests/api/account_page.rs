//! `/account` (name, password, session, orders) and password reset links, as customers and
//! staff use them.

use bookstore::{
    db::schema::{books, password_resets, sessions, users},
    domain::accounts::{Login, resets},
};
use diesel::prelude::*;

use crate::helpers::{TestApp, assert_is_redirect_to, csrf_token_in, spawn_app, staff_acting};

const ALICE: (&str, &str) = ("alice", "alice-reads-books");
const NEW_PASSWORD: &str = "violet harbour lantern 42";

/// A row of `sessions`, copied out and put back: (token hash, user, state, expiry).
type SessionRow = (
    Vec<u8>,
    Option<i64>,
    serde_json::Value,
    chrono::DateTime<chrono::Utc>,
);

async fn password_hash_of(app: &TestApp, login: &'static str) -> String {
    app.db(move |conn| {
        users::table
            .filter(users::login.eq(login))
            .select(users::password_hash)
            .first(conn)
            .unwrap()
    })
    .await
}

async fn sessions_of(app: &TestApp, login: &'static str) -> i64 {
    app.db(move |conn| {
        sessions::table
            .inner_join(users::table)
            .filter(users::login.eq(login))
            .count()
            .get_result(conn)
            .unwrap()
    })
    .await
}

fn is_logged_in(page: &str) -> bool {
    page.contains("Log out")
}

async fn change_password(app: &TestApp, current: &str, new: &str) -> reqwest::Response {
    let fields = [
        ("current_password", current),
        ("new_password", new),
        ("new_password_confirmation", new),
    ];
    app.submit("/account", "/account/password", &fields).await
}

/// `/password-reset/<64 hex digits>`, cut out of a page or the CLI's output.
fn reset_path_in(text: &str) -> String {
    let start = text.find("/password-reset/").expect("a reset link");
    text[start..start + "/password-reset/".len() + 64].to_owned()
}

/// Fills in the reset form at `path` (taking its CSRF token) with `password` twice.
#[tokio::test]
async fn anonymous_visitors_are_sent_to_log_in_and_the_pages_are_not_stored() {
    let app = spawn_app().await;

    let account = app.get("/account").await;
    let reset = app
        .get(&format!("/password-reset/{}", "ab".repeat(32)))
        .await;

    assert_is_redirect_to(&account, "/login?next=%2Faccount");
    assert_eq!(account.headers()["cache-control"], "no-store");
    assert_eq!(reset.status(), 404);
    assert_eq!(reset.headers()["cache-control"], "no-store");
    app.log_in_as(ALICE.0, ALICE.1).await;
    let home = app.page("/").await;
    assert!(home.contains("href=\"/account\""), "the header links to it");
}

#[tokio::test]
async fn a_customer_changes_their_name() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    let changed = app
        .submit(
            "/account",
            "/account/name",
            &[("display_name", "  Alice   Cooper ")],
        )
        .await;
    let empty = app
        .submit("/account", "/account/name", &[("display_name", "   ")])
        .await;
    let long = app
        .submit(
            "/account",
            "/account/name",
            &[("display_name", &"n".repeat(101))],
        )
        .await;

    assert_is_redirect_to(&changed, "/account");
    assert_eq!(empty.status(), 422);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("Tell us the name to show.")
    );
    assert_eq!(long.status(), 422);
    assert!(
        long.text()
            .await
            .unwrap()
            .contains("at most 100 characters")
    );
    let page = app.page("/account").await;
    assert!(
        page.contains("value=\"Alice Cooper\""),
        "the name, spaces collapsed"
    );
    assert!(
        app.page("/").await.contains("Alice Cooper"),
        "the header shows the new name"
    );
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing_and_counts_as_a_guess() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    let before = password_hash_of(&app, "alice").await;

    let wrong = change_password(&app, "not her password", NEW_PASSWORD).await;

    assert_eq!(wrong.status(), 422);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That is not your current password. Nothing was changed.")
    );
    assert_eq!(password_hash_of(&app, "alice").await, before);
    // The log-in throttle counts it: guesses in a row soon have to wait (1 s, 2 s, 4 s ...).
    let mut throttled = None;
    for _ in 0..5 {
        let response = change_password(&app, "still not it", NEW_PASSWORD).await;
        if response.status() == 429 {
            throttled = Some(response.text().await.unwrap());
            break;
        }
    }
    let throttled = throttled.expect("the guesses were slowed down");
    assert!(throttled.contains("Too many wrong passwords from here"));
    assert_eq!(password_hash_of(&app, "alice").await, before);
    assert!(is_logged_in(&app.page("/account").await), "still logged in");
}

#[tokio::test]
async fn a_weak_or_mismatched_new_password_is_refused_with_advice() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    let before = password_hash_of(&app, "alice").await;

    let weak = change_password(&app, ALICE.1, "password").await;
    let own_login = change_password(&app, ALICE.1, "alice2026").await;
    let mismatched = app
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", ALICE.1),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirmation", "something else entirely"),
            ],
        )
        .await;

    for response in [weak, own_login] {
        assert_eq!(response.status(), 422);
        let page = response.text().await.unwrap();
        assert!(
            page.contains("This password is too easy to guess"),
            "zxcvbn's advice"
        );
        assert!(!page.contains(ALICE.1), "passwords are never echoed");
    }
    assert_eq!(mismatched.status(), 422);
    assert!(mismatched.text().await.unwrap().contains("do not match"));
    assert_eq!(password_hash_of(&app, "alice").await, before);
}

#[tokio::test]
async fn the_password_form_leaves_the_address_at_the_account_page() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    // A refused change is shown again at the form's address; going back to that address (the
    // history, a reload after the page was left) lands on the account page.
    let refused = change_password(&app, ALICE.1, "password").await;
    assert_eq!(refused.status(), 422);
    assert_is_redirect_to(&app.get("/account/password").await, "/account");
    assert_is_redirect_to(&app.get("/account/name").await, "/account");

    // A change is a redirect after the POST: the browser ends up on /account, with the message.
    let changed = change_password(&app, ALICE.1, NEW_PASSWORD).await;
    assert_is_redirect_to(&changed, "/account");
    let page = app.page("/account").await;
    assert!(page.contains("Your password is changed."), "{page}");
}

#[tokio::test]
async fn a_new_password_ends_the_other_sessions_and_renews_this_one() {
    let app = spawn_app().await;
    let (here, elsewhere) = (app.another_browser(), app.another_browser());
    // Logging in deletes every earlier session of the user, so the pages alone cannot make
    // two live sessions of one account. Log in elsewhere, keep that row, log in here (which
    // deletes it), then put it back: a session that outlived the rule (made before it, or by
    // a future "remember me") is what "every other session ends" must catch.
    elsewhere.log_in_as(ALICE.0, ALICE.1).await;
    let kept: Vec<SessionRow> = app
        .db(|conn| {
            sessions::table
                .filter(sessions::user_id.is_not_null())
                .select((
                    sessions::token_hash,
                    sessions::user_id,
                    sessions::state,
                    sessions::expires_at,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let login = here.log_in(ALICE.0, ALICE.1).await;
    let old_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.contains("bookstore_session="))
        .expect("a session cookie")
        .to_owned();
    app.db(move |conn| {
        for (token_hash, user_id, state, expires_at) in kept {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::token_hash.eq(token_hash),
                    sessions::user_id.eq(user_id),
                    sessions::state.eq(state),
                    sessions::expires_at.eq(expires_at),
                ))
                .execute(conn)
                .unwrap();
        }
    })
    .await;
    assert!(
        is_logged_in(&elsewhere.page("/").await),
        "two live sessions"
    );
    assert_eq!(sessions_of(&app, "alice").await, 2);

    let changed = change_password(&here, ALICE.1, NEW_PASSWORD).await;

    assert_is_redirect_to(&changed, "/account");
    let page = here.page("/account").await;
    assert!(is_logged_in(&page), "this session goes on");
    assert!(page.contains("Every other session of your account has ended"));
    assert!(page.contains("logging in on another browser or device ends this one"));
    let ended = elsewhere.page("/").await;
    assert!(!is_logged_in(&ended), "the other one ended");
    assert!(
        ended.contains("You were logged out because this account&#39;s password was changed at ")
            || ended
                .contains("You were logged out because this account's password was changed at "),
        "and is told why: {ended}"
    );
    assert_eq!(sessions_of(&app, "alice").await, 1);
    // This browser got a new token: its old cookie opens nothing.
    let cookie = old_cookie.split(';').next().unwrap().to_owned();
    let stale = reqwest::Client::new()
        .get(format!("{}/", app.address))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(!is_logged_in(&stale.text().await.unwrap()));
    // In this order: a failed log-in first would make the next one from here wait a second.
    app.another_browser().log_in_as(ALICE.0, NEW_PASSWORD).await;
    assert_eq!(
        app.another_browser()
            .log_in(ALICE.0, ALICE.1)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn the_order_history_lists_each_order_with_its_status() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    assert!(
        app.page("/account")
            .await
            .contains("You have not ordered anything yet")
    );
    let book: i64 = app
        .db(|conn| {
            let id = books::table
                .select(books::id)
                .order(books::id)
                .first(conn)
                .unwrap();
            diesel::update(books::table.find(id))
                .set(books::stock.eq(5))
                .execute(conn)
                .unwrap();
            id
        })
        .await;
    let book_path = format!("/books/{book}");
    app.submit(
        &book_path,
        "/cart/items",
        &[("book_id", &book.to_string()), ("quantity", "1")],
    )
    .await;
    let cart = app.page("/cart").await;
    let key = cart
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let placed = app
        .post_form(
            "/checkout",
            &[
                ("csrf_token", &csrf_token_in(&cart)),
                ("idempotency_key", &key),
            ],
        )
        .await;
    let order_path = placed.headers()["location"].to_str().unwrap().to_owned();

    let page = app.page("/account").await;

    assert!(page.contains(&format!("href=\"{order_path}\"")), "{page}");
    assert!(page.contains("<span class=\"status\">Placed</span>"));
    assert!(!page.contains("You have not ordered anything yet"));
}

fn run_reset_password(app: &TestApp, login: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .args(["reset-password", login])
        .env("DATABASE_URL", &app.database_url)
        .env("BOOKSTORE_ADDR", "127.0.0.1:9999")
        .env("BOOKSTORE_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_link_from_the_cli_sets_the_password_once_and_ends_every_session() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    let printed = run_reset_password(&app, "ALICE");
    let unknown = run_reset_password(&app, "ghost");

    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let stdout = String::from_utf8(printed.stdout).unwrap();
    assert!(
        stdout.contains("http://127.0.0.1:9999/password-reset/"),
        "{stdout}"
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account with the login"));
    let path = reset_path_in(&stdout);
    let visitor = app.another_browser();
    let form = visitor.page(&path).await;
    assert!(form.contains("Choose a new password") && form.contains("alice"));
    let weak = visitor.use_reset_link(&path, "password").await;
    assert_eq!(weak.status(), 422);
    assert!(
        weak.text()
            .await
            .unwrap()
            .contains("This password is too easy to guess")
    );

    let used = visitor.use_reset_link(&path, NEW_PASSWORD).await;

    assert_is_redirect_to(&used, "/login");
    assert!(
        visitor
            .page("/login")
            .await
            .contains("Log in with the new password")
    );
    assert_eq!(sessions_of(&app, "alice").await, 0, "every session ended");
    assert!(!is_logged_in(&app.page("/").await));
    app.log_in_as(ALICE.0, NEW_PASSWORD).await;
    assert_eq!(
        app.another_browser()
            .log_in(ALICE.0, ALICE.1)
            .await
            .status(),
        401
    );
    let hash = password_hash_of(&app, "alice").await;
    let again = visitor.get(&path).await;
    assert_eq!(again.status(), 410);
    assert!(again.text().await.unwrap().contains("used already"));
    let replay = visitor
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf_token_in(&form)),
                ("password", "another fine passphrase 7"),
                ("password_confirmation", "another fine passphrase 7"),
            ],
        )
        .await;
    assert_eq!(replay.status(), 410, "the link works once");
    assert_eq!(password_hash_of(&app, "alice").await, hash);
}

#[tokio::test]
async fn of_two_simultaneous_uses_of_a_link_one_wins() {
    let app = spawn_app().await;
    let link = app
        .db(|conn| {
            resets::create_link(
                conn,
                &staff_acting(),
                &Login::parse("alice").unwrap(),
                resets::LinkIssuer::StaffPage,
            )
            .unwrap()
        })
        .await;
    let path = link.path();
    let (first, second) = (app.another_browser(), app.another_browser());
    let (a, b) = (first.page(&path).await, second.page(&path).await);
    let post = |browser: TestApp, page: String, password: &'static str| {
        let path = path.clone();
        async move {
            let fields = [
                ("csrf_token", csrf_token_in(&page)),
                ("password", password.to_owned()),
                ("password_confirmation", password.to_owned()),
            ];
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post_form(&path, &fields).await.status().as_u16()
        }
    };

    let (one, other) = tokio::join!(
        post(first, a, NEW_PASSWORD),
        post(second, b, "another fine passphrase 7")
    );

    let mut statuses = [one, other];
    statuses.sort();
    assert_eq!(statuses, [303, 410]);
}

#[tokio::test]
async fn staff_create_links_and_a_newer_link_replaces_the_older() {
    let app = spawn_app().await;
    let customer = app.another_browser();
    customer.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(customer.get("/admin/users").await.status(), 403);
    app.log_in_as("staff", "staff-runs-tasks").await;

    let first = app
        .submit(
            "/admin/users",
            "/admin/users/password-reset",
            &[("login", "alice")],
        )
        .await;
    assert_eq!(first.status(), 201);
    let first = reset_path_in(&first.text().await.unwrap());
    let second = app
        .submit(
            "/admin/users",
            "/admin/users/password-reset",
            &[("login", "alice")],
        )
        .await;
    let second = reset_path_in(&second.text().await.unwrap());
    let unknown = app
        .submit(
            "/admin/users",
            "/admin/users/password-reset",
            &[("login", "ghost")],
        )
        .await;
    let malformed = app
        .submit(
            "/admin/users",
            "/admin/users/password-reset",
            &[("login", "no spaces!")],
        )
        .await;
    // A staff account's link comes from the server's command line, not from a colleague.
    let colleague = app
        .submit(
            "/admin/users",
            "/admin/users/password-reset",
            &[("login", "staff")],
        )
        .await;
    assert_eq!(colleague.status(), 422);
    assert!(
        colleague
            .text()
            .await
            .unwrap()
            .contains("is a staff account: its reset link is made with")
    );

    assert_eq!(
        app.get(&first).await.status(),
        404,
        "replaced by the newer one"
    );
    assert_eq!(app.get(&second).await.status(), 200);
    assert_eq!(unknown.status(), 422);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("no account with the login")
    );
    assert_eq!(malformed.status(), 422);
    assert!(
        !app.page("/admin/users").await.contains("/password-reset/"),
        "shown once"
    );
    let used = app
        .another_browser()
        .use_reset_link(&second, NEW_PASSWORD)
        .await;
    assert_is_redirect_to(&used, "/login");
    assert!(
        !is_logged_in(&customer.page("/").await),
        "alice's session ended"
    );
    assert!(
        is_logged_in(&app.page("/").await),
        "the staff member's did not"
    );
}

#[tokio::test]
async fn an_expired_or_made_up_link_is_refused_with_a_reason() {
    let app = spawn_app().await;
    let link = app
        .db(|conn| {
            resets::create_link(
                conn,
                &staff_acting(),
                &Login::parse("alice").unwrap(),
                resets::LinkIssuer::StaffPage,
            )
            .unwrap()
        })
        .await;
    let path = link.path();
    let form = app.page(&path).await;
    app.db(|conn| {
        diesel::update(password_resets::table)
            .set((
                password_resets::created_at.eq(chrono::Utc::now() - chrono::Duration::hours(2)),
                password_resets::expires_at.eq(chrono::Utc::now() - chrono::Duration::hours(1)),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;
    let before = password_hash_of(&app, "alice").await;

    let shown = app.get(&path).await;
    let posted = app
        .post_form(
            &path,
            &[
                ("csrf_token", &csrf_token_in(&form)),
                ("password", NEW_PASSWORD),
                ("password_confirmation", NEW_PASSWORD),
            ],
        )
        .await;
    let made_up = app.get("/password-reset/not-a-token").await;

    assert_eq!(shown.status(), 410);
    assert!(
        shown
            .text()
            .await
            .unwrap()
            .contains("This link has expired")
    );
    assert_eq!(posted.status(), 410);
    assert_eq!(made_up.status(), 404);
    assert!(made_up.text().await.unwrap().contains("not a valid link"));
    assert_eq!(
        password_hash_of(&app, "alice").await,
        before,
        "nothing changed"
    );
}
