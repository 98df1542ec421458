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

pub use super::sort::Sort;
use crate::{
    db::{
        counting::{self, Count, EXACT_UP_TO},
        schema::{authors, book_authors, books},
    },
    domain::catalog::{BookSummary, SummaryRow, isbn::Isbn, suggestion, with_authors},
    ids::{AuthorId, BookId},
};

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

/// How many books a list pages through at most: its pages read by OFFSET (ordered by an
/// index, so a page costs the rows before it), and nobody pages through a million books. A
/// list with more says so ("the first 10,000 of about 1.0M").
pub const LISTED_UP_TO: i64 = 10_000;
/// The same for a search with more matches than `counting::EXACT_UP_TO`: its pages walk an
/// index and keep the matching books, so a page deep in a common word reads many books.
pub const SEARCH_LISTED_UP_TO: i64 = 1_000;

/// One page of results.
#[derive(Debug, Clone)]
pub struct CatalogPage {
    pub books: Vec<BookSummary>,
    /// Exact up to `counting::EXACT_UP_TO`, PostgreSQL's estimate beyond.
    pub total: Count,
    /// How many of them the pages reach (`LISTED_UP_TO`, `SEARCH_LISTED_UP_TO`).
    pub listed: i64,
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
        ((self.listed + self.per_page - 1) / self.per_page).max(1)
    }

    /// Whether the pages stop before the last matching book.
    pub fn is_cut(&self) -> bool {
        self.listed < self.total.value()
    }

    /// 1-based positions of the first and last book shown.
    pub fn range(&self) -> (i64, i64) {
        let first = (self.page - 1) * self.per_page + 1;
        (
            first.min(self.listed),
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
    /// Books with any word (as typed or widened); `None` when no word matches anything.
    #[diesel(sql_type = Nullable<Text>)]
    any_word: Option<String>,
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
        // Relevance over many matches (`many_by_relevance`, which puts the books titled as
        // the query first; `ranked_ids` ranks fewer): the popularity index, as browsing.
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
    diesel::sql_query(
        "SELECT matching::text, exact::text, title_key, any_word::text \
         FROM search_queries($1, $2)",
    )
    .bind::<Text, _>(text)
    .bind::<Bool, _>(forgive_known_words)
    .get_result(conn)
    .optional()
}

/// A page and the count. Up to `EXACT_UP_TO` matches, counted exactly and ranked as the
/// sort says (reading every match: at most that many). Beyond, the matches are many, so an
/// index in the sort's order finds a page's books after a few hundred rows: relevance is then
/// a title equal to the query first, then popularity (whether every word was as typed no
/// longer ranks: a first pass matches as typed whenever every word is known), and the count
/// is PostgreSQL's estimate. Either way a page costs what its rows cost, not the catalog.
fn page_of(
    conn: &mut PgConnection,
    query: &CatalogQuery,
    text: Option<&SearchQueries>,
) -> QueryResult<(Count, i64, Vec<BookSummary>)> {
    counting::planned_for_values(conn, |conn| {
        // By relevance, one read of the matches gives both their count and their order.
        let ranked = match text {
            Some(text) if query.sort == Sort::Relevance => Some(ranked_ids(conn, query, text)?),
            _ => None,
        };
        let found = match &ranked {
            Some(ids) => ids.len() as i64,
            None => {
                counting::count_up_to(conn, filtered(query, text).select(books::id), EXACT_UP_TO)?
            }
        };
        if found == 0 {
            return Ok((Count::Exact(0), 0, Vec::new()));
        }
        let many = found > EXACT_UP_TO;
        let total = if many {
            counting::beyond_exact(conn, filtered(query, text).select(books::id))?
        } else {
            Count::Exact(found)
        };
        let reach = if many && text.is_some() {
            SEARCH_LISTED_UP_TO
        } else {
            LISTED_UP_TO
        };
        let listed = total.value().min(reach);
        let skip = (query.page - 1) * query.per_page;
        if skip >= listed {
            return Ok((total, listed, Vec::new()));
        }
        let limit = query.per_page.min(listed - skip);
        let rows = match (text, ranked) {
            (Some(text), Some(_)) if many => many_by_relevance(conn, query, text, skip, limit)?,
            (_, Some(ids)) => {
                let page: Vec<BookId> = ids
                    .into_iter()
                    .skip(skip as usize)
                    .take(limit as usize)
                    .collect();
                rows_in_order(conn, &page)?
            }
            // The page's ids first: the sort's index carries `hidden`, so without a text or a
            // stock filter they come from the index alone, however deep the page (migration
            // 000042); then the page's rows.
            _ => {
                let ids: Vec<BookId> = ordered(query, text)
                    .select(books::id)
                    .limit(limit)
                    .offset(skip)
                    .load(conn)?;
                rows_in_order(conn, &ids)?
            }
        };
        Ok((total, listed, with_authors(conn, rows)?))
    })
}

/// The matching books best first (a title equal to the query, then every word as typed, then
/// popularity), or `EXACT_UP_TO + 1` of them, unranked, when there are more: the sort keys
/// of each match, read once and ranked here.
fn ranked_ids(
    conn: &mut PgConnection,
    query: &CatalogQuery,
    text: &SearchQueries,
) -> QueryResult<Vec<BookId>> {
    let mut keys: Vec<(BookId, bool, bool, i32)> = filtered(query, Some(text))
        .select((
            books::id,
            sql::<Bool>("books.title_key = ").bind::<Text, _>(text.title_key.clone()),
            sql::<Bool>("coalesce(books.search_doc @@ CAST(")
                .bind::<Nullable<Text>, _>(text.exact.clone())
                .sql(" AS tsquery), false)"),
            books::ratings_count,
        ))
        .limit(EXACT_UP_TO + 1)
        .load(conn)?;
    if keys.len() as i64 <= EXACT_UP_TO {
        keys.sort_by_key(|&(id, titled, exact, popularity)| {
            (!titled, !exact, std::cmp::Reverse(popularity), id)
        });
    }
    Ok(keys.into_iter().map(|(id, ..)| id).collect())
}

/// The rows of `ids`, in that order.
fn rows_in_order(conn: &mut PgConnection, ids: &[BookId]) -> QueryResult<Vec<SummaryRow>> {
    let mut rows: Vec<SummaryRow> = books::table
        .filter(books::id.eq_any(ids))
        .select(SummaryRow::as_select())
        .load(conn)?;
    rows.sort_by_key(|row| ids.iter().position(|id| *id == row.id));
    Ok(rows)
}

/// Rows `skip..skip + limit` of many matches by relevance: the books titled as the query
/// (their own index), then the others by popularity (the popularity index).
fn many_by_relevance(
    conn: &mut PgConnection,
    query: &CatalogQuery,
    text: &SearchQueries,
    skip: i64,
    limit: i64,
) -> QueryResult<Vec<SummaryRow>> {
    let titled_as_query = || books::title_key.eq(text.title_key.clone());
    let mut rows: Vec<SummaryRow> = filtered(query, Some(text))
        .filter(titled_as_query())
        .order((books::ratings_count.desc(), books::id.asc()))
        .select(SummaryRow::as_select())
        .limit(skip + limit)
        .load(conn)?;
    let titled = rows.len() as i64;
    rows.drain(..(skip.min(titled) as usize));
    let wanted = limit - rows.len() as i64;
    if wanted > 0 {
        rows.extend(
            ordered(query, Some(text))
                .filter(books::title_key.ne(text.title_key.clone()))
                .select(SummaryRow::as_select())
                .limit(wanted)
                .offset((skip - titled).max(0))
                .load(conn)?,
        );
    }
    Ok(rows)
}

/// The page of books matching `query`, and how many match in all.
pub fn search(conn: &mut PgConnection, query: &CatalogQuery) -> QueryResult<CatalogPage> {
    let page = |(total, listed, books), matching, suggestion| CatalogPage {
        books,
        total,
        listed,
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
        return Ok(page(
            (Count::Exact(0), 0, Vec::new()),
            Matching::AsTyped,
            None,
        ));
    };
    let found = page_of(conn, query, Some(&as_typed))?;
    if found.1 > 0 && as_typed.exact.is_some() {
        return Ok(page(found, Matching::AsTyped, None));
    }
    let found = if found.1 > 0 {
        found
    } else {
        // Nothing even with the unknown words widened: a known word may be the typo
        // ("stephan" is a name in the catalog, "stephen" was meant).
        match search_queries(conn, text, true)? {
            Some(forgiving) => page_of(conn, query, Some(&forgiving))?,
            None => (Count::Exact(0), 0, Vec::new()),
        }
    };
    let shown: Vec<BookId> = found.2.iter().map(|book| book.id).collect();
    let suggestion = if shown.is_empty() {
        suggestion::for_nothing_found(conn, text, as_typed.any_word.as_deref())?
    } else {
        suggestion::among(conn, text, &shown)?
    };
    Ok(page(found, Matching::Corrected, suggestion))
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
