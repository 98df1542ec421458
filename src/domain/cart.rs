//! The cart: one line per book, a quantity of at least 1, never more than the stock.
//!
//! Quantity changes are one atomic upsert on the (user, book) key, so concurrent adds never lose
//! an update; the rules are checked inside the same transaction, and the CHECK constraint
//! (`quantity >= 1`) stands behind them.

use diesel::{prelude::*, result::DatabaseErrorKind};

use crate::ids::UserId;
use crate::{
    db::schema::{books, cart_items},
    domain::money::Cents,
    ids::{BookId, CartLineId},
};

mod quantity;

pub use quantity::{LineQuantity, MAX_CHANGE, Quantity, QuantityChange};

#[derive(Debug, Clone)]
pub struct CartLine {
    pub id: CartLineId,
    pub book_id: BookId,
    pub title: String,
    pub unit_price: Cents,
    pub quantity: i32,
    pub stock: i32,
}

impl CartLine {
    pub fn line_total(&self) -> Cents {
        // An i32 of cents times an i32 of copies always fits in an i64.
        Cents(self.unit_price.0 * i64::from(self.quantity))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Cart {
    pub lines: Vec<CartLine>,
}

impl Cart {
    pub fn total(&self) -> Cents {
        Cents(self.lines.iter().map(|line| line.line_total().0).sum())
    }

    pub fn item_count(&self) -> i64 {
        self.lines.iter().map(|line| i64::from(line.quantity)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error("That book is not in the catalog.")]
    BookNotFound,
    #[error("That line is not in your cart.")]
    LineNotFound,
    #[error(
        "A cart line holds at least 1 copy (you have {quantity}); use Remove to take it out. Nothing was changed."
    )]
    BelowOne { quantity: i32 },
    #[error(
        "That book is no longer sold: you can lower its quantity or remove it. Nothing was changed."
    )]
    NoLongerSold,
    #[error("Only {available} {} available{}. Nothing was changed.", if *.available == 1 { "copy is" } else { "copies are" }, if *.in_cart > 0 { format!(" and {} already in your cart", .in_cart) } else { String::new() })]
    NotEnoughStock { available: i32, in_cart: i32 },
    /// Setting a line's quantity (not adding to it) above the stock: the answer is the most
    /// the line can be set to, which the page offers to set.
    #[error("{}", at_most_message(.title, *.most))]
    AtMost { title: String, most: i32 },
    #[error(transparent)]
    Database(diesel::result::Error),
}

fn at_most_message(title: &str, most: i32) -> String {
    match most {
        0 => format!("“{title}” is sold out: no copies are left. Nothing was changed."),
        1 => format!(
            "You can have at most 1 copy of “{title}”: that is all we have. Nothing was changed."
        ),
        _ => format!(
            "You can have at most {most} copies of “{title}”: that is all we have. Nothing was changed."
        ),
    }
}

impl From<diesel::result::Error> for CartError {
    fn from(err: diesel::result::Error) -> Self {
        CartError::Database(err)
    }
}

fn current_line_exists(
    conn: &mut PgConnection,
    user_id: UserId,
    book_id: BookId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        cart_items::table
            .filter(cart_items::user_id.eq(user_id))
            .filter(cart_items::book_id.eq(book_id)),
    ))
    .get_result(conn)
}

/// How many copies are in the user's cart (for the header).
pub fn copies_in_cart(conn: &mut PgConnection, user_id: UserId) -> QueryResult<i64> {
    cart_items::table
        .filter(cart_items::user_id.eq(user_id))
        .select(diesel::dsl::sum(cart_items::quantity))
        .first::<Option<i64>>(conn)
        .map(Option::unwrap_or_default)
}

/// The user's cart, oldest line first.
pub fn cart_of(conn: &mut PgConnection, user_id: UserId) -> QueryResult<Cart> {
    let rows: Vec<(CartLineId, BookId, String, Cents, i32, i32)> = cart_items::table
        .inner_join(books::table)
        .filter(cart_items::user_id.eq(user_id))
        .order((cart_items::added_at, cart_items::id))
        .select((
            cart_items::id,
            books::id,
            books::title,
            books::price_cents,
            cart_items::quantity,
            books::stock,
        ))
        .load(conn)?;
    Ok(Cart {
        lines: rows
            .into_iter()
            .map(
                |(id, book_id, title, unit_price, quantity, stock)| CartLine {
                    id,
                    book_id,
                    title,
                    unit_price,
                    quantity,
                    stock,
                },
            )
            .collect(),
    })
}

/// A cart line after a change: its book's title (messages name the book) and how many copies
/// it holds now (0 once removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineChange {
    pub title: String,
    pub quantity: i32,
}

/// Adds `change` copies of a book (a negative change takes copies away). A book already in the
/// cart changes its line's quantity; a new one gets a line.
pub fn add_to_cart(
    conn: &mut PgConnection,
    user_id: UserId,
    book_id: BookId,
    change: QuantityChange,
) -> Result<LineChange, CartError> {
    conn.transaction(|conn| {
        let (title, stock, hidden): (String, i32, bool) = books::table
            .find(book_id)
            .select((books::title, books::stock, books::hidden))
            .first(conn)
            .optional()?
            .ok_or(CartError::BookNotFound)?;
        // A hidden book is out of the shop: no new copies, but a line already in a cart can
        // still shrink.
        if hidden && change.get() > 0 {
            return Err(if current_line_exists(conn, user_id, book_id)? {
                CartError::NoLongerSold
            } else {
                CartError::BookNotFound
            });
        }
        let current: i32 = cart_items::table
            .filter(cart_items::user_id.eq(user_id))
            .filter(cart_items::book_id.eq(book_id))
            .select(cart_items::quantity)
            .for_update()
            .first(conn)
            .optional()?
            .unwrap_or(0);
        check_quantity(current, current + change.get(), stock)?;
        let quantity: i32 = if current > 0 {
            // The line exists and is locked: a plain relative update.
            diesel::update(
                cart_items::table
                    .filter(cart_items::user_id.eq(user_id))
                    .filter(cart_items::book_id.eq(book_id)),
            )
            .set(cart_items::quantity.eq(cart_items::quantity + change.get()))
            .returning(cart_items::quantity)
            .get_result(conn)
            .map_err(|err| below_one_on_check(err, current))?
        } else {
            // A new line (the change is positive here). If another request inserted the line
            // meanwhile, the upsert adds to its quantity instead of failing or overwriting it.
            diesel::insert_into(cart_items::table)
                .values((
                    cart_items::user_id.eq(user_id),
                    cart_items::book_id.eq(book_id),
                    cart_items::quantity.eq(change.get()),
                ))
                .on_conflict((cart_items::user_id, cart_items::book_id))
                .do_update()
                .set(cart_items::quantity.eq(cart_items::quantity + change.get()))
                .returning(cart_items::quantity)
                .get_result(conn)
                .map_err(|err| below_one_on_check(err, current))?
        };
        // Only reached differently from `current + change` when a concurrent insert won the race.
        check_quantity(current, quantity, stock)?;
        Ok(LineChange { title, quantity })
    })
}

fn check_quantity(current: i32, new: i32, stock: i32) -> Result<(), CartError> {
    if new < 1 {
        return Err(CartError::BelowOne { quantity: current });
    }
    if new > stock {
        return Err(CartError::NotEnoughStock {
            available: stock,
            in_cart: current,
        });
    }
    Ok(())
}

/// The CHECK constraint is the last guard; it speaks the same language as the rule.
fn below_one_on_check(err: diesel::result::Error, current: i32) -> CartError {
    match err {
        diesel::result::Error::DatabaseError(DatabaseErrorKind::CheckViolation, _) => {
            CartError::BelowOne { quantity: current }
        }
        other => other.into(),
    }
}

/// The book of one of the user's own lines; another user's line is "not found".
fn own_line_book(
    conn: &mut PgConnection,
    user_id: UserId,
    line_id: CartLineId,
) -> Result<BookId, CartError> {
    cart_items::table
        .find(line_id)
        .filter(cart_items::user_id.eq(user_id))
        .select(cart_items::book_id)
        .first(conn)
        .optional()?
        .ok_or(CartError::LineNotFound)
}

/// The cart page's + and - buttons.
pub fn change_line(
    conn: &mut PgConnection,
    user_id: UserId,
    line_id: CartLineId,
    change: QuantityChange,
) -> Result<LineChange, CartError> {
    let book_id = own_line_book(conn, user_id, line_id)?;
    add_to_cart(conn, user_id, book_id, change)
}

/// The cart page's quantity field: a number of copies, or 0 to take the line out.
pub fn set_line_quantity(
    conn: &mut PgConnection,
    user_id: UserId,
    line_id: CartLineId,
    quantity: LineQuantity,
) -> Result<LineChange, CartError> {
    let quantity = match quantity {
        LineQuantity::Remove => return remove_line(conn, user_id, line_id).map(|line| line.change),
        LineQuantity::Set(quantity) => quantity,
    };
    conn.transaction(|conn| {
        let book_id = own_line_book(conn, user_id, line_id)?;
        let (title, stock, hidden): (String, i32, bool) = books::table
            .find(book_id)
            .select((books::title, books::stock, books::hidden))
            .first(conn)?;
        let current: i32 = cart_items::table
            .find(line_id)
            .select(cart_items::quantity)
            .for_update()
            .first(conn)?;
        // As in `add_to_cart`: a hidden book's line can shrink, not grow.
        if hidden && quantity.get() > current {
            return Err(CartError::NoLongerSold);
        }
        if quantity.get() > stock {
            return Err(CartError::AtMost { title, most: stock });
        }
        check_quantity(current, quantity.get(), stock)?;
        diesel::update(cart_items::table.find(line_id))
            .set(cart_items::quantity.eq(quantity.get()))
            .execute(conn)?;
        Ok(LineChange {
            title,
            quantity: quantity.get(),
        })
    })
}

/// A line taken out of the cart: enough to put it back ("Undo").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedLine {
    pub book_id: BookId,
    /// The title, and 0 copies.
    pub change: LineChange,
    /// The copies it held.
    pub quantity: i32,
}

pub fn remove_line(
    conn: &mut PgConnection,
    user_id: UserId,
    line_id: CartLineId,
) -> Result<RemovedLine, CartError> {
    let (book_id, quantity): (BookId, i32) = diesel::delete(
        cart_items::table
            .find(line_id)
            .filter(cart_items::user_id.eq(user_id)),
    )
    .returning((cart_items::book_id, cart_items::quantity))
    .get_result(conn)
    .optional()?
    .ok_or(CartError::LineNotFound)?;
    let title = books::table
        .find(book_id)
        .select(books::title)
        .first(conn)?;
    Ok(RemovedLine {
        book_id,
        change: LineChange { title, quantity: 0 },
        quantity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(QuantityChange::parse("+3").unwrap().get(), 3);
        assert_eq!(QuantityChange::parse("-1").unwrap().get(), -1);
        assert!(QuantityChange::parse("0").is_err());
        assert!(QuantityChange::parse("lots").is_err());
        assert!(QuantityChange::parse("1000").is_err());
        assert!(QuantityChange::parse("-2147483648").is_err(), "no overflow");
        assert!(Quantity::parse("0").is_err());
        assert_eq!(LineQuantity::parse(" 0 "), Ok(LineQuantity::Remove));
        assert!(LineQuantity::parse("-1").is_err());
        assert_eq!(
            LineQuantity::parse("2"),
            Ok(LineQuantity::Set(Quantity::parse("2").unwrap()))
        );
        assert_eq!(Quantity::parse(" 7 ").unwrap().get(), 7);
    }

    #[test]
    fn messages_say_how_many_are_available() {
        let err = CartError::NotEnoughStock {
            available: 2,
            in_cart: 1,
        };
        assert_eq!(
            err.to_string(),
            "Only 2 copies are available and 1 already in your cart. Nothing was changed."
        );
        let err = CartError::NotEnoughStock {
            available: 1,
            in_cart: 0,
        };
        assert_eq!(
            err.to_string(),
            "Only 1 copy is available. Nothing was changed."
        );
        let err = CartError::AtMost {
            title: "Dune".into(),
            most: 12,
        };
        assert_eq!(
            err.to_string(),
            "You can have at most 12 copies of “Dune”: that is all we have. Nothing was changed."
        );
    }
}
