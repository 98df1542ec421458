//! Accounts and sessions, as a visitor with a browser (cookie jar) sees them.

use bookstore::db::schema::{sessions, users};
use diesel::{dsl::sql, prelude::*, sql_types::Bool};

use crate::helpers::{TestApp, assert_is_redirect_to, spawn_app, spawn_app_with};

const ALICE: (&str, &str) = ("alice", "alice-reads-books");
const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");

async fn user_count(app: &TestApp) -> i64 {
    app.db(|conn| users::table.count().get_result(conn).unwrap())
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

/// The session cookie a response sets (`bookstore_session=` or `__Host-bookstore_session=`).
fn session_cookie_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.contains("bookstore_session="))
        .expect("a session cookie")
        .to_owned()
}

fn is_logged_in_as(page: &str, name: &str) -> bool {
    page.contains(name) && page.contains("Log out")
}

fn is_anonymous(page: &str) -> bool {
    page.contains("href=\"/login\"") && !page.contains("Log out")
}

#[tokio::test]
async fn registering_logs_you_in_and_shows_your_name() {
    let app = spawn_app().await;

    let response = app
        .register("  new.reader ", "Nora Reader", "a good long password")
        .await;

    assert_is_redirect_to(&response, "/");
    let home = app.page("/").await;
    assert!(is_logged_in_as(&home, "Nora Reader"));
    assert!(
        home.contains("Welcome to the shop, Nora Reader!"),
        "a flash greets the new customer"
    );
    assert!(
        !app.page("/").await.contains("Welcome to the shop"),
        "a flash shows once"
    );
    let login: String = app
        .db(|conn| {
            users::table
                .order(users::id.desc())
                .select(users::login)
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(login, "new.reader", "the login is stored trimmed");
}

#[tokio::test]
async fn a_login_is_taken_whatever_its_case() {
    let app = spawn_app().await;
    let before = user_count(&app).await;

    let response = app
        .register("ALICE", "Another Alice", "a good long password")
        .await;

    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("That login is taken"));
    assert!(
        page.contains("value=\"Another Alice\""),
        "the rest of the input is kept"
    );
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn weak_or_mismatched_passwords_are_refused_with_the_form_kept() {
    let app = spawn_app().await;
    let before = user_count(&app).await;

    let weak = app.register("bookworm", "Book Worm", "short").await;
    let common = app.register("bookworm", "Book Worm", "password").await;
    let digits = app.register("bookworm", "Book Worm", "12345678").await;
    let own_name = app.register("bookworm", "Book Worm", "bookworm2026").await;
    let mismatched = app
        .submit(
            "/register",
            "/register",
            &[
                ("login", "bookworm"),
                ("display_name", "Book Worm"),
                ("password", "a good long password"),
                ("password_confirmation", "a different password"),
            ],
        )
        .await;
    let bad_login = app
        .register("no spaces!", "Book Worm", "a good long password")
        .await;

    for (what, response) in [
        ("common", common),
        ("digits", digits),
        ("own name", own_name),
    ] {
        assert_eq!(response.status(), 422, "{what}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("This password is too easy to guess"),
            "{what}: the feedback is shown"
        );
    }
    assert_eq!(weak.status(), 422);
    let weak = weak.text().await.unwrap();
    assert!(weak.contains("at least 8 characters"));
    assert!(weak.contains("value=\"bookworm\"") && weak.contains("value=\"Book Worm\""));
    assert!(
        !weak.contains("value=\"short\""),
        "passwords are never echoed"
    );
    assert_eq!(mismatched.status(), 422);
    assert!(
        mismatched
            .text()
            .await
            .unwrap()
            .contains("The two passwords do not match.")
    );
    assert_eq!(bad_login.status(), 422);
    assert!(
        bad_login
            .text()
            .await
            .unwrap()
            .contains("Use only letters, digits")
    );
    assert_eq!(user_count(&app).await, before, "nothing was created");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;

    let wrong_password = app.log_in("alice", "not her password").await;
    let unknown_user = app.log_in("nobody-here", "not her password").await;

    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_user.status(), 401);
    let (a, b) = (
        wrong_password.text().await.unwrap(),
        unknown_user.text().await.unwrap(),
    );
    let message = |page: &str| {
        page.lines()
            .find(|l| l.contains("form-error"))
            .map(str::trim)
            .map(str::to_owned)
    };
    assert_eq!(
        message(&a).as_deref(),
        Some(
            "<p id=\"login-form-error\" class=\"form-error\" role=\"alert\">Wrong login or password.</p>"
        )
    );
    assert_eq!(message(&a), message(&b));
    assert!(is_anonymous(&app.page("/").await));
}

#[tokio::test]
async fn logging_in_elsewhere_ends_the_earlier_session() {
    let app = spawn_app().await;
    let first = app.another_browser();
    let second = app.another_browser();

    first.log_in_as(ALICE.0, ALICE.1).await;
    assert!(is_logged_in_as(&first.page("/").await, "Alice Reader"));
    second.log_in_as(ALICE.0, ALICE.1).await;

    assert!(
        is_anonymous(&first.page("/").await),
        "the first browser is logged out"
    );
    assert!(is_logged_in_as(&second.page("/").await, "Alice Reader"));
    assert_eq!(sessions_of(&app, "alice").await, 1);
}

#[tokio::test]
async fn the_browser_whose_session_a_log_in_ended_is_told_why_once() {
    let app = spawn_app().await;
    let (first, second) = (app.another_browser(), app.another_browser());
    let rule = "An account has one session at a time: logging in here ends its session";
    assert!(
        app.page("/login").await.contains(rule),
        "the log-in page explains the rule"
    );

    first.log_in_as(ALICE.0, ALICE.1).await;
    second.log_in_as(ALICE.0, ALICE.1).await;
    assert!(
        second
            .page("/account")
            .await
            .contains("logging in on another browser or device ends this one"),
        "so does the account page"
    );

    // The first browser opens a private page: it is sent to log in, and told why.
    let private = first.get("/account").await;
    assert_is_redirect_to(&private, "/login?next=%2Faccount");
    let told = first.page("/login?next=%2Faccount").await;
    let why = "You were logged out because this account logged in on another browser or device at ";
    assert!(told.contains(why), "{told}");
    assert!(told.contains(" UTC on "), "with the time");
    assert!(!first.page("/login").await.contains(why), "told once");
    assert!(is_logged_in_as(&second.page("/").await, "Alice Reader"));
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_renewed_at_login() {
    let app = spawn_app().await;
    let session_cookie = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("bookstore_session="))
            .map(str::to_owned)
    };

    // The log-in form's token rides in a cookie of its own; no session yet.
    let form = app.get("/login").await;
    assert!(session_cookie(&form).is_none());
    let token_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        token_cookie.starts_with("bookstore_csrf=")
            && token_cookie.contains("HttpOnly")
            && token_cookie.contains("SameSite=Strict"),
        "{token_cookie}"
    );
    let _ = form.text().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    // Logged out, the visitor keeps an anonymous session (it carries the goodbye message)...
    let logged_out = app.log_out().await;
    let anonymous_cookie = session_cookie(&logged_out).expect("an anonymous session");
    // ...which logging in replaces with a new token.
    let response = app.log_in(ALICE.0, ALICE.1).await;
    let login_cookie = session_cookie(&response).expect("a session at log-in");

    for cookie in [&anonymous_cookie, &login_cookie] {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
    }
    let value = |cookie: &str| cookie.split(';').next().unwrap().to_owned();
    assert_ne!(
        value(&anonymous_cookie),
        value(&login_cookie),
        "a new token at login"
    );
}

#[tokio::test]
async fn logging_out_deletes_the_session_row() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(sessions_of(&app, "alice").await, 1);

    let response = app.log_out().await;

    assert_is_redirect_to(&response, "/");
    assert_eq!(sessions_of(&app, "alice").await, 0);
    let home = app.page("/").await;
    assert!(is_anonymous(&home));
    assert!(home.contains("You have been logged out."));
}

#[tokio::test]
async fn expired_and_idle_sessions_are_refused() {
    let app = spawn_app().await;

    app.log_in_as(ALICE.0, ALICE.1).await;
    app.db(|conn| {
        diesel::update(sessions::table.filter(sessions::user_id.is_not_null()))
            .set((
                sessions::created_at.eq(sql("now() - interval '8 days'")),
                sessions::expires_at.eq(sql("now() - interval '1 second'")),
            ))
            .execute(conn)
            .unwrap()
    })
    .await;
    assert!(is_anonymous(&app.page("/").await), "past its lifetime");

    app.log_in_as(ALICE.0, ALICE.1).await;
    app.db(|conn| {
        diesel::update(sessions::table.filter(sessions::user_id.is_not_null()))
            .set(sessions::last_seen_at.eq(sql("now() - interval '3 hours'")))
            .execute(conn)
            .unwrap()
    })
    .await;
    assert!(
        is_anonymous(&app.page("/").await),
        "idle longer than the timeout"
    );
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let before = user_count(&app).await;
    let fields = [
        ("login", "sneaky"),
        ("display_name", "Sneaky"),
        ("password", "a good long password"),
        ("password_confirmation", "a good long password"),
    ];

    let without_token = app.post_form("/register", &fields).await;
    let mut forged = fields.to_vec();
    forged.push(("csrf_token", "forged"));
    let wrong_token = app.post_form("/register", &forged).await;
    let html = app.page("/register").await;
    let mut genuine = fields.to_vec();
    let token = crate::helpers::csrf_token_in(&html);
    genuine.push(("csrf_token", &token));
    let cross_site = app
        .client
        .post(format!("{}/register", app.address))
        .header("Origin", "https://evil.example")
        .form(&genuine)
        .send()
        .await
        .unwrap();
    let login_without_token = app
        .post_form("/login", &[("login", ALICE.0), ("password", ALICE.1)])
        .await;

    for response in [without_token, wrong_token, cross_site, login_without_token] {
        assert_eq!(response.status(), 403);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("nothing was changed")
        );
    }
    assert_eq!(user_count(&app).await, before);
    assert!(is_anonymous(&app.page("/").await));
}

#[tokio::test]
async fn staff_pages_are_for_staff_only() {
    let app = spawn_app().await;

    let anonymous = app.get("/admin").await;
    assert_is_redirect_to(&anonymous, "/login?next=%2Fadmin");

    app.log_in_as(ALICE.0, ALICE.1).await;
    let customer = app.get("/admin").await;
    assert_eq!(customer.status(), 403);
    assert!(
        customer
            .text()
            .await
            .unwrap()
            .contains("This page is for staff only")
    );
    assert!(
        !app.page("/").await.contains("href=\"/admin\""),
        "no Admin link for customers"
    );

    let staff = app.another_browser();
    staff.log_in_as(STAFF.0, STAFF.1).await;
    let overview = staff.get("/admin").await;
    assert_eq!(overview.status(), 200);
    let page = overview.text().await.unwrap();
    assert!(page.contains("Staff overview") && page.contains("300</span> books"));
    assert!(
        staff.page("/").await.contains("href=\"/admin\""),
        "staff see the Admin link"
    );
}

#[tokio::test]
async fn log_in_returns_to_next_but_never_to_another_site() {
    let app = spawn_app().await;

    let form = app.page("/login?next=https://evil.example").await;
    assert!(
        form.contains("name=\"next\" value=\"/\""),
        "a foreign next is dropped"
    );
    for (next, expected) in [
        ("https://evil.example", "/"),
        ("//evil.example", "/"),
        ("/admin", "/admin"),
    ] {
        let browser = app.another_browser();
        let response = browser
            .submit(
                "/login",
                "/login",
                &[("login", STAFF.0), ("password", STAFF.1), ("next", next)],
            )
            .await;
        assert_is_redirect_to(&response, expected);
    }
}

/// Lets the delays that the last failures imposed pass (the counts stay).
pub(crate) async fn let_the_delays_pass(app: &TestApp) {
    app.db(|conn| {
        diesel::sql_query(
            "UPDATE login_throttle SET last_failure_at = last_failure_at - interval '1 hour'",
        )
        .execute(conn)
        .unwrap()
    })
    .await;
}

#[tokio::test]
async fn guessing_slows_the_guesser_down_but_never_locks_the_owner_out() {
    let app = spawn_app_with(|config| config.login_max_failures = 3).await;
    let guesser = app.browser_at([127, 0, 0, 1]);
    let owner = app.browser_at([127, 0, 0, 2]);

    // A guesser's first failure makes their next try wait.
    assert_eq!(
        guesser.log_in(ALICE.0, "wrong guess 123").await.status(),
        401
    );
    let at_once = guesser.log_in(ALICE.0, "wrong guess 456").await;
    if at_once.status() == 429 {
        let page = at_once.text().await.unwrap();
        assert!(
            page.contains("Too many failed log-ins from here") && page.contains("try again in")
        );
    }
    // Whatever the machine's speed, the guesser reaches the hourly limit of guesses...
    while guesser_failures(&app).await < 3 {
        let_the_delays_pass(&app).await;
        guesser.log_in(ALICE.0, "another wrong guess").await;
    }
    // ...after which even the right password waits, from there.
    let_the_delays_pass(&app).await;
    let locked = guesser.log_in(ALICE.0, ALICE.1).await;
    assert_eq!(
        locked.status(),
        429,
        "the guesser's address waits out the hour"
    );
    assert!(locked.text().await.unwrap().contains("minutes"));

    // The owner, from a clean address, is not locked out: the account's ceiling slows every
    // address (see login_throttle.rs), but once its delay has passed (as it has here) the
    // owner's right password gets in.
    owner.log_in_as(ALICE.0, ALICE.1).await;
    assert!(is_logged_in_as(&owner.page("/").await, "Alice Reader"));
}

async fn guesser_failures(app: &TestApp) -> i32 {
    app.db(|conn| {
        use bookstore::db::schema::login_throttle;
        login_throttle::table
            .filter(login_throttle::key.like("login:%"))
            .select(login_throttle::failures)
            .first::<i32>(conn)
            .optional()
            .unwrap()
            .unwrap_or(0)
    })
    .await
}

#[tokio::test]
async fn one_address_creates_at_most_ten_accounts_an_hour() {
    let app = spawn_app().await;
    for n in 0..10 {
        let visitor = app.browser_at([127, 0, 0, 3]);
        let response = visitor
            .register(&format!("reader{n}"), "A Reader", "a good long password")
            .await;
        assert_eq!(response.status(), 303, "account {n}");
    }
    let visitor = app.browser_at([127, 0, 0, 3]);
    let refused = visitor
        .register("reader10", "A Reader", "a good long password")
        .await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Too many accounts were created from your network")
    );
    let elsewhere = app.browser_at([127, 0, 0, 4]);
    let welcome = elsewhere
        .register("reader10", "A Reader", "a good long password")
        .await;
    assert_eq!(welcome.status(), 303, "another network may");
}

#[tokio::test]
async fn create_staff_creates_and_promotes_accounts() {
    let app = spawn_app().await;
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"));
        command
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("BOOKSTORE_LOG", "warn")
            .stdin(std::process::Stdio::null());
        match password {
            Some(password) => command.env("BOOKSTORE_STAFF_PASSWORD", password),
            None => command.env_remove("BOOKSTORE_STAFF_PASSWORD"),
        };
        command.output().unwrap()
    };

    let created = run(&["create-staff", "boss"], Some("boss password 1"));
    let promoted = run(&["create-staff", "alice"], None);
    let refused = run(&["create-staff", "ghost"], None);

    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("boss created a staff account"));
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert!(!refused.status.success(), "a new account needs a password");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a password is needed"));
    let boss = app.another_browser();
    boss.log_in_as("boss", "boss password 1").await;
    assert_eq!(boss.get("/admin").await.status(), 200);
    app.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(
        app.get("/admin").await.status(),
        200,
        "alice was promoted, password kept"
    );
    let is_staff: bool = app
        .db(|conn| {
            users::table
                .filter(users::login.eq("ghost"))
                .select(sql::<Bool>("true"))
                .first::<bool>(conn)
                .optional()
                .unwrap()
                .is_some()
        })
        .await;
    assert!(!is_staff, "no ghost account was created");
}

#[tokio::test]
async fn the_clean_up_purges_only_dead_sessions() {
    let app = spawn_app().await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    let other = app.another_browser();
    other.log_in_as(STAFF.0, STAFF.1).await;
    app.db(|conn| {
        diesel::update(
            sessions::table.filter(
                sessions::user_id.eq_any(
                    users::table
                        .filter(users::login.eq("alice"))
                        .select(users::id.nullable()),
                ),
            ),
        )
        .set(sessions::last_seen_at.eq(sql("now() - interval '1 day'")))
        .execute(conn)
        .unwrap()
    })
    .await;

    let policy = bookstore::domain::accounts::sessions::SessionPolicy::from(
        &bookstore::config::Config::default(),
    );
    let purged = app
        .db(move |conn| {
            bookstore::domain::accounts::sessions::purge_expired(conn, &policy).unwrap()
        })
        .await;

    assert_eq!(purged, 1);
    assert_eq!(sessions_of(&app, "alice").await, 0);
    assert_eq!(sessions_of(&app, "staff").await, 1);
}

#[tokio::test]
async fn why_a_session_ended_is_kept_no_longer_than_a_session_lives() {
    use bookstore::{db::schema::ended_sessions, domain::accounts::sessions as store};
    let app = spawn_app().await;
    // Two ended sessions (alice logged in three times): one ended long ago, one just now.
    for _ in 0..3 {
        app.another_browser().log_in_as(ALICE.0, ALICE.1).await;
    }
    let policy = bookstore::domain::accounts::sessions::SessionPolicy::from(
        &bookstore::config::Config::default(),
    );
    let (purged, left) = app
        .db(move |conn| {
            let oldest: Vec<u8> = ended_sessions::table
                .order(ended_sessions::ended_at)
                .select(ended_sessions::token_hash)
                .first(conn)
                .unwrap();
            diesel::update(ended_sessions::table.find(oldest))
                .set(ended_sessions::ended_at.eq(chrono::Utc::now() - policy.lifetime * 2))
                .execute(conn)
                .unwrap();
            let purged = store::purge_session_ends(conn, &policy).unwrap();
            let left: i64 = ended_sessions::table.count().get_result(conn).unwrap();
            (purged, left)
        })
        .await;
    assert_eq!((purged, left), (1, 1));
}

#[tokio::test]
async fn any_node_serves_a_session_started_on_another() {
    let node_a = spawn_app().await;
    // A second app process on the same database: same cookie key (kept in the database),
    // same sessions table.
    let node_b = crate::helpers::spawn_node_on(&node_a.database_url).await;
    node_a.log_in_as(ALICE.0, ALICE.1).await;

    // The same browser (cookie jar), now talking to node B.
    let on_b = node_a
        .client
        .get(format!("{}/", node_b))
        .send()
        .await
        .unwrap();
    let page = on_b.text().await.unwrap();
    assert!(
        is_logged_in_as(&page, "Alice Reader"),
        "node B knows the session node A started"
    );
    let cart = node_a
        .client
        .get(format!("{}/cart", node_b))
        .send()
        .await
        .unwrap();
    assert_eq!(cart.status(), 200);
}

#[tokio::test]
async fn the_sessions_table_holds_no_usable_cookie() {
    use sha2::{Digest, Sha256};
    let app = spawn_app().await;
    let response = app.log_in(ALICE.0, ALICE.1).await;
    assert_eq!(response.status(), 303);
    let cookie = session_cookie_of(&response);
    let cookie = cookie
        .strip_prefix("bookstore_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // The signed cookie ends with the token: 256 bits as 64 hex digits.
    let token = &cookie[cookie.len() - 64..];
    let token_bytes = hex::decode(token).expect("hex");
    assert_eq!(token_bytes.len(), 32, "256 random bits");

    let stored: Vec<Vec<u8>> = app
        .db(|conn| {
            sessions::table
                .select(sessions::token_hash)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0],
        Sha256::digest(&token_bytes).to_vec(),
        "only its SHA-256 is kept"
    );
    assert!(
        !stored
            .iter()
            .any(|hash| *hash == token_bytes || hex::encode(hash).contains(token)),
        "the token itself is nowhere in the table"
    );
}

#[tokio::test]
async fn over_https_the_cookie_is_host_only_and_hsts_is_sent() {
    let app = spawn_app_with(|config| config.secure_cookies = true).await;
    let page = app.get("/").await;
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS for a year"
    );
    let response = app.log_in(ALICE.0, ALICE.1).await;
    assert_eq!(response.status(), 303);
    let cookie = session_cookie_of(&response);
    assert!(cookie.starts_with("__Host-bookstore_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain="), "{cookie}");

    let plain = spawn_app().await;
    assert!(
        plain
            .get("/")
            .await
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn a_visitor_who_only_looks_stores_nothing_on_the_server() {
    let app = spawn_app().await;
    let all_sessions = || app.db(|conn| sessions::table.count().get_result::<i64>(conn).unwrap());

    for path in [
        "/",
        "/books",
        "/books/1",
        "/login",
        "/register",
        "/login?next=/cart",
    ] {
        let visitor = app.another_browser();
        assert_eq!(visitor.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(
        all_sessions().await,
        0,
        "no session row for visitors with nothing to store"
    );

    // The log-in form still works (its token rides in a cookie of its own), and still
    // refuses a forged one.
    let visitor = app.another_browser();
    let forged = visitor
        .post_form(
            "/login",
            &[
                ("login", ALICE.0),
                ("password", ALICE.1),
                ("csrf_token", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(all_sessions().await, 0);
    visitor.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(
        all_sessions().await,
        1,
        "logging in is what starts a session"
    );
}
