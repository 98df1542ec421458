//! Rows of the goodbooks-10k `books.csv` format, parsed into catalog entries.
//!
//! The real data is messy (see `../shared/data/goodbooks-10k/README.md`): ISBNs that lost their
//! leading zeros, years written as floats and sometimes negative (BC), several authors in one
//! quoted field with stray spaces. Everything that can be repaired is; a row that cannot is
//! refused with the reason.

use diesel::prelude::*;
use serde::Deserialize;

use crate::{
    db::schema::books,
    domain::{
        catalog::{Book, author_names, isbn::Isbn},
        collapse_spaces,
        money::Cents,
    },
};

/// One CSV record; extra columns of the full data set are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct GoodbooksRecord {
    pub goodreads_book_id: String,
    #[serde(default)]
    pub isbn: String,
    pub authors: String,
    #[serde(default)]
    pub original_publication_year: String,
    #[serde(default)]
    pub original_title: String,
    pub title: String,
    #[serde(default)]
    pub language_code: String,
    #[serde(default)]
    pub average_rating: String,
    #[serde(default)]
    pub ratings_count: String,
}

/// A book ready to be stored, with the price and stock a fresh catalog starts with: a
/// `books` row as seeding and `import_catalog` insert it (its authors go to `book_authors`).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = books)]
pub struct CatalogEntry {
    pub goodreads_id: i64,
    #[diesel(embed)]
    pub book: Book,
    /// Cover order, no duplicates, at least one.
    #[diesel(skip_insertion)]
    pub authors: Vec<String>,
    /// How many Goodreads readers rated it (popularity); 0 when the row does not say.
    pub ratings_count: i32,
    /// Their mean rating out of 5.
    pub average_rating: Option<f32>,
}

impl TryFrom<GoodbooksRecord> for CatalogEntry {
    /// Why the row was refused.
    type Error = String;

    fn try_from(record: GoodbooksRecord) -> Result<Self, String> {
        let goodreads_id: i64 = record
            .goodreads_book_id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                format!(
                    "goodreads_book_id {:?} is not a positive number",
                    record.goodreads_book_id
                )
            })?;
        let title = collapse_spaces(&record.title);
        if title.is_empty() {
            return Err("empty title".into());
        }
        if title.chars().count() > 500 {
            return Err("title longer than 500 characters".into());
        }
        let authors = author_names(&record.authors);
        if authors.is_empty() {
            return Err("no author".into());
        }
        if let Some(long) = authors.iter().find(|name| name.chars().count() > 200) {
            return Err(format!(
                "author name longer than 200 characters: {long:.40}…"
            ));
        }
        let year = parse_year(&record.original_publication_year)?;
        let isbn = parse_isbn(&record.isbn)?;
        let language = Some(record.language_code.trim())
            .filter(|code| !code.is_empty())
            .map(|code| code.chars().take(16).collect());
        let description = describe(&record, year);
        // Popularity only orders results: an unreadable figure counts as unrated, not an error.
        let ratings_count = record.ratings_count.trim().parse().unwrap_or(0).max(0);
        let average_rating = record
            .average_rating
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|rating| (0.0..=5.0).contains(rating));
        Ok(CatalogEntry {
            goodreads_id,
            book: Book {
                title,
                year,
                isbn,
                language,
                description,
                price: starting_price(goodreads_id),
                stock: starting_stock(goodreads_id),
            },
            authors,
            ratings_count,
            average_rating,
        })
    }
}

/// "2008.0" -> 2008, "-720.0" -> -720 (BC), "" -> unknown.
fn parse_year(field: &str) -> Result<Option<i32>, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    let value: f64 = field
        .parse()
        .map_err(|_| format!("year {field:?} is not a number"))?;
    if value.fract() != 0.0 || !(-5000.0..=3000.0).contains(&value) {
        return Err(format!(
            "year {field:?} is not a whole year between -5000 and 3000"
        ));
    }
    Ok(Some(value as i32))
}

/// The data set's ISBNs are ISBN-10s that lost their leading zeros ("439023483"): padded back
/// to 10 and read by the one ISBN parser.
fn parse_isbn(field: &str) -> Result<Option<Isbn>, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    Isbn::parse(&format!("{field:0>10}"))
        .filter(|isbn| isbn.as_str().len() == 10)
        .map(Some)
        .ok_or_else(|| format!("ISBN {field:?} is not an ISBN-10"))
}

fn describe(record: &GoodbooksRecord, year: Option<i32>) -> String {
    let original = collapse_spaces(&record.original_title);
    let mut text = String::new();
    match (original.is_empty(), year) {
        (false, Some(year)) => text.push_str(&format!(
            "First published as “{original}” in {}.",
            display_year(year)
        )),
        (false, None) => text.push_str(&format!("First published as “{original}”.")),
        (true, Some(year)) => text.push_str(&format!("First published in {}.", display_year(year))),
        (true, None) => {}
    }
    let rating = record.average_rating.trim();
    let count = record.ratings_count.trim();
    if !rating.is_empty() && !count.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!(
            "Rated {rating} out of 5 by {count} Goodreads readers."
        ));
    }
    text
}

fn display_year(year: i32) -> String {
    if year < 0 {
        format!("{} BC", -year)
    } else {
        year.to_string()
    }
}

/// The data has no prices: derive one from the id so every seeding gives the same catalog.
/// Between $5.99 and $29.99, always ending in .99.
pub fn starting_price(goodreads_id: i64) -> Cents {
    let dollars = 5 + goodreads_id.wrapping_mul(7919).rem_euclid(25);
    Cents(dollars * 100 + 99)
}

/// Between 0 and 24 copies; about one book in twenty-five starts out of stock.
pub fn starting_stock(goodreads_id: i64) -> i32 {
    (goodreads_id.wrapping_mul(104_729).rem_euclid(25)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibyte_isbn_is_refused_not_a_panic() {
        assert!(parse_isbn("12345678ü").is_err());
        assert_eq!(
            parse_isbn("439023483").unwrap().as_ref().map(Isbn::as_str),
            Some("0439023483")
        );
    }

    fn record(authors: &str, year: &str, isbn: &str) -> GoodbooksRecord {
        GoodbooksRecord {
            goodreads_book_id: "3".into(),
            isbn: isbn.into(),
            authors: authors.into(),
            original_publication_year: year.into(),
            original_title: "Harry Potter and the Philosopher's Stone".into(),
            title: "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)".into(),
            language_code: "eng".into(),
            average_rating: "4.44".into(),
            ratings_count: "4602479".into(),
        }
    }

    #[test]
    fn repairs_the_known_quirks() {
        let entry = CatalogEntry::try_from(record(
            "J.K. Rowling,  Mary   GrandPré",
            "1997.0",
            "439554934",
        ))
        .unwrap();
        assert_eq!(entry.authors, ["J.K. Rowling", "Mary GrandPré"]);
        assert_eq!(entry.book.year, Some(1997));
        assert_eq!(
            entry.book.isbn.as_ref().map(Isbn::as_str),
            Some("0439554934")
        );
        assert!(entry.book.description.contains("1997"));
        let homer = CatalogEntry::try_from(record("Homer", "-720.0", "")).unwrap();
        assert_eq!(homer.book.year, Some(-720));
        assert_eq!(homer.book.isbn, None);
        assert!(homer.book.description.contains("720 BC"));
    }

    #[test]
    fn refuses_rows_it_cannot_repair() {
        assert!(CatalogEntry::try_from(record(" , ", "1997.0", "")).is_err());
        assert!(CatalogEntry::try_from(record("A", "1997.5", "")).is_err());
        assert!(CatalogEntry::try_from(record("A", "", "97804390X1234")).is_err());
    }

    #[test]
    fn prices_and_stock_are_deterministic_and_in_range() {
        for id in 1..2000 {
            let price = starting_price(id);
            assert!((599..=2999).contains(&price.0) && price.0 % 100 == 99);
            assert!((0..25).contains(&starting_stock(id)));
            assert_eq!(price, starting_price(id));
        }
    }
}
