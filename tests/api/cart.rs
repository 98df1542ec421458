//! Cart, checkout and orders: the rules, ownership, and concurrency.

use std::collections::HashSet;

use bookstore::{
    db::schema::{books, cart_items, order_lines, orders, users},
    domain::accounts::hash_password,
    ids::CartLineId,
};
use diesel::prelude::*;
use tokio::task::JoinSet;

use crate::helpers::{TestApp, assert_is_redirect_to, csrf_token_in, spawn_app};

const ALICE: (&str, &str) = ("alice", "alice-reads-books");

/// A book with a known stock and price, so tests do not depend on the seeded values.
async fn book_with(app: &TestApp, stock: i32, price_cents: i32) -> i64 {
    app.db(move |conn| {
        let id: i64 = books::table
            .order(books::id)
            .select(books::id)
            .first(conn)
            .unwrap();
        diesel::update(books::table.find(id))
            .set((books::stock.eq(stock), books::price_cents.eq(price_cents)))
            .execute(conn)
            .unwrap();
        id
    })
    .await
}

async fn add(app: &TestApp, book_id: i64, quantity: &str) -> reqwest::Response {
    let book = book_id.to_string();
    app.submit(
        &format!("/books/{book_id}"),
        "/cart/items",
        &[("book_id", &book), ("quantity", quantity)],
    )
    .await
}

async fn quantity_in_cart(app: &TestApp, login: &'static str, book_id: i64) -> Option<i32> {
    app.db(move |conn| {
        cart_items::table
            .inner_join(users::table)
            .filter(users::login.eq(login))
            .filter(cart_items::book_id.eq(book_id))
            .select(cart_items::quantity)
            .first(conn)
            .optional()
            .unwrap()
    })
    .await
}

async fn line_id(app: &TestApp, login: &'static str, book_id: i64) -> CartLineId {
    app.db(move |conn| {
        cart_items::table
            .inner_join(users::table)
            .filter(users::login.eq(login))
            .filter(cart_items::book_id.eq(book_id))
            .select(cart_items::id)
            .first(conn)
            .unwrap()
    })
    .await
}

async fn stock_of(app: &TestApp, book_id: i64) -> i32 {
    app.db(move |conn| {
        books::table
            .find(book_id)
            .select(books::stock)
            .first(conn)
            .unwrap()
    })
    .await
}

/// Customers created straight in the database (hashing once), each logged in over HTTP.
async fn customers(app: &TestApp, count: usize) -> Vec<TestApp> {
    let hash = hash_password("shopper password").unwrap();
    app.db(move |conn| {
        let rows: Vec<_> = (0..count)
            .map(|i| {
                (
                    users::login.eq(format!("shopper{i}")),
                    users::display_name.eq(format!("Shopper {i}")),
                    users::password_hash.eq(hash.clone()),
                )
            })
            .collect();
        diesel::insert_into(users::table)
            .values(&rows)
            .execute(conn)
            .unwrap();
    })
    .await;
    let mut browsers = Vec::new();
    for i in 0..count {
        let browser = app.another_browser();
        browser
            .log_in_as(&format!("shopper{i}"), "shopper password")
            .await;
        browsers.push(browser);
    }
    browsers
}

#[tokio::test]
async fn adding_a_book_twice_adds_up() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 1250).await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    assert_is_redirect_to(&add(&app, book, "2").await, &format!("/books/{book}"));
    add(&app, book, "3").await;

    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(5));
    let cart = app.page("/cart").await;
    assert!(cart.contains("value=\"5\""), "the quantity field shows 5");
    assert!(cart.contains("$62.50"), "line and cart total: 5 x $12.50");
    assert!(
        app.page("/books")
            .await
            .contains("<span class=\"cart-count\" aria-label=\"5 in your cart\">5</span>"),
        "every page's header counts the copies in the cart"
    );
}

#[tokio::test]
async fn a_quantity_never_goes_below_one() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "1").await;
    let line = line_id(&app, "alice", book).await;

    let minus = app
        .submit(
            "/cart",
            &format!("/cart/items/{line}/change"),
            &[("change", "-1")],
        )
        .await;
    let message = app.page("/cart").await;
    let set_negative = app
        .submit(
            "/cart",
            &format!("/cart/items/{line}/quantity"),
            &[("quantity", "-2")],
        )
        .await;
    let negative_add = add(&app, book, "-5").await;

    assert_is_redirect_to(&minus, "/cart");
    assert!(
        message.contains("A cart line holds at least 1 copy"),
        "a clear message"
    );
    assert_is_redirect_to(&set_negative, "/cart");
    assert_is_redirect_to(&negative_add, &format!("/books/{book}"));
    assert_eq!(
        quantity_in_cart(&app, "alice", book).await,
        Some(1),
        "nothing changed"
    );
}

#[tokio::test]
async fn adding_more_than_the_stock_says_how_many_are_available() {
    let app = spawn_app().await;
    let book = book_with(&app, 2, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    add(&app, book, "3").await;
    let page = app.page(&format!("/books/{book}")).await;

    assert!(page.contains("Only 2 copies are available"), "{page}");
    assert_eq!(quantity_in_cart(&app, "alice", book).await, None);
}

#[tokio::test]
async fn setting_more_than_the_stock_offers_the_most_there_is() {
    let app = spawn_app().await;
    let book = book_with(&app, 12, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "3").await;
    let line = line_id(&app, "alice", book).await;
    let set = |quantity: &'static str| {
        let app = app.clone();
        async move {
            let path = format!("/cart/items/{line}/quantity");
            app.submit("/cart", &path, &[("quantity", quantity)]).await
        }
    };

    assert_is_redirect_to(&set("999").await, "/cart");
    let cart = app.page("/cart").await;
    assert!(
        cart.contains("You can have at most 12 copies of “"),
        "{cart}"
    );
    assert!(
        !cart.contains("already in your cart"),
        "not worded as an add"
    );
    assert!(cart.contains(&format!(
        "<form class=\"flash-action\" method=\"post\" action=\"/cart/items/{line}/quantity\">"
    )));
    assert!(cart.contains("<input type=\"hidden\" name=\"quantity\" value=\"12\">"));
    assert!(cart.contains("Set it to 12"));
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(3));

    // The offer's button posts 12.
    assert_is_redirect_to(&set("12").await, "/cart");
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(12));

    // Typed past the browser's checks, a negative or a word gets the server's own message.
    for (typed, message) in [
        (
            "-1",
            "A cart line holds at least 1 copy; 0 or Remove takes it out.",
        ),
        (
            "abc",
            "Type a number of copies from 0 (takes the line out) to 999.",
        ),
    ] {
        assert_is_redirect_to(&set(typed).await, "/cart");
        let cart = app.page("/cart").await;
        assert!(cart.contains(message), "{typed}: {cart}");
        assert!(cart.contains("Nothing was changed."));
        assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(12));
    }
}

#[tokio::test]
async fn plus_minus_and_remove_work_on_your_own_lines() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "2").await;
    let line = line_id(&app, "alice", book).await;

    app.submit(
        "/cart",
        &format!("/cart/items/{line}/change"),
        &[("change", "1")],
    )
    .await;
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(3));
    app.submit(
        "/cart",
        &format!("/cart/items/{line}/change"),
        &[("change", "-1")],
    )
    .await;
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(2));
    app.submit(
        "/cart",
        &format!("/cart/items/{line}/quantity"),
        &[("quantity", "7")],
    )
    .await;
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(7));
    app.submit("/cart", &format!("/cart/items/{line}/remove"), &[])
        .await;
    assert_eq!(quantity_in_cart(&app, "alice", book).await, None);
    assert!(app.page("/cart").await.contains("Your cart is empty"));
}

#[tokio::test]
async fn an_add_before_logging_in_happens_right_after_it() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;

    // A visitor who is not logged in clicks "Add to cart" on the book page...
    let response = app
        .client
        .post(format!("{}/cart/items", app.address))
        .header("Origin", app.address.clone())
        .form(&[("book_id", book.to_string()), ("quantity", "2".into())])
        .send()
        .await
        .unwrap();
    assert_is_redirect_to(&response, "/login?next=%2Fcart");
    assert!(
        app.page("/login?next=%2Fcart")
            .await
            .contains("the book goes into your cart")
    );
    let count: i64 = app
        .db(|conn| cart_items::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(count, 0, "nothing is added before the log-in");

    // ...logs in, and lands on the cart with the book in it.
    let logged_in = app.log_in(ALICE.0, ALICE.1).await;
    assert_is_redirect_to(&logged_in, "/cart");
    let cart = app.page("/cart").await;
    assert!(
        cart.contains("” to your cart (you now have 2).")
            && cart.contains("<a class=\"flash-action\" href=\"/cart\">View your cart</a>"),
        "the flash says so, naming the book"
    );
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(2));
    assert_is_redirect_to(
        &app.another_browser().get("/cart").await,
        "/login?next=%2Fcart",
    );
}

#[tokio::test]
async fn a_new_customer_finds_the_pending_book_in_their_cart() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    app.client
        .post(format!("{}/cart/items", app.address))
        .header("Origin", app.address.clone())
        .form(&[("book_id", book.to_string()), ("quantity", "1".into())])
        .send()
        .await
        .unwrap();

    let registered = app
        .register("newreader", "New Reader", "a good long password")
        .await;

    assert_is_redirect_to(&registered, "/cart");
    assert_eq!(quantity_in_cart(&app, "newreader", book).await, Some(1));
}

#[tokio::test]
async fn another_users_cart_line_cannot_be_touched() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    let bob = customers(&app, 1).await.remove(0);
    add(&bob, book, "2").await;
    let bobs_line = line_id(&app, "shopper0", book).await;
    app.log_in_as(ALICE.0, ALICE.1).await;

    let change = app
        .submit(
            "/cart",
            &format!("/cart/items/{bobs_line}/change"),
            &[("change", "1")],
        )
        .await;
    let set = app
        .submit(
            "/cart",
            &format!("/cart/items/{bobs_line}/quantity"),
            &[("quantity", "9")],
        )
        .await;
    let remove = app
        .submit("/cart", &format!("/cart/items/{bobs_line}/remove"), &[])
        .await;

    for response in [change, set, remove] {
        assert_eq!(response.status(), 404);
    }
    assert_eq!(quantity_in_cart(&app, "shopper0", book).await, Some(2));
    assert!(
        !app.page("/cart")
            .await
            .contains(&format!("/cart/items/{bobs_line}/"))
    );
}

#[tokio::test]
async fn twenty_concurrent_adds_of_one_copy_add_twenty() {
    let app = spawn_app().await;
    let book = book_with(&app, 100, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "1").await;
    let token = csrf_token_in(&app.page(&format!("/books/{book}")).await);

    let mut adds = JoinSet::new();
    for _ in 0..20 {
        let (app, token) = (app.clone(), token.clone());
        adds.spawn(async move {
            app.post_form(
                "/cart/items",
                &[
                    ("book_id", &book.to_string()),
                    ("quantity", "1"),
                    ("csrf_token", &token),
                ],
            )
            .await
            .status()
        });
    }
    let statuses: Vec<_> = adds.join_all().await;

    assert!(statuses.iter().all(|status| *status == 303), "{statuses:?}");
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(21));
}

#[tokio::test]
async fn twenty_shoppers_racing_for_five_copies_buy_exactly_five() {
    let app = spawn_app().await;
    let book = book_with(&app, 5, 1000).await;
    let shoppers = customers(&app, 20).await;
    let mut forms = Vec::new();
    for shopper in &shoppers {
        add(shopper, book, "1").await;
        let cart = shopper.page("/cart").await;
        let key = cart
            .split("name=\"idempotency_key\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        forms.push((shopper.clone(), csrf_token_in(&cart), key));
    }

    let mut checkouts = JoinSet::new();
    for (shopper, token, key) in forms {
        checkouts.spawn(async move {
            let response = shopper
                .post_form(
                    "/checkout",
                    &[("csrf_token", &token), ("idempotency_key", &key)],
                )
                .await;
            (response.status().as_u16(), response.text().await.unwrap())
        });
    }
    let outcomes = checkouts.join_all().await;

    let placed = outcomes.iter().filter(|(status, _)| *status == 303).count();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(status, _)| *status == 409)
        .collect();
    assert_eq!(
        placed,
        5,
        "{:?}",
        outcomes.iter().map(|o| o.0).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 15);
    assert!(
        refused
            .iter()
            .all(|(_, page)| page.contains("Not enough stock") && page.contains("Only 0 in stock"))
    );
    assert_eq!(stock_of(&app, book).await, 0);
    let sold: Option<i64> = app
        .db(move |conn| {
            order_lines::table
                .filter(order_lines::book_id.eq(book))
                .select(diesel::dsl::sum(order_lines::quantity))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(sold, Some(5));
}

#[tokio::test]
async fn a_double_submitted_checkout_places_one_order() {
    let app = spawn_app().await;
    let book = book_with(&app, 10, 1500).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "2").await;
    let cart = app.page("/cart").await;
    let token = csrf_token_in(&cart);
    let key = cart
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let first = app
        .post_form(
            "/checkout",
            &[("csrf_token", &token), ("idempotency_key", &key)],
        )
        .await;
    let second = app
        .post_form(
            "/checkout",
            &[("csrf_token", &token), ("idempotency_key", &key)],
        )
        .await;

    let location = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/orders/"));
    assert_is_redirect_to(&second, &location);
    let order_count: i64 = app
        .db(|conn| orders::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(order_count, 1);
    assert_eq!(stock_of(&app, book).await, 8);
    let order = app.page(&location).await;
    assert!(order.contains("Thank you! Your order"));
    assert!(order.contains("$30.00"));
    assert!(app.page("/cart").await.contains("Your cart is empty"));
}

#[tokio::test]
async fn orders_keep_the_price_paid_and_stay_private() {
    let app = spawn_app().await;
    let book = book_with(&app, 10, 1500).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "1").await;
    let cart = app.page("/cart").await;
    let key = cart
        .split("name=\"idempotency_key\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
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

    app.db(move |conn| {
        diesel::update(books::table.find(book))
            .set(books::price_cents.eq(9900))
            .execute(conn)
            .unwrap()
    })
    .await;

    let order = app.page(&order_path).await;
    assert!(
        order.contains("$15.00") && !order.contains("$99.00"),
        "the snapshot price"
    );
    assert!(app.page("/orders").await.contains(&order_path));
    let stranger = customers(&app, 1).await.remove(0);
    assert_eq!(stranger.get(&order_path).await.status(), 404);
    assert!(!stranger.page("/orders").await.contains(&order_path));
    let ids: HashSet<i64> = app
        .db(|conn| {
            orders::table
                .select(orders::id)
                .load(conn)
                .unwrap()
                .into_iter()
                .collect()
        })
        .await;
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_quantity_of_zero_takes_the_line_out_and_undo_puts_it_back() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    app.db(move |conn| {
        diesel::update(books::table.find(book))
            .set(books::title.eq("The Undo Test"))
            .execute(conn)
            .unwrap()
    })
    .await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "3").await;
    let line = line_id(&app, "alice", book).await;

    let set_zero = app
        .submit(
            "/cart",
            &format!("/cart/items/{line}/quantity"),
            &[("quantity", "0")],
        )
        .await;
    assert_is_redirect_to(&set_zero, "/cart");
    assert_eq!(
        quantity_in_cart(&app, "alice", book).await,
        None,
        "the line is gone"
    );
    let cart = app.page("/cart").await;
    assert!(
        cart.contains("Removed “The Undo Test” from your cart."),
        "the message names the book: {cart}"
    );
    assert!(cart.contains("Your cart is empty"));
    assert!(cart.contains(&format!(
        "<input type=\"hidden\" name=\"book_id\" value=\"{book}\">"
    )));
    assert!(cart.contains("<input type=\"hidden\" name=\"quantity\" value=\"3\">"));

    // Undo: the message's button posts the same copies back, and the customer stays on the cart.
    let book_field = book.to_string();
    let undo = app
        .submit(
            "/cart",
            "/cart/items",
            &[
                ("book_id", &book_field),
                ("quantity", "3"),
                ("then", "cart"),
            ],
        )
        .await;
    assert_is_redirect_to(&undo, "/cart");
    assert_eq!(quantity_in_cart(&app, "alice", book).await, Some(3));
}

#[tokio::test]
async fn a_book_hidden_while_in_a_cart_can_only_leave_it() {
    let app = spawn_app().await;
    let book = book_with(&app, 20, 999).await;
    app.log_in_as(ALICE.0, ALICE.1).await;
    add(&app, book, "2").await;
    let line = line_id(&app, "alice", book).await;
    app.db(move |conn| {
        diesel::update(books::table.find(book))
            .set(books::hidden.eq(true))
            .execute(conn)
            .unwrap()
    })
    .await;

    let more = app
        .submit(
            "/cart",
            &format!("/cart/items/{line}/quantity"),
            &[("quantity", "5")],
        )
        .await;
    assert_is_redirect_to(&more, "/cart");
    let cart = app.page("/cart").await;
    assert!(cart.contains("That book is no longer sold"), "{cart}");
    assert_eq!(
        quantity_in_cart(&app, "alice", book).await,
        Some(2),
        "nothing changed"
    );

    // Checking out says what to do about it.
    let key = uuid::Uuid::new_v4().to_string();
    let refused = app
        .submit("/cart", "/checkout", &[("idempotency_key", &key)])
        .await;
    assert_eq!(refused.status(), 409);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("No longer available: remove it")
    );

    let fewer = app
        .submit(
            "/cart",
            &format!("/cart/items/{line}/quantity"),
            &[("quantity", "1")],
        )
        .await;
    assert_is_redirect_to(&fewer, "/cart");
    assert_eq!(
        quantity_in_cart(&app, "alice", book).await,
        Some(1),
        "it can shrink"
    );
}
