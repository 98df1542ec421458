//! Checkout (`domain::orders`) on its own, against a real database: one transaction that takes
//! the stock, writes the order with its price snapshots and empties the cart, or changes
//! nothing at all; two checkouts racing for the last copy, of which one wins; and the
//! constraints standing behind it all.

use bookstore::ids::{BookId, UserId};
use std::{sync::Barrier, thread};

use bookstore::{
    db::schema::{books, cart_items, users},
    domain::{
        cart::{self, QuantityChange},
        money::Cents,
        orders::{self, CheckoutError, Shortage},
    },
};
use diesel::{
    Connection, PgConnection,
    prelude::*,
    result::{DatabaseErrorKind::CheckViolation, Error::DatabaseError},
    sql_query,
};
use uuid::Uuid;

use crate::helpers::fresh_database;

/// A connection to a fresh database, and the id of its demo customer alice.
fn alice() -> (PgConnection, UserId) {
    let mut conn = PgConnection::establish(&fresh_database()).unwrap();
    let alice = alice_in(&mut conn);
    (conn, alice)
}

fn alice_in(conn: &mut PgConnection) -> UserId {
    let alice = users::table
        .filter(users::login.eq("alice"))
        .select(users::id);
    alice.first(conn).unwrap()
}

/// A second customer (no one logs in as them here, so the hash is only well-formed).
fn bob(conn: &mut PgConnection) -> UserId {
    let hash = users::password_hash.eq("$argon2id$not-a-real-hash");
    let bob = (users::login.eq("bob"), users::display_name.eq("Bob"), hash);
    let insert = diesel::insert_into(users::table).values(bob);
    insert.returning(users::id).get_result(conn).unwrap()
}

fn run(conn: &mut PgConnection, statement: &str) -> QueryResult<usize> {
    sql_query(statement).execute(conn)
}

/// Demo books for sale, in id order, each given its (price in cents, stock).
fn books_priced(conn: &mut PgConnection, wanted: &[(i32, i32)]) -> Vec<BookId> {
    let for_sale = books::table
        .filter(books::hidden.eq(false))
        .order(books::id);
    let ids: Vec<BookId> = for_sale
        .select(books::id)
        .limit(wanted.len() as i64)
        .load(conn)
        .unwrap();
    for (id, (price, stock)) in ids.iter().zip(wanted) {
        let update =
            format!("UPDATE books SET price_cents = {price}, stock = {stock} WHERE id = {id}");
        run(conn, &update).unwrap();
    }
    ids
}

fn add(conn: &mut PgConnection, user_id: UserId, book_id: BookId, copies: i32) {
    let change = QuantityChange::parse(&copies.to_string()).unwrap();
    cart::add_to_cart(conn, user_id, book_id, change).unwrap();
}

fn stock(conn: &mut PgConnection, ids: &[BookId]) -> Vec<i32> {
    let these = books::table.filter(books::id.eq_any(ids)).order(books::id);
    these.select(books::stock).load(conn).unwrap()
}

fn cart_lines(conn: &mut PgConnection, user_id: UserId) -> Vec<(BookId, i32)> {
    let lines = cart_items::table.filter(cart_items::user_id.eq(user_id));
    let columns = (cart_items::book_id, cart_items::quantity);
    lines
        .order(cart_items::book_id)
        .select(columns)
        .load(conn)
        .unwrap()
}

fn order_count(conn: &mut PgConnection) -> i64 {
    let orders = bookstore::db::schema::orders::table;
    orders.count().get_result(conn).unwrap()
}

type Snapshot = (Vec<i32>, Vec<(BookId, i32)>, i64);

/// Everything a checkout may change: stock, the user's cart, how many orders there are.
fn snapshot(conn: &mut PgConnection, user_id: UserId, ids: &[BookId]) -> Snapshot {
    (
        stock(conn, ids),
        cart_lines(conn, user_id),
        order_count(conn),
    )
}

#[test]
fn a_checkout_of_several_lines_takes_the_stock_writes_the_order_and_empties_the_cart() {
    let (mut conn, alice) = alice();
    let ids = books_priced(&mut conn, &[(1250, 5), (899, 2), (2000, 1)]);
    for (id, copies) in ids.iter().zip([2, 2, 1]) {
        add(&mut conn, alice, *id, copies);
    }
    let key = Uuid::new_v4();

    let (order_id, placed) =
        orders::checkout(&mut conn, &crate::helpers::customer_acting(), alice, key).unwrap();

    assert!(placed);
    assert_eq!(stock(&mut conn, &ids), [3, 0, 0]);
    assert_eq!(cart_lines(&mut conn, alice), []);
    // A later price change does not rewrite the order.
    run(
        &mut conn,
        &format!("UPDATE books SET price_cents = 1 WHERE id = {}", ids[0]),
    )
    .unwrap();
    let order = orders::order_of(&mut conn, alice, order_id)
        .unwrap()
        .unwrap();
    assert_eq!(order.total, Cents(2 * 1250 + 2 * 899 + 2000));
    let mut lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| (l.book_id, l.unit_price, l.quantity))
        .collect();
    lines.sort();
    let expected = [
        (ids[0], Cents(1250), 2),
        (ids[1], Cents(899), 2),
        (ids[2], Cents(2000), 1),
    ];
    assert_eq!(lines, expected);
    let listed = orders::orders_of(&mut conn, alice).unwrap();
    let listed: Vec<_> = listed.iter().map(|o| (o.id, o.items, o.total)).collect();
    assert_eq!(listed, [(order_id, 5, order.total)]);

    // The same form submitted again finds the same order and takes nothing more.
    let again =
        orders::checkout(&mut conn, &crate::helpers::customer_acting(), alice, key).unwrap();
    assert_eq!(again, (order_id, false));
    let after = (stock(&mut conn, &ids), order_count(&mut conn));
    assert_eq!(after, (vec![3, 0, 0], 1));
    let bob = bob(&mut conn);
    assert!(
        orders::order_of(&mut conn, bob, order_id)
            .unwrap()
            .is_none(),
        "hers only"
    );
}

#[test]
fn an_empty_cart_orders_nothing() {
    let (mut conn, alice) = alice();

    let refused = orders::checkout(
        &mut conn,
        &crate::helpers::customer_acting(),
        alice,
        Uuid::new_v4(),
    );

    assert!(
        matches!(refused, Err(CheckoutError::EmptyCart)),
        "{refused:?}"
    );
    assert_eq!(order_count(&mut conn), 0);
}

#[test]
fn a_total_past_what_an_order_holds_is_refused_and_changes_nothing() {
    let (mut conn, alice) = alice();
    let most = i32::MAX;
    let ids = books_priced(&mut conn, &[(most, most), (most, most), (most, most)]);
    for id in &ids {
        add(&mut conn, alice, *id, 1);
    }
    let every_copy = format!("UPDATE cart_items SET quantity = {most} WHERE user_id = {alice}");
    run(&mut conn, &every_copy).unwrap();
    let before = snapshot(&mut conn, alice, &ids);

    let refused = orders::checkout(
        &mut conn,
        &crate::helpers::customer_acting(),
        alice,
        Uuid::new_v4(),
    );

    assert!(
        matches!(refused, Err(CheckoutError::TotalTooLarge)),
        "{refused:?}"
    );
    assert_eq!(snapshot(&mut conn, alice, &ids), before);
}

#[test]
fn a_line_over_the_stock_names_the_book_and_changes_nothing() {
    let (mut conn, alice) = alice();
    let ids = books_priced(&mut conn, &[(1000, 3), (500, 4)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, alice, ids[1], 3);
    // Sold elsewhere since it went into the cart.
    run(
        &mut conn,
        &format!("UPDATE books SET stock = 2 WHERE id = {}", ids[1]),
    )
    .unwrap();
    let before = snapshot(&mut conn, alice, &ids);

    let refused = orders::checkout(
        &mut conn,
        &crate::helpers::customer_acting(),
        alice,
        Uuid::new_v4(),
    );

    let Err(CheckoutError::NotEnoughStock(shortages)) = refused else {
        panic!("expected a shortage, got {refused:?}");
    };
    let title = books::table
        .find(ids[1])
        .select(books::title)
        .first(&mut conn)
        .unwrap();
    let (wanted, available, no_longer_sold) = (3, 2, false);
    let book_id = ids[1];
    assert_eq!(
        shortages,
        [Shortage {
            book_id,
            title,
            wanted,
            available,
            no_longer_sold
        }]
    );
    assert_eq!(snapshot(&mut conn, alice, &ids), before, "nothing changed");
}

#[test]
fn a_book_hidden_since_it_was_added_is_not_sold() {
    let (mut conn, alice) = alice();
    let ids = books_priced(&mut conn, &[(1000, 3), (500, 4)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, alice, ids[1], 1);
    run(
        &mut conn,
        &format!("UPDATE books SET hidden = true WHERE id = {}", ids[0]),
    )
    .unwrap();
    let before = snapshot(&mut conn, alice, &ids);

    let refused = orders::checkout(
        &mut conn,
        &crate::helpers::customer_acting(),
        alice,
        Uuid::new_v4(),
    );

    let Err(CheckoutError::NotEnoughStock(shortages)) = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    let seen: Vec<_> = shortages
        .iter()
        .map(|s| (s.book_id, s.available, s.no_longer_sold))
        .collect();
    assert_eq!(seen, [(ids[0], 0, true)], "in stock, but none for sale");
    assert_eq!(snapshot(&mut conn, alice, &ids), before, "nothing changed");
}

#[test]
fn two_checkouts_racing_for_the_last_copy_sell_it_once() {
    let url = fresh_database();
    let mut conn = PgConnection::establish(&url).unwrap();
    let (alice, bob) = (alice_in(&mut conn), bob(&mut conn));
    let ids = books_priced(&mut conn, &[(1500, 1)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, bob, ids[0], 1);
    let start = Barrier::new(2);

    let [by_alice, by_bob] = thread::scope(|scope| {
        let racer = |user_id: UserId| {
            let (url, start) = (&url, &start);
            scope.spawn(move || {
                let mut conn = PgConnection::establish(url).unwrap();
                start.wait();
                orders::checkout(
                    &mut conn,
                    &crate::helpers::customer_acting(),
                    user_id,
                    Uuid::new_v4(),
                )
            })
        };
        [racer(alice), racer(bob)].map(|racer| racer.join().unwrap())
    });

    let (winner, loser, refusal) = match (by_alice, by_bob) {
        (Ok(_), Err(refusal)) => (alice, bob, refusal),
        (Err(refusal), Ok(_)) => (bob, alice, refusal),
        both => panic!("exactly one wins, got {both:?}"),
    };
    let message = "Not enough stock for 1 of your books; nothing was ordered.";
    assert_eq!(refusal.to_string(), message);
    let CheckoutError::NotEnoughStock(shortages) = refusal else {
        unreachable!()
    };
    let seen: Vec<_> = shortages
        .iter()
        .map(|s| (s.book_id, s.wanted, s.available))
        .collect();
    assert_eq!(seen, [(ids[0], 1, 0)]);
    assert_eq!(
        (stock(&mut conn, &ids), order_count(&mut conn)),
        (vec![0], 1),
        "sold once"
    );
    assert_eq!(
        cart_lines(&mut conn, loser),
        [(ids[0], 1)],
        "the loser keeps the line"
    );
    assert_eq!(cart_lines(&mut conn, winner), []);
}

/// Behind checkout's own rules, the database refuses what checkout must never write.
#[test]
fn the_constraints_refuse_oversold_stock_and_empty_lines() {
    let (mut conn, alice) = alice();
    let ids = books_priced(&mut conn, &[(1000, 0)]);
    let book = ids[0];
    for statement in [
        format!("UPDATE books SET stock = stock - 1 WHERE id = {book}"),
        format!("INSERT INTO cart_items (user_id, book_id, quantity) VALUES ({alice}, {book}, 0)"),
        format!(
            "INSERT INTO orders (user_id, idempotency_key, total_cents) VALUES ({alice}, gen_random_uuid(), -1)"
        ),
    ] {
        let refused = run(&mut conn, &statement);
        assert!(
            matches!(refused, Err(DatabaseError(CheckViolation, _))),
            "{statement}: {refused:?}"
        );
    }
}
