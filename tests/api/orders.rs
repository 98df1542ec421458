//! Checkout (`domain::orders`) on its own, against a real database: one transaction that takes
//! the stock, writes the order with its price snapshots and empties the cart, or changes
//! nothing at all; and two checkouts racing for the last copy, one of which wins.

use std::{sync::Barrier, thread};

use bookstore::{
    db::schema::{books, cart_items, users},
    domain::{
        cart::{self, QuantityChange},
        money::Cents,
        orders::{self, CheckoutError, Shortage},
    },
};
use diesel::{Connection, PgConnection, prelude::*};
use uuid::Uuid;

use crate::helpers::fresh_database;

fn user(conn: &mut PgConnection, login: &str) -> i64 {
    users::table
        .filter(users::login.eq(login))
        .select(users::id)
        .first(conn)
        .unwrap()
}

/// A second customer (no one logs in as them here, so the hash is only well-formed).
fn bob(conn: &mut PgConnection) -> i64 {
    diesel::insert_into(users::table)
        .values((
            users::login.eq("bob"),
            users::display_name.eq("Bob"),
            users::password_hash.eq("$argon2id$not-a-real-hash"),
        ))
        .returning(users::id)
        .get_result(conn)
        .unwrap()
}

/// Demo books for sale, with the given (price in cents, stock) each.
fn books_priced(conn: &mut PgConnection, wanted: &[(i32, i32)]) -> Vec<i64> {
    let ids: Vec<i64> = books::table
        .filter(books::hidden.eq(false))
        .order(books::id)
        .select(books::id)
        .limit(wanted.len() as i64)
        .load(conn)
        .unwrap();
    for (id, (price, stock)) in ids.iter().zip(wanted) {
        diesel::update(books::table.find(id))
            .set((books::price_cents.eq(price), books::stock.eq(stock)))
            .execute(conn)
            .unwrap();
    }
    ids
}

fn add(conn: &mut PgConnection, user_id: i64, book_id: i64, copies: i32) {
    cart::add_to_cart(
        conn,
        user_id,
        book_id,
        QuantityChange::parse(&copies.to_string()).unwrap(),
    )
    .unwrap();
}

fn stock(conn: &mut PgConnection, ids: &[i64]) -> Vec<i32> {
    ids.iter()
        .map(|id| {
            books::table
                .find(id)
                .select(books::stock)
                .first(conn)
                .unwrap()
        })
        .collect()
}

fn cart_lines(conn: &mut PgConnection, user_id: i64) -> Vec<(i64, i32)> {
    cart_items::table
        .filter(cart_items::user_id.eq(user_id))
        .order(cart_items::book_id)
        .select((cart_items::book_id, cart_items::quantity))
        .load(conn)
        .unwrap()
}

fn order_count(conn: &mut PgConnection) -> i64 {
    bookstore::db::schema::orders::table
        .count()
        .get_result(conn)
        .unwrap()
}

/// Everything a checkout may change: stock, the user's cart, how many orders there are.
fn snapshot(
    conn: &mut PgConnection,
    user_id: i64,
    ids: &[i64],
) -> (Vec<i32>, Vec<(i64, i32)>, i64) {
    (
        stock(conn, ids),
        cart_lines(conn, user_id),
        order_count(conn),
    )
}

#[test]
fn a_checkout_of_several_lines_takes_the_stock_writes_the_order_and_empties_the_cart() {
    let mut conn = PgConnection::establish(&fresh_database()).unwrap();
    let alice = user(&mut conn, "alice");
    let ids = books_priced(&mut conn, &[(1250, 5), (899, 2), (2000, 1)]);
    for (id, copies) in ids.iter().zip([2, 2, 1]) {
        add(&mut conn, alice, *id, copies);
    }
    let key = Uuid::new_v4();

    let (order_id, placed) = orders::checkout(&mut conn, alice, key).unwrap();

    assert!(placed);
    assert_eq!(stock(&mut conn, &ids), [3, 0, 0]);
    assert_eq!(cart_lines(&mut conn, alice), []);
    // A later price change does not rewrite the order.
    diesel::update(books::table.find(ids[0]))
        .set(books::price_cents.eq(9999))
        .execute(&mut conn)
        .unwrap();
    let order = orders::order_of(&mut conn, alice, order_id)
        .unwrap()
        .expect("hers");
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
    let summaries = orders::orders_of(&mut conn, alice).unwrap();
    assert_eq!(
        summaries
            .iter()
            .map(|o| (o.id, o.items))
            .collect::<Vec<_>>(),
        [(order_id, 5)]
    );

    // The same form submitted again finds the same order and takes nothing more.
    assert_eq!(
        orders::checkout(&mut conn, alice, key).unwrap(),
        (order_id, false)
    );
    assert_eq!(
        (stock(&mut conn, &ids), order_count(&mut conn)),
        (vec![3, 0, 0], 1)
    );
    // Nobody else sees it.
    let bob = bob(&mut conn);
    assert!(
        orders::order_of(&mut conn, bob, order_id)
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_empty_cart_orders_nothing() {
    let mut conn = PgConnection::establish(&fresh_database()).unwrap();
    let alice = user(&mut conn, "alice");

    let refused = orders::checkout(&mut conn, alice, Uuid::new_v4());

    assert!(
        matches!(refused, Err(CheckoutError::EmptyCart)),
        "{refused:?}"
    );
    assert_eq!(order_count(&mut conn), 0);
}

#[test]
fn a_line_over_the_stock_names_the_book_and_changes_nothing() {
    let mut conn = PgConnection::establish(&fresh_database()).unwrap();
    let alice = user(&mut conn, "alice");
    let ids = books_priced(&mut conn, &[(1000, 3), (500, 4)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, alice, ids[1], 3);
    // Sold elsewhere since it went into the cart.
    diesel::update(books::table.find(ids[1]))
        .set(books::stock.eq(2))
        .execute(&mut conn)
        .unwrap();
    let before = snapshot(&mut conn, alice, &ids);

    let refused = orders::checkout(&mut conn, alice, Uuid::new_v4());

    let Err(CheckoutError::NotEnoughStock(shortages)) = refused else {
        panic!("expected a shortage, got {refused:?}");
    };
    let title: String = books::table
        .find(ids[1])
        .select(books::title)
        .first(&mut conn)
        .unwrap();
    let short = Shortage {
        book_id: ids[1],
        title,
        wanted: 3,
        available: 2,
        no_longer_sold: false,
    };
    assert_eq!(shortages, [short]);
    assert_eq!(snapshot(&mut conn, alice, &ids), before, "nothing changed");
}

#[test]
fn a_book_hidden_since_it_was_added_is_not_sold() {
    let mut conn = PgConnection::establish(&fresh_database()).unwrap();
    let alice = user(&mut conn, "alice");
    let ids = books_priced(&mut conn, &[(1000, 3), (500, 4)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, alice, ids[1], 1);
    diesel::update(books::table.find(ids[0]))
        .set(books::hidden.eq(true))
        .execute(&mut conn)
        .unwrap();
    let before = snapshot(&mut conn, alice, &ids);

    let refused = orders::checkout(&mut conn, alice, Uuid::new_v4());

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
    let alice = user(&mut conn, "alice");
    let bob = bob(&mut conn);
    let ids = books_priced(&mut conn, &[(1500, 1)]);
    add(&mut conn, alice, ids[0], 1);
    add(&mut conn, bob, ids[0], 1);

    let start = Barrier::new(2);
    let outcomes: Vec<_> = thread::scope(|scope| {
        let racers: Vec<_> = [alice, bob]
            .into_iter()
            .map(|user_id| {
                let (url, start) = (&url, &start);
                scope.spawn(move || {
                    let mut conn = PgConnection::establish(url).unwrap();
                    start.wait();
                    (
                        user_id,
                        orders::checkout(&mut conn, user_id, Uuid::new_v4()),
                    )
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .collect()
    });

    let winners: Vec<i64> = outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(u, _)| *u)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one wins: {outcomes:?}");
    let (loser, refusal) = outcomes.iter().find(|(_, o)| o.is_err()).unwrap();
    match refusal {
        Err(CheckoutError::NotEnoughStock(shortages)) => {
            let seen: Vec<_> = shortages
                .iter()
                .map(|s| (s.book_id, s.wanted, s.available))
                .collect();
            assert_eq!(seen, [(ids[0], 1, 0)]);
        }
        other => panic!("the other gets the stock refusal, got {other:?}"),
    }
    assert_eq!(stock(&mut conn, &ids), [0], "never oversold");
    assert_eq!(order_count(&mut conn), 1);
    assert_eq!(
        cart_lines(&mut conn, *loser),
        [(ids[0], 1)],
        "the loser keeps the line"
    );
    assert_eq!(cart_lines(&mut conn, winners[0]), []);
}
