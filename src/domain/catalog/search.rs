//! Browsing the catalog: search, filters, sort and pages.
//!
//! Search forgives: word order does not matter, title and author words mix, words split or
//! joined differently ("mocking bird", "halfblood") are the same words, a typo of one or two
//! letters per word still finds the book, and the results rank by relevance (a title equal to
//! the query first, then books with every word as typed, then popularity). The rule lives in
//! SQL (`search_queries`, `search_suggestion`, migrations 000012 and 000018); this module asks in two
//! passes: words the catalog knows taken as typed (unknown ones widened), and only if that
//! finds nothing, every word widened. Hidden books are never listed.

use diesel::{
    dsl::sql,
    pg::Pg,
    prelude::*,
    sql_types::{Bool, Nullable, Text},
};

use crate::{
    db::schema::{authors, book_authors, books},
    domain::{
        catalog::{BookSummary, SummaryRow, isbn::Isbn, with_authors},
        ids::{AuthorId, BookId},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// The default when there is a query: how well a book matches, popularity breaking ties.
    Relevance,
    /// Most-rated first.
    Popularity,
    /// Highest average rating first (unrated last), popularity breaking ties.
    Rating,
    Title,
    PriceLowToHigh,
    PriceHighToLow,
    /// Publication year, most recent first.
    Year,
    /// Most recently added to the shop first.
    Newest,
    /// Fewest copies first: the staff book list, to restock (not offered to shoppers).
    LowStock,
}

impl Sort {
    pub const ALL: [Sort; 8] = [
        Sort::Relevance,
        Sort::Popularity,
        Sort::Rating,
        Sort::Title,
        Sort::PriceLowToHigh,
        Sort::PriceHighToLow,
        Sort::Year,
        Sort::Newest,
    ];

    /// The value in the query string.
    pub fn key(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::Popularity => "popularity",
            Sort::Rating => "rating",
            Sort::Title => "title",
            Sort::PriceLowToHigh => "price",
            Sort::PriceHighToLow => "price_desc",
            Sort::Year => "year",
            Sort::Newest => "newest",
            Sort::LowStock => "low_stock",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Relevance => "Best match",
            Sort::Popularity => "Most popular",
            Sort::Rating => "Highest rated",
            Sort::Title => "Title (A-Z)",
            Sort::PriceLowToHigh => "Price (low to high)",
            Sort::PriceHighToLow => "Price (high to low)",
            Sort::Year => "Publication year (newest)",
            Sort::Newest => "Recently added",
            Sort::LowStock => "Lowest stock",
        }
    }

    /// The order of a list with or without a query: the best matches of a search, and the
    /// books most people read when browsing (not "11/22/63" and other titles that sort first).
    pub fn default_for(has_text: bool) -> Sort {
        if has_text {
            Sort::Relevance
        } else {
            Sort::Popularity
        }
    }

    /// The sort asked for; a missing or unknown value (a hand-edited URL) and relevance without
    /// a query fall back to the default, so the catalog still shows.
    pub fn resolve(key: Option<&str>, has_text: bool) -> Sort {
        Sort::ALL
            .into_iter()
            .find(|sort| Some(sort.key()) == key)
            .filter(|sort| has_text || *sort != Sort::Relevance)
            .unwrap_or(Sort::default_for(has_text))
    }

    /// The choices a list offers, its default first (no "best match" without a query).
    pub fn choices(has_text: bool) -> impl Iterator<Item = Sort> {
        let default = Sort::default_for(has_text);
        std::iter::once(default).chain(
            Sort::ALL
                .into_iter()
                .filter(move |sort| *sort != default && (has_text || *sort != Sort::Relevance)),
        )
    }
}

/// What the visitor asked for, already cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogQuery {
    /// Words to find in titles or author names; `None` when blank.
    pub text: Option<String>,
    pub author_id: Option<AuthorId>,
    pub in_stock_only: bool,
    /// Staff lists include hidden books.
    pub include_hidden: bool,
    pub sort: Sort,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl Default for CatalogQuery {
    fn default() -> Self {
        CatalogQuery {
            text: None,
            author_id: None,
            in_stock_only: false,
            include_hidden: false,
            sort: Sort::Popularity,
            page: 1,
            per_page: 24,
        }
    }
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct CatalogPage {
    pub books: Vec<BookSummary>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    /// How the query's words were taken.
    pub matching: Matching,
    /// The closest title or author name, when nothing matched as typed.
    pub suggestion: Option<String>,
}

/// How a search found its books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// No query: the whole catalog.
    Everything,
    /// Every word as typed.
    AsTyped,
    /// Some words were taken as near spellings: unknown words first, and when that finds
    /// nothing, every word.
    Corrected,
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

/// What SQL made of the query text (`search_queries`).
#[derive(QueryableByName)]
struct SearchQueries {
    /// Finds the books; `None` when some word matches no catalog word at all.
    #[diesel(sql_type = Nullable<Text>)]
    matching: Option<String>,
    /// Books with every word as typed; `None` when some word is not in the catalog.
    #[diesel(sql_type = Nullable<Text>)]
    exact: Option<String>,
    /// The query as a title key: a book titled exactly so ranks first.
    #[diesel(sql_type = Text)]
    title_key: String,
}

type BoxedBooks<'a> = books::BoxedQuery<'a, Pg>;

fn filtered(query: &CatalogQuery, text: Option<&SearchQueries>) -> BoxedBooks<'static> {
    let mut books_query = books::table.into_boxed();
    if !query.include_hidden {
        books_query = books_query.filter(books::hidden.eq(false));
    }
    if let Some(text) = text {
        // The GIN index on search_doc serves this; NULL (a word with no match) matches nothing.
        books_query = books_query.filter(
            sql::<Bool>("books.search_doc @@ CAST(")
                .bind::<Nullable<Text>, _>(text.matching.clone())
                .sql(" AS tsquery)"),
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

fn ordered(query: &CatalogQuery, text: Option<&SearchQueries>) -> BoxedBooks<'static> {
    let books_query = filtered(query, text);
    // The id breaks ties, so pages never overlap or skip a book.
    match (query.sort, text) {
        (Sort::Relevance, Some(text)) => books_query.order((
            sql::<Bool>("books.title_key = ")
                .bind::<Text, _>(text.title_key.clone())
                .desc(),
            sql::<Bool>("coalesce(books.search_doc @@ CAST(")
                .bind::<Nullable<Text>, _>(text.exact.clone())
                .sql(" AS tsquery), false)")
                .desc(),
            books::ratings_count.desc(),
            books::id.asc(),
        )),
        (Sort::Relevance | Sort::Popularity, _) => {
            books_query.order((books::ratings_count.desc(), books::id.asc()))
        }
        (Sort::Rating, _) => books_query.order((
            books::average_rating.desc().nulls_last(),
            books::ratings_count.desc(),
            books::id.asc(),
        )),
        (Sort::Title, _) => books_query.order((books::title.asc(), books::id.asc())),
        (Sort::PriceLowToHigh, _) => books_query.order((books::price_cents.asc(), books::id.asc())),
        (Sort::PriceHighToLow, _) => {
            books_query.order((books::price_cents.desc(), books::id.asc()))
        }
        (Sort::Year, _) => books_query.order((books::year.desc().nulls_last(), books::id.asc())),
        (Sort::Newest, _) => books_query.order((books::created_at.desc(), books::id.desc())),
        (Sort::LowStock, _) => books_query.order((
            books::stock.asc(),
            books::ratings_count.desc(),
            books::id.asc(),
        )),
    }
}

fn search_queries(
    conn: &mut PgConnection,
    text: &str,
    forgive_known_words: bool,
) -> QueryResult<Option<SearchQueries>> {
    diesel::sql_query("SELECT matching::text, exact::text, title_key FROM search_queries($1, $2)")
        .bind::<Text, _>(text)
        .bind::<Bool, _>(forgive_known_words)
        .get_result(conn)
        .optional()
}

fn page_of(
    conn: &mut PgConnection,
    query: &CatalogQuery,
    text: Option<&SearchQueries>,
) -> QueryResult<(i64, Vec<BookSummary>)> {
    let total: i64 = filtered(query, text).count().get_result(conn)?;
    if total == 0 {
        return Ok((0, Vec::new()));
    }
    let rows: Vec<SummaryRow> = ordered(query, text)
        .select(SummaryRow::as_select())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
        .load(conn)?;
    Ok((total, with_authors(conn, rows)?))
}

/// The page of books matching `query`, and how many match in all.
pub fn search(conn: &mut PgConnection, query: &CatalogQuery) -> QueryResult<CatalogPage> {
    let page = |(total, books), matching, suggestion| CatalogPage {
        books,
        total,
        page: query.page,
        per_page: query.per_page,
        matching,
        suggestion,
    };
    let Some(text) = query.text.as_deref() else {
        return Ok(page(
            page_of(conn, query, None)?,
            Matching::Everything,
            None,
        ));
    };
    let as_typed = search_queries(conn, text, false)?;
    // Only punctuation: no word to look for, so nothing matches.
    let Some(as_typed) = as_typed else {
        return Ok(page((0, Vec::new()), Matching::AsTyped, None));
    };
    let found = page_of(conn, query, Some(&as_typed))?;
    if found.0 > 0 && as_typed.exact.is_some() {
        return Ok(page(found, Matching::AsTyped, None));
    }
    let found = if found.0 > 0 {
        found
    } else {
        // Nothing even with the unknown words widened: a known word may be the typo
        // ("stephan" is a name in the catalog, "stephen" was meant).
        match search_queries(conn, text, true)? {
            Some(forgiving) => page_of(conn, query, Some(&forgiving))?,
            None => (0, Vec::new()),
        }
    };
    let suggestion = suggestion(conn, text)?;
    Ok(page(found, Matching::Corrected, suggestion))
}

/// The closest title or author name to `text`, unless it is what was typed.
fn suggestion(conn: &mut PgConnection, text: &str) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Suggestion {
        #[diesel(sql_type = Nullable<Text>)]
        suggestion: Option<String>,
    }
    let found: Suggestion = diesel::sql_query("SELECT search_suggestion($1) AS suggestion")
        .bind::<Text, _>(text)
        .get_result(conn)?;
    Ok(found
        .suggestion
        .filter(|suggestion| !suggestion.eq_ignore_ascii_case(text)))
}

/// The listed book with this ISBN (10 or 13 digits, either form finds it).
pub fn book_with_isbn(conn: &mut PgConnection, isbn: &Isbn) -> QueryResult<Option<BookId>> {
    books::table
        .filter(books::isbn.eq_any(isbn.stored_forms()))
        .filter(books::hidden.eq(false))
        .select(books::id)
        .first(conn)
        .optional()
}

/// The author's name, for "Books by ..." above a filtered list.
pub fn author_name(conn: &mut PgConnection, author_id: AuthorId) -> QueryResult<Option<String>> {
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
    fn sort_keys_round_trip() {
        for sort in Sort::ALL {
            assert_eq!(Sort::resolve(Some(sort.key()), true), sort);
        }
        assert_eq!(Sort::resolve(Some("bogus"), false), Sort::Popularity);
        assert_eq!(Sort::resolve(None, true), Sort::Relevance);
        // Relevance needs a query to be relevant to.
        assert_eq!(Sort::resolve(Some("relevance"), false), Sort::Popularity);
        assert!(Sort::choices(false).all(|sort| sort != Sort::Relevance));
    }
}
