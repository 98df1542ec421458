//! Staff edits of the catalog: create and update a book from a validated form, hide and show.

use diesel::{prelude::*, result::DatabaseErrorKind};

use crate::{
    db::schema::{book_authors, books},
    domain::{
        catalog::{
            book_form::BookInput,
            bulk::{author_links, ensure_authors},
        },
        ids::BookId,
    },
};

/// Takes a book out of the catalog, or puts it back; its rows and order history stay. Returns
/// its title, or `None` when there is no such book.
pub fn set_hidden(
    conn: &mut PgConnection,
    id: BookId,
    hidden: bool,
) -> QueryResult<Option<String>> {
    diesel::update(books::table.find(id))
        .set((
            books::hidden.eq(hidden),
            books::updated_at.eq(diesel::dsl::now),
        ))
        .returning(books::title)
        .get_result(conn)
        .optional()
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

/// Adds a book; returns its id.
pub fn create_book(conn: &mut PgConnection, input: &BookInput) -> Result<BookId, EditError> {
    conn.transaction(|conn| {
        let id: BookId = diesel::insert_into(books::table)
            .values(&input.book)
            .returning(books::id)
            .get_result(conn)?;
        link_authors(conn, id, &input.authors)?;
        Ok(id)
    })
}

/// Replaces a book's fields and authors.
pub fn update_book(
    conn: &mut PgConnection,
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
        Ok(())
    })
}

fn link_authors(conn: &mut PgConnection, book_id: BookId, names: &[String]) -> QueryResult<()> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = ensure_authors(conn, &refs)?;
    diesel::insert_into(book_authors::table)
        .values(&author_links(book_id, names, &ids))
        .execute(conn)?;
    Ok(())
}
