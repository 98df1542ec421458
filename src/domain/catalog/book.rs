//! A book's own fields, in one place: what the staff form and an import produce, what both
//! write to `books`, and what the book page reads back. A new field of a book is added here
//! (the diesel derives make it a column of every insert, edit and read at once); only what
//! really differs is written beside it: its form field as typed, its column in the goodbooks
//! data, and whether an import may overwrite it.

use diesel::prelude::*;

use crate::{
    db::schema::books,
    domain::{
        catalog::{isbn::Isbn, language},
        money::Cents,
    },
};

/// The columns of `books` that say what a book is and what the shop asks for it. Its authors
/// are rows of their own (`book_authors`), kept beside it by the structs that embed it; its
/// id, popularity and visibility belong to the row, not to what staff type.
///
/// An empty optional field clears its column in an edit (`treat_none_as_null`), as the form
/// means it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(
    table_name = books,
    check_for_backend(diesel::pg::Pg),
    treat_none_as_null = true
)]
pub struct Book {
    pub title: String,
    pub year: Option<i32>,
    pub isbn: Option<Isbn>,
    /// An ISO 639 code, optionally with a region ("eng", "en-US").
    pub language: Option<String>,
    pub description: String,
    #[diesel(column_name = price_cents)]
    pub price: Cents,
    pub stock: i32,
}

impl Book {
    pub fn in_stock(&self) -> bool {
        self.stock > 0
    }

    /// "1997", "720 BC" or "unknown".
    pub fn year_label(&self) -> String {
        match self.year {
            Some(year) if year < 0 => format!("{} BC", -year),
            Some(year) => year.to_string(),
            None => "unknown".to_owned(),
        }
    }

    /// "English (US)" for en-US; an unknown code as it is.
    pub fn language_name(&self) -> Option<&str> {
        self.language.as_deref().map(language::name)
    }
}
