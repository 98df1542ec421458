//! Browsing the catalog: search, filters, sort and pages.
//!
//! Search folds case and accents on both sides (`search_fold`, an IMMUTABLE SQL function with a
//! trigram index on `search_fold(title)` and `search_fold(name)`), so "miserables" finds
//! "Les Misérables" and the index serves `LIKE '%...%'`.

use diesel::{
    dsl::sql,
    pg::Pg,
    prelude::*,
    sql_types::{Bool, Text},
};

use crate::{
    db::schema::{authors, book_authors, books},
    domain::catalog::{BookSummary, SummaryRow, with_authors},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Title,
    PriceLowToHigh,
    PriceHighToLow,
    /// Publication year, most recent first.
    Year,
    /// Most recently added to the shop first.
    Newest,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Title,
        Sort::PriceLowToHigh,
        Sort::PriceHighToLow,
        Sort::Year,
        Sort::Newest,
    ];

    /// The value in the query string.
    pub fn key(self) -> &'static str {
        match self {
            Sort::Title => "title",
            Sort::PriceLowToHigh => "price",
            Sort::PriceHighToLow => "price_desc",
            Sort::Year => "year",
            Sort::Newest => "newest",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Title => "Title (A-Z)",
            Sort::PriceLowToHigh => "Price (low to high)",
            Sort::PriceHighToLow => "Price (high to low)",
            Sort::Year => "Publication year (newest)",
            Sort::Newest => "Recently added",
        }
    }

    /// Unknown values fall back to the default: a hand-edited URL still shows the catalog.
    pub fn from_key(key: &str) -> Sort {
        Sort::ALL
            .into_iter()
            .find(|sort| sort.key() == key)
            .unwrap_or_default()
    }
}

/// What the visitor asked for, already cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogQuery {
    /// Words to find in titles or author names; `None` when blank.
    pub text: Option<String>,
    pub author_id: Option<i64>,
    pub in_stock_only: bool,
    pub sort: Sort,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct CatalogPage {
    pub books: Vec<BookSummary>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

impl CatalogPage {
    pub fn page_count(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page).max(1)
    }

    /// 1-based positions of the first and last book shown.
    pub fn range(&self) -> (i64, i64) {
        let first = (self.page - 1) * self.per_page + 1;
        (
            first.min(self.total),
            (first + self.books.len() as i64 - 1).max(0),
        )
    }
}

/// `%`, `_` and `\` are LIKE syntax; a search for "100%" means the characters.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

type BoxedBooks<'a> = books::BoxedQuery<'a, Pg>;

fn filtered(query: &CatalogQuery) -> BoxedBooks<'static> {
    let mut books_query = books::table.into_boxed();
    if let Some(text) = &query.text {
        let pattern = like_pattern(text);
        // A UNION of two index-served lookups (title trigrams, author-name trigrams); an OR
        // across the two tables would scan every book.
        books_query = books_query.filter(
            sql::<Bool>("books.id IN (SELECT b.id FROM books b WHERE search_fold(b.title) LIKE search_fold(")
                .bind::<Text, _>(pattern.clone())
                .sql(") UNION SELECT ba.book_id FROM book_authors ba JOIN authors a ON a.id = ba.author_id \
                      WHERE search_fold(a.name) LIKE search_fold(")
                .bind::<Text, _>(pattern)
                .sql("))"),
        );
    }
    if let Some(author_id) = query.author_id {
        books_query = books_query.filter(
            books::id.eq_any(
                book_authors::table
                    .filter(book_authors::author_id.eq(author_id))
                    .select(book_authors::book_id),
            ),
        );
    }
    if query.in_stock_only {
        books_query = books_query.filter(books::stock.gt(0));
    }
    books_query
}

/// The page of books matching `query`, and how many match in all.
pub fn search(conn: &mut PgConnection, query: &CatalogQuery) -> QueryResult<CatalogPage> {
    let total: i64 = filtered(query).count().get_result(conn)?;
    let ordered = match query.sort {
        // The id breaks ties, so pages never overlap or skip a book.
        Sort::Title => filtered(query).order((books::title.asc(), books::id.asc())),
        Sort::PriceLowToHigh => filtered(query).order((books::price_cents.asc(), books::id.asc())),
        Sort::PriceHighToLow => filtered(query).order((books::price_cents.desc(), books::id.asc())),
        Sort::Year => filtered(query).order((books::year.desc().nulls_last(), books::id.asc())),
        Sort::Newest => filtered(query).order((books::created_at.desc(), books::id.desc())),
    };
    let rows: Vec<SummaryRow> = ordered
        .select((
            books::id,
            books::title,
            books::year,
            books::price_cents,
            books::stock,
        ))
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
        .load(conn)?;
    let books = with_authors(conn, rows)?;
    Ok(CatalogPage {
        books,
        total,
        page: query.page,
        per_page: query.per_page,
    })
}

/// The author's name, for "Books by ..." above a filtered list.
pub fn author_name(conn: &mut PgConnection, author_id: i64) -> QueryResult<Option<String>> {
    authors::table
        .find(author_id)
        .select(authors::name)
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_syntax_in_searches_is_literal() {
        assert_eq!(like_pattern("100% _real_"), "%100\\% \\_real\\_%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn sort_keys_round_trip() {
        for sort in Sort::ALL {
            assert_eq!(Sort::from_key(sort.key()), sort);
        }
        assert_eq!(Sort::from_key("bogus"), Sort::Title);
    }
}
