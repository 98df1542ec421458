//! The catalog: books and their authors.

pub mod book;
pub mod book_form;
pub mod bulk;
pub mod edit;
pub mod goodbooks;
pub mod isbn;
pub mod language;
pub mod rating;
pub mod search;
pub mod sort;
pub mod suggestion;

use std::collections::HashMap;

use diesel::prelude::*;

use crate::{
    db::schema::{authors, book_authors, books},
    domain::{catalog::rating::Rating, collapse_spaces, money::Cents},
    ids::{AuthorId, BookId},
};

pub use book::Book;

/// A book as lists show it: the row plus its authors in cover order.
#[derive(Debug, Clone)]
pub struct BookSummary {
    pub id: BookId,
    pub title: String,
    pub authors: Vec<String>,
    pub year: Option<i32>,
    pub price: Cents,
    pub stock: i32,
    pub average_rating: Option<f32>,
    pub ratings_count: i32,
    /// Out of the catalog (only staff lists show it).
    pub hidden: bool,
}

impl BookSummary {
    pub fn in_stock(&self) -> bool {
        self.stock > 0
    }

    /// "A, B and C".
    pub fn authors_line(&self) -> String {
        authors_line(&self.authors)
    }

    pub fn rating(&self) -> Option<Rating> {
        Rating::of(self.average_rating, self.ratings_count)
    }
}

/// A field of comma-separated author names as the form and the goodbooks data write it, in
/// cover order without duplicates: "J.K. Rowling,  Mary   GrandPré" -> ["J.K. Rowling",
/// "Mary GrandPré"].
pub fn author_names(field: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in field.split(',').map(collapse_spaces) {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// "A, B and C": names as a cover lists them.
fn authors_line(names: &[impl AsRef<str>]) -> String {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How many books the catalog lists (hidden ones are out of it).
pub fn listed_count(conn: &mut PgConnection) -> QueryResult<i64> {
    books::table
        .filter(books::hidden.eq(false))
        .count()
        .get_result(conn)
}

/// The listed books most readers rated first: the best sellers we can honestly name (the
/// goodbooks-10k ratings count; the shop's own sales are too few to rank by).
pub fn bestsellers(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<BookSummary>> {
    let rows: Vec<SummaryRow> = books::table
        .filter(books::hidden.eq(false))
        .select(SummaryRow::as_select())
        .order((books::ratings_count.desc(), books::id))
        .limit(limit)
        .load(conn)?;
    with_authors(conn, rows)
}

/// The listed books added last (an import adds many at once: the id breaks the tie).
pub fn newest(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<BookSummary>> {
    let rows: Vec<SummaryRow> = books::table
        .filter(books::hidden.eq(false))
        .select(SummaryRow::as_select())
        .order((books::created_at.desc(), books::id.desc()))
        .limit(limit)
        .load(conn)?;
    with_authors(conn, rows)
}

/// The columns of `books` a list shows (`SummaryRow::as_select()`).
#[derive(Queryable, Selectable)]
#[diesel(table_name = books, check_for_backend(diesel::pg::Pg))]
pub struct SummaryRow {
    id: BookId,
    title: String,
    year: Option<i32>,
    #[diesel(column_name = price_cents)]
    price: Cents,
    stock: i32,
    average_rating: Option<f32>,
    ratings_count: i32,
    hidden: bool,
}

/// List rows completed with their authors (one query for the whole page).
pub fn with_authors(
    conn: &mut PgConnection,
    rows: Vec<SummaryRow>,
) -> QueryResult<Vec<BookSummary>> {
    let ids: Vec<BookId> = rows.iter().map(|row| row.id).collect();
    let mut authors = authors_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| BookSummary {
            authors: authors.remove(&row.id).unwrap_or_default(),
            id: row.id,
            title: row.title,
            year: row.year,
            price: row.price,
            stock: row.stock,
            average_rating: row.average_rating,
            ratings_count: row.ratings_count,
            hidden: row.hidden,
        })
        .collect())
}

/// Author names of each book, in cover order.
pub fn authors_of(
    conn: &mut PgConnection,
    book_ids: &[BookId],
) -> QueryResult<HashMap<BookId, Vec<String>>> {
    let pairs: Vec<(BookId, String)> = book_authors::table
        .inner_join(authors::table)
        .filter(book_authors::book_id.eq_any(book_ids))
        .order((book_authors::book_id, book_authors::position))
        .select((book_authors::book_id, authors::name))
        .load(conn)?;
    let mut by_book: HashMap<BookId, Vec<String>> = HashMap::new();
    for (book_id, name) in pairs {
        by_book.entry(book_id).or_default().push(name);
    }
    Ok(by_book)
}

/// Everything the book page shows.
#[derive(Debug, Clone)]
pub struct BookDetail {
    pub id: BookId,
    pub book: Book,
    /// (author id, name), in cover order.
    pub authors: Vec<(AuthorId, String)>,
    pub average_rating: Option<f32>,
    pub ratings_count: i32,
    /// Out of the catalog (staff still see it).
    pub hidden: bool,
}

impl BookDetail {
    /// "A, B and C", as lists show them.
    pub fn authors_line(&self) -> String {
        let names: Vec<&str> = self.authors.iter().map(|(_, name)| name.as_str()).collect();
        authors_line(&names)
    }

    pub fn rating(&self) -> Option<Rating> {
        Rating::of(self.average_rating, self.ratings_count)
    }

    /// Authors as one editable line: "A, B".
    pub fn authors_field(&self) -> String {
        self.authors
            .iter()
            .map(|(_, name)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The columns of `books` the book page shows.
#[derive(Queryable, Selectable)]
#[diesel(table_name = books, check_for_backend(diesel::pg::Pg))]
struct BookRow {
    id: BookId,
    #[diesel(embed)]
    book: Book,
    average_rating: Option<f32>,
    ratings_count: i32,
    hidden: bool,
}

pub fn book_detail(conn: &mut PgConnection, id: BookId) -> QueryResult<Option<BookDetail>> {
    let Some(row) = books::table
        .find(id)
        .select(BookRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let authors = book_authors::table
        .inner_join(authors::table)
        .filter(book_authors::book_id.eq(row.id))
        .order(book_authors::position)
        .select((authors::id, authors::name))
        .load(conn)?;
    Ok(Some(BookDetail {
        id: row.id,
        book: row.book,
        authors,
        average_rating: row.average_rating,
        ratings_count: row.ratings_count,
        hidden: row.hidden,
    }))
}
