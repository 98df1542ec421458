//! Staff edits of the catalog: create and update a book from a validated form, hide and show,
//! each recorded in the audit log in the edit's own transaction.

use diesel::{prelude::*, result::DatabaseErrorKind};
use serde_json::json;

use crate::{
    audit::{self, AuditAction, AuditContext},
    db::schema::{book_authors, books},
    domain::catalog::{
        book_form::BookInput,
        bulk::{author_links, ensure_authors},
    },
    ids::BookId,
};

/// Takes a book out of the catalog, or puts it back, by `context`; its rows and order history
/// stay. Returns its title, or `None` (and nothing recorded) when there is no such book.
pub fn set_hidden(
    conn: &mut PgConnection,
    context: &AuditContext,
    id: BookId,
    hidden: bool,
) -> QueryResult<Option<String>> {
    conn.transaction(|conn| {
        let title: Option<String> = diesel::update(books::table.find(id))
            .set((
                books::hidden.eq(hidden),
                books::updated_at.eq(diesel::dsl::now),
            ))
            .returning(books::title)
            .get_result(conn)
            .optional()?;
        if let Some(title) = &title {
            let action = if hidden {
                AuditAction::BookHidden
            } else {
                AuditAction::BookUnhidden
            };
            let details = json!({ "title": title });
            audit::record(conn, context, action, &format!("book {id}"), details)?;
        }
        Ok(title)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("Another book already has this ISBN.")]
    IsbnTaken,
    #[error("No such book.")]
    NotFound,
    #[error("Copies were sold while you edited: the stock is now {now}. Check it and save again.")]
    StockChanged { now: i32 },
    #[error(transparent)]
    Database(diesel::result::Error),
}

impl From<diesel::result::Error> for EditError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                EditError::IsbnTaken
            }
            diesel::result::Error::NotFound => EditError::NotFound,
            other => EditError::Database(other),
        }
    }
}

/// Adds a book, by `context`; returns its id.
pub fn create_book(
    conn: &mut PgConnection,
    context: &AuditContext,
    input: &BookInput,
) -> Result<BookId, EditError> {
    conn.transaction(|conn| {
        let id: BookId = diesel::insert_into(books::table)
            .values(&input.book)
            .returning(books::id)
            .get_result(conn)?;
        link_authors(conn, id, &input.authors)?;
        record_saved(conn, context, AuditAction::BookCreated, id, input)?;
        Ok(id)
    })
}

/// Replaces a book's fields and authors, by `context`.
pub fn update_book(
    conn: &mut PgConnection,
    context: &AuditContext,
    id: BookId,
    input: &BookInput,
) -> Result<(), EditError> {
    conn.transaction(|conn| {
        let target = books::table.find(id).filter(
            books::stock
                .eq(input.stock_was.unwrap_or(input.book.stock))
                .or(input
                    .stock_was
                    .is_none()
                    .into_sql::<diesel::sql_types::Bool>()),
        );
        let updated = diesel::update(target)
            .set((&input.book, books::updated_at.eq(diesel::dsl::now)))
            .execute(conn)?;
        if updated == 0 {
            let now: Option<i32> = books::table
                .find(id)
                .select(books::stock)
                .first(conn)
                .optional()?;
            return Err(match now {
                Some(now) => EditError::StockChanged { now },
                None => EditError::NotFound,
            });
        }
        diesel::delete(book_authors::table.filter(book_authors::book_id.eq(id))).execute(conn)?;
        link_authors(conn, id, &input.authors)?;
        record_saved(conn, context, AuditAction::BookEdited, id, input)?;
        Ok(())
    })
}

/// The audit record of a book added or edited: what a shopper sees change first.
fn record_saved(
    conn: &mut PgConnection,
    context: &AuditContext,
    action: AuditAction,
    id: BookId,
    input: &BookInput,
) -> QueryResult<()> {
    let details = json!({ "title": input.book.title, "price": input.book.price.plain(), "stock": input.book.stock });
    audit::record(conn, context, action, &format!("book {id}"), details)
}

fn link_authors(conn: &mut PgConnection, book_id: BookId, names: &[String]) -> QueryResult<()> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = ensure_authors(conn, &refs)?;
    diesel::insert_into(book_authors::table)
        .values(&author_links(book_id, names, &ids))
        .execute(conn)?;
    Ok(())
}
