//! Mail stories against a real SMTP server (Python's aiosmtpd, started by the test, writing
//! what it receives to a maildir): register and confirm, forgot password through the link
//! received, an order confirmation sent once while the server was down and then back, no
//! mail for a failed checkout, no enumeration, throttling, and a forged Host header.

use bookstore::{
    db::schema::{books, mails},
    mail::{MailKind, MailStatus},
};
use diesel::prelude::*;

use crate::{
    helpers::{TestApp, assert_is_redirect_to, csrf_token_in, spawn_app_with, wait_until},
    mailbox::{PUBLIC, SmtpSink, link_in, shop_mailing_to, shop_writing_to_outbox},
};

fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.address).unwrap().to_owned()
}

async fn mail_rows_to(app: &TestApp, address: &'static str) -> Vec<(MailKind, MailStatus, i32)> {
    app.db(move |conn| {
        mails::table
            .filter(mails::recipient.eq(address))
            .order(mails::id)
            .select((mails::kind, mails::status, mails::attempts))
            .load(conn)
            .unwrap()
    })
    .await
}

#[actix_web::test]
async fn a_new_customer_confirms_the_address_then_resets_a_forgotten_password_by_mail() {
    let sink = SmtpSink::started().await;
    let app = shop_mailing_to(&sink).await;

    // Register: a confirmation link comes to the address given.
    let registered = app
        .register("nora", "Nora Reader", "a good long password")
        .await;
    assert_is_redirect_to(&registered, "/");
    let account = app.page("/account").await;
    assert!(
        account.contains("Waiting for confirmation: <strong>nora@example.test"),
        "{account}"
    );
    let confirmation = &sink.wait_for(&app, "nora@example.test", 1).await[0];
    assert!(
        confirmation.contains("Subject: Confirm your e-mail address"),
        "{confirmation}"
    );
    assert!(
        confirmation.contains("Content-Type: text/plain")
            && confirmation.contains("Content-Type: text/html")
    );
    assert!(
        confirmation.contains("From: Bookstore <bookstore@localhost>"),
        "{confirmation}"
    );
    let confirm_path = path_of(&app, &link_in(&app, confirmation, "/account/email/"));
    let page = app.page(&confirm_path).await;
    assert!(
        page.contains("Make <strong>nora@example.test</strong> the address"),
        "{page}"
    );
    let confirmed = app
        .post_form(&confirm_path, &[("csrf_token", &csrf_token_in(&page))])
        .await;
    assert_is_redirect_to(&confirmed, "/account");
    assert!(
        app.page("/account")
            .await
            .contains("Confirmed: <strong>nora@example.test</strong>")
    );
    assert_eq!(
        app.get(&confirm_path).await.status(),
        410,
        "a link works once"
    );
    app.log_out().await;

    // Forgot the password: an unknown address gets the same page, and no mail.
    let visitor = app.another_browser();
    let login_page = visitor.page("/login").await;
    assert!(login_page.contains("href=\"/password-forgotten\""));
    let for_ghost = visitor
        .submit(
            "/password-forgotten",
            "/password-forgotten",
            &[("who", "ghost@example.test")],
        )
        .await;
    let for_nora = visitor
        .submit(
            "/password-forgotten",
            "/password-forgotten",
            &[("who", "Nora@Example.TEST")],
        )
        .await;
    assert_eq!(
        (for_ghost.status().as_u16(), for_nora.status().as_u16()),
        (200, 200)
    );
    let (ghost_page, nora_page) = (
        for_ghost.text().await.unwrap(),
        for_nora.text().await.unwrap(),
    );
    let answer = |page: &str| {
        page.split("id=\"forgotten-sent\">")
            .nth(1)
            .unwrap()
            .split("<strong>")
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        answer(&ghost_page),
        answer(&nora_page),
        "the same answer either way"
    );
    let reset = sink.wait_for(&app, "nora@example.test", 2).await;
    let reset = reset.iter().find(|m| m.contains("password-reset")).unwrap();
    assert!(
        mail_rows_to(&app, "ghost@example.test").await.is_empty(),
        "no mail to an unknown address"
    );

    // The link from the mail sets a new password; the new one logs in.
    let reset_path = path_of(&app, &link_in(&app, reset, "/password-reset/"));
    let set = visitor
        .use_reset_link(&reset_path, "another fine passphrase")
        .await;
    assert_eq!(set.status(), 303, "{}", set.text().await.unwrap());
    let fresh = app.another_browser();
    assert_eq!(
        fresh.log_in("nora", "a good long password").await.status(),
        401
    );
    fresh.log_in_as("nora", "another fine passphrase").await;
    assert_eq!(
        visitor.get(&reset_path).await.status(),
        410,
        "the link is used up"
    );
}

/// The first book on sale, now with `stock` copies: its id and title.
async fn first_book_stocked(app: &TestApp, stock: i32) -> (i64, String) {
    app.db(move |conn| {
        let (id, title): (i64, String) = books::table
            .filter(books::hidden.eq(false))
            .order(books::id)
            .select((books::id, books::title))
            .first(conn)
            .unwrap();
        diesel::update(books::table.find(id))
            .set(books::stock.eq(stock))
            .execute(conn)
            .unwrap();
        (id, title)
    })
    .await
}

async fn add_to_cart(app: &TestApp, book: i64) {
    let added = app
        .submit(
            &format!("/books/{book}"),
            "/cart/items",
            &[("book_id", &book.to_string()), ("quantity", "2")],
        )
        .await;
    assert_eq!(added.status(), 303);
}

async fn check_out(app: &TestApp) -> reqwest::Response {
    let cart = app.page("/cart").await;
    let key = cart
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    app.post_form(
        "/checkout",
        &[
            ("csrf_token", &csrf_token_in(&cart)),
            ("idempotency_key", &key),
        ],
    )
    .await
}

#[actix_web::test]
async fn an_order_confirmation_is_received_once_though_the_mail_server_was_down() {
    let mut sink = SmtpSink::reserve();
    let app = shop_mailing_to(&sink).await;
    let (book, title) = first_book_stocked(&app, 10).await;
    app.log_in_as("alice", "alice-reads-books").await;

    add_to_cart(&app, book).await;
    let placed = check_out(&app).await;
    let order_path = placed.headers()["location"].to_str().unwrap().to_owned();
    wait_until(30, "a failed attempt while the server is down", || async {
        mail_rows_to(&app, "alice@example.com")
            .await
            .first()
            .is_some_and(|(_, status, attempts)| *status == MailStatus::Queued && *attempts >= 2)
    })
    .await;
    let staff = app.another_browser();
    staff.log_in_as("staff", "staff-runs-tasks").await;
    let mail_page = staff.page("/admin/mail").await;
    assert!(
        mail_page.contains("alice@example.com") && mail_page.contains("retrying"),
        "{mail_page}"
    );

    sink.start().await;
    let received = sink.wait_for(&app, "alice@example.com", 1).await;
    wait_until(30, "the mail recorded as sent", || async {
        mail_rows_to(&app, "alice@example.com").await[0].1 == MailStatus::Sent
    })
    .await;

    // A checkout that fails (sold out meanwhile) sends nothing.
    add_to_cart(&app, book).await;
    app.db(move |conn| {
        diesel::update(books::table.find(book))
            .set(books::stock.eq(1))
            .execute(conn)
            .unwrap();
    })
    .await;
    assert_eq!(check_out(&app).await.status(), 409);

    assert_eq!(
        sink.to("alice@example.com").len(),
        1,
        "exactly one confirmation"
    );
    assert_eq!(
        mail_rows_to(&app, "alice@example.com").await.len(),
        1,
        "none for the failed checkout"
    );
    let mail = &received[0];
    assert!(
        mail.contains(&format!(
            "Subject: Your Bookstore order #{}",
            order_path.trim_start_matches("/orders/")
        )),
        "{mail}"
    );
    assert!(mail.contains(&title) && mail.contains("Total:"), "{mail}");
    assert!(mail.contains(&format!("{PUBLIC}{order_path}")), "{mail}");
    assert!(mail.contains("Message-ID: <"), "{mail}");
    let sent_page = staff.page("/admin/mail?status=sent").await;
    assert!(sent_page.contains("Your Bookstore order") && sent_page.contains("/admin/tasks/"));
}

#[actix_web::test]
async fn a_forged_host_header_does_not_reach_the_link_and_the_outbox_folder_holds_the_mail() {
    // No mail server: mails are written to <data dir>/outbox/.
    let (app, outbox) = shop_writing_to_outbox().await;

    let page = app.page("/password-forgotten").await;
    let sent = app
        .client
        .post(format!("{}/password-forgotten", app.address))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .form(&[
            ("csrf_token", csrf_token_in(&page).as_str()),
            ("who", "alice"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);

    let mail = outbox.wait_for(&app, "password-reset").await;
    assert!(
        mail.contains(&format!("{PUBLIC}/password-reset/")),
        "{mail}"
    );
    assert!(!mail.contains("evil.example"), "{mail}");
}

#[actix_web::test]
async fn bad_names_and_addresses_get_clear_answers_and_inject_no_header() {
    let (app, outbox) = shop_writing_to_outbox().await;
    let register = |login: &'static str, name: String, email: &'static str| {
        let app = app.another_browser();
        async move {
            app.submit(
                "/register",
                "/register",
                &[
                    ("login", login),
                    ("display_name", &name),
                    ("email", email),
                    ("password", "a good long password"),
                    ("password_confirmation", "a good long password"),
                ],
            )
            .await
        }
    };

    let huge = register("mallory", "n".repeat(1024 * 1024), "eve@example.test").await;
    let invalid = register("mallory", "Eve".into(), "eve at example").await;
    let injected = register(
        "mallory",
        "Eve".into(),
        "eve@example.test\r\nBcc: victim@example.com",
    )
    .await;
    let nul = register("mallory", "Eve\u{0}".into(), "eve@example.test").await;
    assert!(huge.status().is_client_error(), "{}", huge.status());
    assert_eq!(invalid.status(), 422);
    assert!(
        invalid
            .text()
            .await
            .unwrap()
            .contains("An e-mail address has no spaces")
    );
    assert_eq!(injected.status(), 422);
    assert_eq!(nul.status(), 400, "control characters are refused");
    assert!(
        mail_rows_to(&app, "eve@example.test").await.is_empty(),
        "nothing was queued"
    );

    // A line break in a name is folded into a space before it reaches any header.
    let crlf = register(
        "eve",
        "Eve\r\nBcc: victim@example.com".into(),
        "eve@example.test",
    )
    .await;
    assert_eq!(crlf.status(), 303);
    let mail = outbox.wait_for(&app, "Confirm your e-mail address").await;
    assert!(
        mail.lines()
            .any(|line| line.starts_with("To:") && line.contains("eve@example.test")),
        "{mail}"
    );
    assert!(
        !mail
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
        "{mail}"
    );
    assert!(!mail.contains("victim@example.com>"), "{mail}");
}

#[tokio::test]
async fn reset_requests_are_throttled_per_network_address_and_per_account() {
    let app = spawn_app_with(|config| config.public_url = Some(PUBLIC.into())).await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let response = app
            .submit(
                "/password-forgotten",
                "/password-forgotten",
                &[("who", "alice")],
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    let elsewhere = app.browser_at([127, 0, 0, 77]);
    let other_address = elsewhere
        .submit(
            "/password-forgotten",
            "/password-forgotten",
            &[("who", "alice@example.com")],
        )
        .await;

    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(statuses[10], 429, "the 11th request from one address waits");
    assert_eq!(
        other_address.status(),
        200,
        "another address is answered as usual"
    );
    let queued = mail_rows_to(&app, "alice@example.com").await;
    assert_eq!(
        queued.len(),
        3,
        "at most 3 reset mails to one account in the window"
    );
}

#[actix_web::test]
async fn staff_receive_the_low_stock_digest_listing_the_books_running_out() {
    let sink = SmtpSink::started().await;
    let app = shop_mailing_to(&sink).await;
    // Every book well stocked but one, which is down to its last copy.
    app.db(|conn| {
        diesel::update(books::table)
            .set(books::stock.eq(50))
            .execute(conn)
            .unwrap()
    })
    .await;
    let (_, title) = first_book_stocked(&app, 1).await;

    let (ok, _, error) = app.psql(r#"SELECT run_program('low_stock_digest', '{"threshold": 2}');"#);
    assert!(ok, "{error}");

    let digest = sink.wait_for(&app, "staff@example.com", 1).await;
    let digest = &digest[0];
    assert!(digest.contains("Subject: Low stock: 1 book"), "{digest}");
    let plain_title = title.replace('&', "&amp;");
    assert!(
        digest.contains(&title) || digest.contains(&plain_title),
        "the book running out is listed: {digest}"
    );
    assert!(
        digest.contains(&format!("{PUBLIC}/")),
        "links from the public address"
    );
    assert!(
        sink.to("alice@example.com").is_empty(),
        "customers get no staff digest"
    );
}
