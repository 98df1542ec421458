//! Checkout and orders. A checkout is one transaction that never oversells: it locks the
//! user (one checkout at a time per user), the cart lines and the books (in id order, so two
//! checkouts never deadlock), checks every line against stock, then decrements stock, writes
//! the order with price snapshots and empties the cart. If any line is short, nothing changes.
//! The order's confirmation mail is queued in that same transaction (an outbox): no order
//! without its mail, no mail for an order that rolled back.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::{
    audit::AuditContext,
    db::schema::{books, cart_items, order_lines, orders, users},
    domain::{
        accounts::email,
        money::Cents,
        outbox::{self, NewMail},
    },
    ids::{BookId, CartLineId, OrderId, UserId},
    mail::MailKind,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub book_id: BookId,
    pub title: String,
    pub wanted: i32,
    pub available: i32,
    /// Hidden from the catalog since it was added: none can be bought.
    pub no_longer_sold: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("Your cart is empty.")]
    EmptyCart,
    #[error("The order's total is more than one order can hold; nothing was ordered.")]
    TotalTooLarge,
    #[error("Not enough stock for {} of your books; nothing was ordered.", .0.len())]
    NotEnoughStock(Vec<Shortage>),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The placed order's id, and whether this call placed it (`false`: the same form was already
/// submitted, and this is that order).
pub fn checkout(
    conn: &mut PgConnection,
    context: &AuditContext,
    user_id: UserId,
    idempotency_key: Uuid,
) -> Result<(OrderId, bool), CheckoutError> {
    conn.transaction(|conn| {
        users::table
            .find(user_id)
            .select(users::id)
            .for_update()
            .first::<UserId>(conn)?;
        if let Some(order_id) = order_for_key(conn, user_id, idempotency_key)? {
            return Ok((order_id, false));
        }
        let locked: Vec<(CartLineId, BookId, i32)> = cart_items::table
            .filter(cart_items::user_id.eq(user_id))
            .order(cart_items::book_id)
            .select((cart_items::id, cart_items::book_id, cart_items::quantity))
            .for_update()
            .load(conn)?;
        let line_ids: Vec<CartLineId> = locked.iter().map(|(id, _, _)| *id).collect();
        let lines: Vec<(BookId, i32)> = locked
            .iter()
            .map(|(_, book, quantity)| (*book, *quantity))
            .collect();
        if lines.is_empty() {
            return Err(CheckoutError::EmptyCart);
        }
        let book_ids: Vec<BookId> = lines.iter().map(|(book_id, _)| *book_id).collect();
        let stocked: Vec<(BookId, String, Cents, i32, bool)> = books::table
            .filter(books::id.eq_any(&book_ids))
            .order(books::id)
            .select((
                books::id,
                books::title,
                books::price_cents,
                books::stock,
                books::hidden,
            ))
            .for_update()
            .load(conn)?;
        // A book hidden since it was added is not for sale: none available.
        let shortages: Vec<Shortage> = lines
            .iter()
            .zip(&stocked)
            .filter(|((_, wanted), (_, _, _, stock, hidden))| *hidden || wanted > stock)
            .map(
                |((book_id, wanted), (_, title, _, stock, hidden))| Shortage {
                    book_id: *book_id,
                    title: title.clone(),
                    wanted: *wanted,
                    available: if *hidden { 0 } else { *stock },
                    no_longer_sold: *hidden,
                },
            )
            .collect();
        if !shortages.is_empty() {
            return Err(CheckoutError::NotEnoughStock(shortages));
        }
        let total = lines
            .iter()
            .zip(&stocked)
            .try_fold(Cents(0), |total, ((_, quantity), (_, _, price, _, _))| {
                total.checked_add(price.times(*quantity)?)
            })
            .ok_or(CheckoutError::TotalTooLarge)?;
        for (book_id, quantity) in &lines {
            diesel::update(books::table.find(book_id))
                .set(books::stock.eq(books::stock - quantity))
                .execute(conn)?;
        }
        let order_id: OrderId = diesel::insert_into(orders::table)
            .values((
                orders::user_id.eq(user_id),
                orders::idempotency_key.eq(idempotency_key),
                orders::total_cents.eq(total),
            ))
            .returning(orders::id)
            .get_result(conn)?;
        let order_rows: Vec<_> = lines
            .iter()
            .zip(&stocked)
            .map(|((book_id, quantity), (_, title, price, _, _))| {
                (
                    order_lines::order_id.eq(order_id),
                    order_lines::book_id.eq(*book_id),
                    order_lines::title.eq(title.clone()),
                    order_lines::unit_price_cents.eq(*price),
                    order_lines::quantity.eq(*quantity),
                )
            })
            .collect();
        diesel::insert_into(order_lines::table)
            .values(&order_rows)
            .execute(conn)?;
        // Only the lines ordered: one added in another tab meanwhile stays in the cart.
        diesel::delete(cart_items::table.filter(cart_items::id.eq_any(&line_ids))).execute(conn)?;
        // To the confirmed address only: an unconfirmed one may be someone else's.
        if let Some(address) = email::address_of(conn, user_id)? {
            let mail = NewMail {
                kind: MailKind::OrderConfirmation,
                recipient: address,
                user_id: Some(user_id),
                subject: format!("Your Bookstore order #{order_id}"),
                data: json!({ "order": order_id }),
            };
            outbox::queue(conn, context, mail)?;
        }
        Ok((order_id, true))
    })
}

fn order_for_key(
    conn: &mut PgConnection,
    user_id: UserId,
    key: Uuid,
) -> QueryResult<Option<OrderId>> {
    orders::table
        .filter(orders::user_id.eq(user_id))
        .filter(orders::idempotency_key.eq(key))
        .select(orders::id)
        .first(conn)
        .optional()
}

#[derive(Debug, Clone)]
pub struct OrderSummary {
    pub id: OrderId,
    pub placed_at: DateTime<Utc>,
    pub total: Cents,
    pub items: i64,
}

impl OrderSummary {
    /// What the account page shows as the order's status. An order has one state today: the
    /// checkout transaction that creates it also takes its books from stock, and the shop
    /// neither ships nor cancels orders yet. A status column would change only this.
    pub fn status(&self) -> &'static str {
        "Placed"
    }
}

#[derive(Debug, Clone)]
pub struct OrderLine {
    pub book_id: BookId,
    pub title: String,
    pub unit_price: Cents,
    pub quantity: i32,
}

impl OrderLine {
    pub fn line_total(&self) -> Cents {
        // An i32 of cents times an i32 of copies always fits in an i64.
        Cents(self.unit_price.0 * i64::from(self.quantity))
    }
}

#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub id: OrderId,
    pub placed_at: DateTime<Utc>,
    pub total: Cents,
    pub lines: Vec<OrderLine>,
}

/// The user's orders, newest first.
pub fn orders_of(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Vec<OrderSummary>> {
    let rows: Vec<(OrderId, DateTime<Utc>, Cents, Option<i64>)> = orders::table
        .inner_join(order_lines::table)
        .filter(orders::user_id.eq(user_id))
        .group_by(orders::id)
        .order(orders::created_at.desc())
        .select((
            orders::id,
            orders::created_at,
            orders::total_cents,
            diesel::dsl::sum(order_lines::quantity),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, placed_at, total, items)| OrderSummary {
            id,
            placed_at,
            total,
            items: items.unwrap_or(0),
        })
        .collect())
}

/// One of the user's own orders; another user's order is `None`, like a missing one.
pub fn order_of(
    conn: &mut PgConnection,
    user_id: UserId,
    order_id: OrderId,
) -> QueryResult<Option<OrderDetail>> {
    let Some((id, placed_at, total)) = orders::table
        .find(order_id)
        .filter(orders::user_id.eq(user_id))
        .select((orders::id, orders::created_at, orders::total_cents))
        .first::<(OrderId, DateTime<Utc>, Cents)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let lines = order_lines::table
        .filter(order_lines::order_id.eq(id))
        .order(order_lines::title)
        .select((
            order_lines::book_id,
            order_lines::title,
            order_lines::unit_price_cents,
            order_lines::quantity,
        ))
        .load::<(BookId, String, Cents, i32)>(conn)?
        .into_iter()
        .map(|(book_id, title, unit_price, quantity)| OrderLine {
            book_id,
            title,
            unit_price,
            quantity,
        })
        .collect();
    Ok(Some(OrderDetail {
        id,
        placed_at,
        total,
        lines,
    }))
}
