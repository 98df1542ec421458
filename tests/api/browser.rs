//! End-to-end flows in real headless Chromium (WebDriver through chromedriver, both from
//! Debian's packages; `.ci/test` installs them). Each test gets a fresh browser profile and
//! asserts on what the page shows. Screenshots of the main pages go to `screenshots/`.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use bookstore::config::Role;
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::{TestApp, run_when_this_process_exits, spawn_app, spawn_app_with, wait_until};

/// One chromedriver per test run, stopped when the run ends.
fn chromedriver() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Stopped by the watcher below, after this process exits.
        #[allow(clippy::zombie_processes)]
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run the tests with `bash .ci/test`");
        run_when_this_process_exits(&format!("kill {}", child.id()));
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        url
    })
}

/// A new headless Chromium with a fresh profile, at `width` pixels.
pub(crate) async fn browser(width: u32) -> Client {
    let profile = std::env::temp_dir().join(format!(
        "bookstore-chrome-{}",
        uuid::Uuid::new_v4().simple()
    ));
    // Gone with the test run (chromedriver, and with it Chromium, is stopped then too).
    run_when_this_process_exits(&format!("sleep 2; rm -rf '{}'", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display()),
                format!("--window-size={width},1000"),
            ]
        }
    });
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(chromedriver())
        .await
        .expect("starting Chromium through chromedriver");
    client.set_window_size(width, 1000).await.unwrap();
    client
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

pub(crate) async fn css(client: &Client, selector: &str) -> Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|_| panic!("no {selector}"))
}

/// The visible text of the page; retried while a navigation replaces the document.
pub(crate) async fn body_text(client: &Client) -> String {
    let mut last_error = None;
    for _ in 0..50 {
        match client.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(text) => return text,
                Err(err) => last_error = Some(err),
            },
            Err(err) => last_error = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page has no readable body: {last_error:?}");
}

/// Waits until the page text contains `needle`.
pub(crate) async fn wait_for_text(client: &Client, needle: &str, seconds: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let text = body_text(client).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed {needle:?}; it shows:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many pixels the page is wider than the window (0 or less: no sideways scrolling).
pub(crate) async fn sideways_overflow(client: &Client) -> f64 {
    client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(1.0)
}

pub(crate) async fn fill(client: &Client, selector: &str, value: &str) {
    let field = css(client, selector).await;
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

pub(crate) async fn click(client: &Client, selector: &str) {
    css(client, selector).await.click().await.unwrap();
}

pub(crate) async fn log_in(client: &Client, app: &TestApp, login: &str, password: &str) {
    client
        .goto(&format!("{}/login", app.address))
        .await
        .unwrap();
    fill(client, "#login", login).await;
    fill(client, "#password", password).await;
    click(client, "form[action='/login'] button[type=submit]").await;
    wait_for_text(client, "Log out", 10).await;
}

#[tokio::test]
async fn a_new_customer_finds_a_book_and_buys_it() {
    let app = spawn_app().await;
    let client = browser(1280).await;

    client.goto(&app.address).await.unwrap();
    screenshot(&client, "home").await;
    click(&client, "a[href='/register']").await;
    fill(&client, "#login", "nora").await;
    fill(&client, "#display_name", "Nora Reader").await;
    fill(&client, "#email", "nora@example.test").await;
    fill(&client, "#password", "a good long password").await;
    fill(&client, "#password_confirmation", "a good long password").await;
    click(&client, "form[action='/register'] button").await;
    wait_for_text(&client, "Welcome to the shop, Nora Reader!", 10).await;

    fill(&client, "#q", "hunger games").await;
    click(&client, "form[role=search] button").await;
    let results = wait_for_text(&client, "Showing 1–", 10).await;
    assert!(results.contains("The Hunger Games"));
    screenshot(&client, "catalog").await;
    click(&client, ".book-card a.book-title").await;
    wait_for_text(&client, "Add to cart", 10).await;
    screenshot(&client, "book").await;
    click(&client, "form[action='/cart/items'] button").await;
    wait_for_text(&client, "to your cart (you now have 1)", 10).await;

    client.goto(&format!("{}/cart", app.address)).await.unwrap();
    click(&client, "button[aria-label='One more']").await;
    wait_for_text(&client, "Total (2 items)", 10).await;
    click(&client, "button[aria-label='One less']").await;
    wait_for_text(&client, "Total (1 item)", 10).await;
    click(&client, "button[aria-label='One less']").await;
    let refused = wait_for_text(&client, "A cart line holds at least 1 copy", 10).await;
    assert!(refused.contains("Total (1 item)"), "nothing changed");
    let quantity = css(&client, ".qty-set input[name=quantity]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(quantity.as_deref(), Some("1"));
    screenshot(&client, "cart").await;

    click(&client, "form[action='/checkout'] button").await;
    let order = wait_for_text(&client, "Thank you! Your order", 10).await;
    assert!(order.contains("The Hunger Games") && order.contains("Total"));
    screenshot(&client, "order").await;
    client
        .goto(&format!("{}/orders", app.address))
        .await
        .unwrap();
    assert!(body_text(&client).await.contains("Your orders"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn logging_in_in_a_second_browser_ends_the_first_browsers_session() {
    let app = spawn_app().await;
    let first = browser(1280).await;
    let second = browser(1280).await;

    log_in(&first, &app, "alice", "alice-reads-books").await;
    log_in(&second, &app, "alice", "alice-reads-books").await;
    first.refresh().await.unwrap();

    let text = body_text(&first).await;
    assert!(
        text.contains("Log in") && !text.contains("Log out"),
        "the first browser is logged out:\n{text}"
    );
    assert!(body_text(&second).await.contains("Alice Reader"));
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[actix_web::test]
async fn staff_run_programs_and_watch_them_live() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    let client = browser(1280).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;

    click(&client, "a[href='/admin']").await;
    wait_for_text(&client, "Staff overview", 10).await;
    click(&client, ".subnav a[href='/admin/programs']").await;
    click(&client, "a[href='/admin/programs/hello_world/run']").await;
    fill(&client, "#param_name", "browser").await;
    click(
        &client,
        "form[action='/admin/programs/hello_world/run'] button",
    )
    .await;
    // The page reloads itself when the task ends.
    let done = wait_for_text(&client, "Hello, browser!", 15).await;
    assert!(done.contains("finished"));
    screenshot(&client, "task-result").await;

    client
        .goto(&format!("{}/admin/programs/demo_long/run", app.address))
        .await
        .unwrap();
    fill(&client, "#param_seconds", "30").await;
    fill(&client, "#param_steps", "300").await;
    click(
        &client,
        "form[action='/admin/programs/demo_long/run'] button",
    )
    .await;
    wait_for_text(&client, "running", 15).await;
    // Mark this page: a reload would lose the mark.
    client
        .execute("window.bookstoreMark = 'same page';", vec![])
        .await
        .unwrap();
    let progress = |client: Client| async move {
        let script = "var bar = document.querySelector('.task-progress progress'); return bar ? bar.value : 0;";
        client
            .execute(script, vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap_or(0.0)
    };
    let first = loop {
        let value = progress(client.clone()).await;
        if value > 0.0 {
            break value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The bar moves on without a reload (the program reports every step).
    wait_until(
        60,
        "the progress bar to advance without a reload",
        || async { progress(client.clone()).await > first },
    )
    .await;
    let mark = client
        .execute("return window.bookstoreMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!("same page"), "the page was not reloaded");
    client
        .goto(&format!("{}/admin", app.address))
        .await
        .unwrap();
    screenshot(&client, "dashboard").await;
    client.back().await.unwrap();

    click(&client, "a.button[href$='/cancel']").await;
    wait_for_text(&client, "will be asked to stop", 10).await;
    click(&client, "form[action$='/cancel'] button").await;
    let cancelled = wait_for_text(&client, "Cancelled while running", 15).await;
    assert!(cancelled.contains("cancelled"));
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_customer_opening_admin_sees_the_403_page_and_the_layout_fits_a_phone() {
    let app = spawn_app().await;
    let client = browser(390).await;
    log_in(&client, &app, "alice", "alice-reads-books").await;

    client
        .goto(&format!("{}/admin", app.address))
        .await
        .unwrap();
    let text = body_text(&client).await;
    assert!(
        text.contains("403") && text.contains("This page is for staff only"),
        "{text}"
    );

    client
        .goto(&format!("{}/books", app.address))
        .await
        .unwrap();
    wait_for_text(&client, "Showing 1–", 10).await;
    let overflow = sideways_overflow(&client).await;
    assert!(
        overflow <= 0.0,
        "no sideways scrolling at 390 px: {overflow}"
    );
    screenshot(&client, "catalog-390px").await;
    client.close().await.unwrap();
}

/// The pages a shopper and a staff member see most, each at desktop and phone width: saved as
/// screenshots (`screenshots/looks-<page>-<width>px.png`), and at 390 px none may scroll
/// sideways.
#[tokio::test]
async fn the_main_pages_fit_a_phone_and_tab_reaches_the_skip_link_first() {
    use bookstore::db::schema::{books, cart_items, users};
    use diesel::prelude::*;
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};

    let app = spawn_app().await;
    let book = app
        .db(|conn| {
            let alice: i64 = users::table
                .filter(users::login.eq("alice"))
                .select(users::id)
                .first(conn)
                .unwrap();
            let ids: Vec<i64> = books::table
                .filter(books::stock.gt(2))
                .order(books::id)
                .select(books::id)
                .limit(2)
                .load(conn)
                .unwrap();
            for (book_id, quantity) in ids.iter().zip([1, 2]) {
                diesel::insert_into(cart_items::table)
                    .values((
                        cart_items::user_id.eq(alice),
                        cart_items::book_id.eq(book_id),
                        cart_items::quantity.eq(quantity),
                    ))
                    .execute(conn)
                    .unwrap();
            }
            books::table
                .filter(books::title.like("Harry Potter and the Sorcerer%"))
                .select(books::id)
                .first::<i64>(conn)
                .unwrap()
        })
        .await;
    let public = [
        ("home", "/".to_owned()),
        ("catalog", "/books".to_owned()),
        ("book", format!("/books/{book}")),
    ];

    for width in [1280, 390] {
        let client = browser(width).await;
        let visit = |name: &'static str, path: String| {
            let client = client.clone();
            let address = app.address.clone();
            async move {
                client.goto(&format!("{address}{path}")).await.unwrap();
                css(&client, "main#content").await;
                screenshot(&client, &format!("looks-{name}-{width}px")).await;
                let overflow = sideways_overflow(&client).await;
                if width == 390 {
                    assert!(overflow <= 0.0, "{path} scrolls sideways by {overflow} px");
                }
            }
        };
        for (name, path) in &public {
            visit(name, path.clone()).await;
        }
        let focused_first = {
            client.goto(&app.address).await.unwrap();
            let tab = char::from(fantoccini::key::Key::Tab);
            client
                .perform_actions(
                    KeyActions::new("keyboard".into())
                        .then(KeyAction::Down { value: tab })
                        .then(KeyAction::Up { value: tab }),
                )
                .await
                .unwrap();
            client.active_element().await.unwrap().text().await.unwrap()
        };
        assert_eq!(focused_first, "Skip to content", "at {width} px");

        log_in(&client, &app, "alice", "alice-reads-books").await;
        visit("cart", "/cart".to_owned()).await;
        assert!(body_text(&client).await.contains("Total (3 items)"));
        client.delete_all_cookies().await.unwrap();
        log_in(&client, &app, "staff", "staff-runs-tasks").await;
        visit("staff-books", "/admin/books".to_owned()).await;
        client.close().await.unwrap();
    }
}

#[actix_web::test]
async fn the_task_list_and_overview_show_new_tasks_without_a_reload() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    let client = browser(1280).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;
    for page in ["/admin/tasks", "/admin"] {
        client
            .goto(&format!("{}{page}", app.address))
            .await
            .unwrap();
        client
            .execute("window.bookstoreMark = 'same page';", vec![])
            .await
            .unwrap();
        let name = format!("live {}", page.len());
        let params = json!({ "name": name });
        app.db(move |conn| {
            bookstore::tasks::ops::run_program(conn, "hello_world", Some(&params)).unwrap()
        })
        .await;
        // The row appears, then shows the task finished: one fetch of the list per round.
        let seen = wait_for_text(&client, &name, 15).await;
        assert!(seen.contains(&name), "{page}");
        let mark = client
            .execute("return window.bookstoreMark || null;", vec![])
            .await
            .unwrap();
        assert_eq!(mark, json!("same page"), "{page} was not reloaded");
    }
    client.close().await.unwrap();
}

#[actix_web::test]
async fn staff_find_tasks_act_on_several_and_read_the_audit_log() {
    let app = spawn_app().await; // no engine: the tasks stay queued until acted on
    let mut ids = Vec::new();
    for name in ["first", "second", "third"] {
        let params = json!({ "name": name });
        ids.push(
            app.db(move |conn| {
                bookstore::tasks::ops::run_program(conn, "hello_world", Some(&params)).unwrap()
            })
            .await,
        );
    }
    for width in [1280, 390] {
        let client = browser(width).await;
        log_in(&client, &app, "staff", "staff-runs-tasks").await;
        client
            .goto(&format!("{}/admin/tasks?q=second", app.address))
            .await
            .unwrap();
        wait_for_text(&client, "1 task.", 10).await;
        screenshot(&client, &format!("console-tasks-{width}px")).await;
        if width == 1280 {
            // Tick the one found and cancel it, through the confirmation.
            click(&client, &format!("input[name=id][value='{}']", ids[1])).await;
            click(&client, "form.bulk button[value=cancel]").await;
            wait_for_text(&client, "Cancel 1 task?", 10).await;
            screenshot(&client, "console-bulk-confirm").await;
            click(&client, "form[action='/admin/tasks/bulk'] button.button").await;
            wait_for_text(&client, "1 task cancelled", 10).await;
        }
        client
            .goto(&format!("{}/admin/audit", app.address))
            .await
            .unwrap();
        let log = wait_for_text(&client, "task.cancelled", 10).await;
        assert!(log.contains("staff staff") && log.contains("login.succeeded"));
        screenshot(&client, &format!("console-audit-{width}px")).await;
        if width == 390 {
            assert!(
                sideways_overflow(&client).await <= 0.0,
                "the audit log fits a phone"
            );
        }
        // A token: created through the form, shown once after the redirect, with its prefix.
        client
            .goto(&format!("{}/admin/tokens", app.address))
            .await
            .unwrap();
        fill(&client, "#name", &format!("script at {width}")).await;
        click(&client, "form[action='/admin/tokens'] button").await;
        let shown = wait_for_text(&client, "copy it now", 10).await;
        assert!(shown.contains("bks_"));
        screenshot(&client, &format!("console-tokens-{width}px")).await;
        client.refresh().await.unwrap();
        let again = wait_for_text(&client, &format!("script at {width}"), 10).await;
        assert!(!again.contains("copy it now"), "shown once");
        client.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_shopper_misspells_a_search_undoes_a_removal_and_opens_the_account_page() {
    let app = spawn_app().await;
    for width in [1280, 390] {
        let client = browser(width).await;
        log_in(&client, &app, "alice", "alice-reads-books").await;

        // A typo still finds the book, and the page says how it read the words.
        client
            .goto(&format!("{}/books", app.address))
            .await
            .unwrap();
        fill(&client, "#q", "hobit tolkein").await;
        click(&client, "form[role=search] button").await;
        let found = wait_for_text(&client, "No exact matches", 10).await;
        assert!(found.contains("The Hobbit"), "{found}");
        screenshot(&client, &format!("search-typos-{width}px")).await;

        // Into the cart, then out with a quantity of 0, then back with Undo.
        click(&client, ".book-card a.book-title").await;
        wait_for_text(&client, "Add to cart", 10).await;
        click(&client, "form[action='/cart/items'] button").await;
        wait_for_text(&client, "View your cart", 10).await;
        click(&client, "a.flash-action[href='/cart']").await;
        wait_for_text(&client, "Your cart", 10).await;
        fill(&client, ".qty-set input[name=quantity]", "0").await;
        click(&client, ".qty-set button").await;
        let removed = wait_for_text(&client, "from your cart.", 10).await;
        assert!(removed.contains("Your cart is empty"), "{removed}");
        screenshot(&client, &format!("cart-undo-{width}px")).await;
        click(&client, "form.flash-action button").await;
        let back = wait_for_text(&client, "to your cart (you now have 1)", 10).await;
        assert!(back.contains("Check out"), "the line is back");

        client
            .goto(&format!("{}/account", app.address))
            .await
            .unwrap();
        let account = wait_for_text(&client, "Your account", 10).await;
        assert!(account.contains("Change your password") && account.contains("Your orders"));
        screenshot(&client, &format!("account-{width}px")).await;
        assert!(
            sideways_overflow(&client).await <= 0.0,
            "the account page fits at {width}"
        );
        // The cart is left empty for the next width.
        client.goto(&format!("{}/cart", app.address)).await.unwrap();
        fill(&client, ".qty-set input[name=quantity]", "0").await;
        click(&client, ".qty-set button").await;
        wait_for_text(&client, "Your cart is empty", 10).await;
        client.close().await.unwrap();
    }
}

#[tokio::test]
async fn choosing_a_sort_applies_it_without_the_show_button() {
    let app = spawn_app().await;
    let client = browser(1280).await;
    client
        .goto(&format!("{}/books", app.address))
        .await
        .unwrap();
    let most_popular = body_text(&client).await;
    assert!(!most_popular.contains("11/22/63"), "{most_popular}");

    css(&client, "#sort")
        .await
        .select_by_value("title")
        .await
        .unwrap();

    // The page reloads in title order by itself: "11/22/63" sorts first.
    let by_title = wait_for_text(&client, "11/22/63", 10).await;
    assert!(by_title.contains("Showing 1–24"), "{by_title}");
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("sort=title")
    );
    client.close().await.unwrap();
}

#[actix_web::test]
async fn staff_pause_a_queue_run_a_report_and_sort_its_table() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    let client = browser(1280).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;

    // Pause and resume from the programs page.
    client
        .goto(&format!("{}/admin/programs", app.address))
        .await
        .unwrap();
    click(
        &client,
        "form[action='/admin/programs/low_stock/pause'] button",
    )
    .await;
    wait_for_text(&client, "low_stock is paused", 10).await;
    screenshot(&client, "console-programs-paused").await;
    click(
        &client,
        "form[action='/admin/programs/low_stock/resume'] button",
    )
    .await;
    wait_for_text(&client, "low_stock is running its queue again", 10).await;

    // A report with readable labels; its table sorts by a column and has a totals row.
    client
        .goto(&format!("{}/admin/programs/low_stock/run", app.address))
        .await
        .unwrap();
    let form = wait_for_text(&client, "Threshold", 10).await;
    assert!(form.contains("Threshold"), "a readable label");
    fill(&client, "#param_threshold", "30").await;
    click(
        &client,
        "form[action='/admin/programs/low_stock/run'] button",
    )
    .await;
    wait_for_text(&client, "Rows 1–", 20).await;
    click(&client, "table.result-table th:nth-child(4) a").await;
    let sorted = wait_for_text(&client, "Rows 1–", 10).await;
    assert!(sorted.contains("books"), "the totals row counts the books");
    let order = client
        .execute(
            "return Array.from(document.querySelectorAll('table.result-table tbody tr td:nth-child(4)')).map(td => Number(td.textContent));",
            vec![],
        )
        .await
        .unwrap();
    let stock: Vec<f64> = order
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        stock.windows(2).all(|pair| pair[0] >= pair[1]),
        "sorted by stock, largest first: {stock:?}"
    );
    screenshot(&client, "console-report-sorted").await;
    client.close().await.unwrap();
}

/// What the forgotten-password page answers for `who`, with `who` itself taken out: the rest
/// must not tell whether an account has that address.
async fn ask_for_a_reset_link(client: &Client, app: &TestApp, who: &str) -> String {
    client
        .goto(&format!("{}/login", app.address))
        .await
        .unwrap();
    click(client, "a[href='/password-forgotten']").await;
    fill(client, "#who", who).await;
    click(client, "form[action='/password-forgotten'] button").await;
    let answer = css(client, "#forgotten-sent").await.text().await.unwrap();
    assert!(answer.contains(who), "{answer}");
    answer.replace(who, "…")
}

#[actix_web::test]
async fn a_customer_who_forgot_the_password_sets_a_new_one_through_the_mailed_link() {
    use bookstore::db::schema::mails;
    use diesel::prelude::*;

    use crate::mailbox::{SmtpSink, link_in, shop_mailing_to};

    // Alice's confirmed address is alice@example.com; the shop mails through a real server.
    let sink = SmtpSink::started().await;
    let app = shop_mailing_to(&sink).await;
    let client = browser(1280).await;

    // Asking for an unknown address and for hers gets the same answer.
    let for_ghost = ask_for_a_reset_link(&client, &app, "ghost@example.test").await;
    let for_alice = ask_for_a_reset_link(&client, &app, "alice@example.com").await;
    assert_eq!(for_ghost, for_alice, "the same answer either way");
    screenshot(&client, "password-forgotten-sent").await;

    // Her mail arrives (and is recorded sent); the unknown address got none.
    let mail = sink.wait_for(&app, "alice@example.com", 1).await.remove(0);
    assert!(mail.contains("password-reset"), "{mail}");
    let to_ghost = app
        .db(|conn| {
            mails::table
                .filter(mails::recipient.eq("ghost@example.test"))
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(to_ghost, 0, "no mail to an unknown address");

    // The link from the mail opens a form that sets the new password.
    client
        .goto(&link_in(&app, &mail, "/password-reset/"))
        .await
        .unwrap();
    fill(&client, "#password", "a brand new passphrase").await;
    fill(&client, "#password_confirmation", "a brand new passphrase").await;
    click(&client, "form[action^='/password-reset/'] button").await;
    wait_for_text(&client, "The password of alice is set", 10).await;

    // The new password logs her in; the old one no longer does.
    log_in(&client, &app, "alice", "a brand new passphrase").await;
    assert!(body_text(&client).await.contains("Alice Reader"));
    client.delete_all_cookies().await.unwrap();
    client
        .goto(&format!("{}/login", app.address))
        .await
        .unwrap();
    fill(&client, "#login", "alice").await;
    fill(&client, "#password", "alice-reads-books").await;
    click(&client, "form[action='/login'] button[type=submit]").await;
    let refused = wait_for_text(&client, "Wrong login or password.", 10).await;
    assert!(!refused.contains("Log out"), "{refused}");
    client.close().await.unwrap();
}
