//! The log-in throttle against a guesser with many addresses, and for an owner who mistypes:
//! stories told from both sides.

use bookstore::{
    audit::{Actor, AuditContext},
    domain::accounts::{Login, resets},
};

use crate::{
    accounts::let_the_delays_pass,
    helpers::{TestApp, spawn_app, spawn_app_with},
};

const ALICE: (&str, &str) = ("alice", "alice-reads-books");

/// Patient guessers, each from an address of their own, who wait out every delay: every one
/// of their `count` guesses is really tried (401, never 429).
async fn guess_from_new_addresses(app: &TestApp, first: u8, count: u8) {
    for i in 0..count {
        let guesser = app.browser_at([127, 0, first, i + 1]);
        let_the_delays_pass(app).await;
        let response = guesser.log_in(ALICE.0, &format!("guess number {i}")).await;
        assert_eq!(response.status(), 401, "guess {i} was tried");
    }
}

#[tokio::test]
async fn many_addresses_buy_no_more_guesses_once_the_account_is_over_its_limit() {
    let app = spawn_app_with(|config| config.login_max_failures = 3).await;
    // Alice's own browser has logged in before: it is a known device.
    let alices_browser = app.browser_at([127, 0, 0, 2]);
    alices_browser.log_in_as(ALICE.0, ALICE.1).await;

    // Guessers from 13 addresses use up the account's 3 failures and 10 more, each after the
    // account's delay (1, 2, 4 ... s) had passed.
    guess_from_new_addresses(&app, 1, 13).await;

    // Now the account waits (1,024 s, capped at the window), from a new address too, whatever
    // the password: a fresh address is no fresh guess.
    let newcomer = app.browser_at([127, 0, 2, 1]);
    let refused = newcomer.log_in(ALICE.0, ALICE.1).await;
    assert_eq!(refused.status(), 429, "a new address waits too");
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("try again in") && page.contains("minutes"),
        "{page}"
    );

    // Alice's browser, which logged in before, is not slowed by the account's ceiling.
    let back = alices_browser.log_in(ALICE.0, ALICE.1).await;
    assert_eq!(back.status(), 303, "a known device logs in at once");

    // Guessing starts again; this time Alice is on a new computer. A reset link (from staff,
    // or the command line) lets her in: the new password works at once.
    guess_from_new_addresses(&app, 3, 13).await;
    let new_computer = app.browser_at([127, 0, 4, 1]);
    assert_eq!(new_computer.log_in(ALICE.0, ALICE.1).await.status(), 429);
    let link = app
        .db(|conn| {
            resets::create_link(
                conn,
                &AuditContext::new(Actor::Cli, None),
                &Login::parse("alice").unwrap(),
                resets::LinkIssuer::CommandLine,
            )
            .unwrap()
            .path()
        })
        .await;
    let new_password = "violet harbour lantern 42";
    let reset = new_computer.use_reset_link(&link, new_password).await;
    assert_eq!(reset.status(), 303, "the link sets the new password");
    let logged_in = new_computer.log_in(ALICE.0, new_password).await;
    assert_eq!(logged_in.status(), 303, "the owner is in at once");
}

#[tokio::test]
async fn a_mistyped_password_then_the_right_one_at_once_logs_in() {
    let app = spawn_app().await;
    let browser = app.browser_at([127, 0, 0, 3]);

    // A password manager's stale entry, then the right password straight away.
    assert_eq!(
        browser.log_in(ALICE.0, "alice-read-books").await.status(),
        401
    );
    assert_eq!(browser.log_in(ALICE.0, ALICE.1).await.status(), 303);

    // Two slips in a row cost no wait either.
    let other = app.browser_at([127, 0, 0, 4]);
    assert_eq!(
        other.log_in(ALICE.0, "alice-reads-book").await.status(),
        401
    );
    assert_eq!(
        other.log_in(ALICE.0, "Alice-reads-books").await.status(),
        401
    );
    assert_eq!(other.log_in(ALICE.0, ALICE.1).await.status(), 303);
}
