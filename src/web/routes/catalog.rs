//! The catalog: `/books` (search, filters, sort, pages) and `/books/{id}`.

use actix_session::Session;
use actix_web::{Either, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::{Deserialize, Serialize};

use crate::ids::{AuthorId, BookId};
use crate::{
    db::counting::Count,
    domain::catalog::{
        self, BookDetail, BookSummary,
        isbn::Isbn,
        search::{self, CatalogQuery, Matching, Sort},
    },
    web::{
        AppState,
        auth::Visitor,
        // Book cards and the book page show covers.
        cover::WithCover as _,
        csrf,
        error::{WebError, see_other},
        layout::Layout,
        reads::{Reads, with_read_conn},
    },
};

/// The query string, as typed. Everything is optional and lenient: a hand-edited URL shows the
/// catalog rather than an error.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CatalogParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_stock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
}

/// Longest search text taken; the rest is ignored, and the page says so.
const MAX_SEARCH_CHARS: usize = 200;
/// Deep pages cost an OFFSET scan; the lists stop at `search::LISTED_UP_TO` books anyway.
const MAX_PAGE: i64 = 10_000;

impl CatalogParams {
    fn to_query(&self, per_page: i64) -> CatalogQuery {
        let text = self
            .q
            .as_deref()
            .map(crate::domain::collapse_spaces)
            .map(|q| q.chars().take(MAX_SEARCH_CHARS).collect::<String>())
            .filter(|q| !q.is_empty());
        let sort = Sort::resolve(self.sort.as_deref(), text.is_some());
        CatalogQuery {
            text,
            author_id: self
                .author
                .as_deref()
                .and_then(|a| a.trim().parse().ok())
                .filter(|id: &AuthorId| id.0 > 0),
            in_stock_only: matches!(self.in_stock.as_deref(), Some("1" | "on" | "true")),
            include_hidden: false,
            sort,
            page: self
                .page
                .as_deref()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(1)
                .clamp(1, MAX_PAGE),
            per_page,
        }
    }

    /// Whether the search text was longer than the part used.
    fn text_was_cut(&self) -> bool {
        self.q
            .as_deref()
            .map(crate::domain::collapse_spaces)
            .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS)
    }

    /// The canonical query string of `query` at `page` (defaults left out, so links stay short
    /// and shareable).
    fn link(query: &CatalogQuery, page: i64) -> String {
        let params = CatalogParams {
            q: query.text.clone(),
            author: query.author_id.map(|id| id.to_string()),
            in_stock: query.in_stock_only.then(|| "1".to_owned()),
            sort: (query.sort != Sort::default_for(query.text.is_some()))
                .then(|| query.sort.key().to_owned()),
            page: (page != 1).then(|| page.to_string()),
        };
        let encoded = serde_urlencoded::to_string(&params).unwrap_or_default();
        if encoded.is_empty() {
            "/books".to_owned()
        } else {
            format!("/books?{encoded}")
        }
    }
}

pub struct PageLink {
    pub number: i64,
    pub href: String,
    pub current: bool,
}

pub struct SortOption {
    pub key: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "catalog.html")]
pub struct CatalogPageView {
    layout: Layout,
    search_text: String,
    author_id: Option<AuthorId>,
    author_name: Option<String>,
    in_stock_only: bool,
    sort_options: Vec<SortOption>,
    books: Vec<BookSummary>,
    /// Exact, or PostgreSQL's estimate ("about 1.0M") beyond a threshold.
    total: Count,
    /// The pages stop before the last match, at this many books.
    listed_up_to: Option<i64>,
    first: i64,
    last: i64,
    page: i64,
    page_count: i64,
    pages: Vec<PageLink>,
    previous: Option<String>,
    next: Option<String>,
    /// The same search without the author filter, and without anything.
    clear_author_href: String,
    /// Some words were taken as near spellings.
    corrected: bool,
    /// The search text was cut to its first MAX_SEARCH_CHARS characters.
    text_was_cut: bool,
    /// "Did you mean": the closest title or author, and its search.
    suggestion: Option<String>,
    suggestion_href: Option<String>,
}

/// `GET /books`
pub async fn list(
    state: web::Data<AppState>,
    reads: Reads,
    layout: Layout,
    params: web::Query<CatalogParams>,
) -> Result<Either<HttpResponse, CatalogPageView>, WebError> {
    let query = params.to_query(state.page_size);
    // An ISBN goes straight to its book; one the catalog lacks is searched as text.
    if let Some(isbn) = query.text.as_deref().and_then(Isbn::parse) {
        let found = with_read_conn(&reads, move |conn| search::book_with_isbn(conn, &isbn)).await?;
        if let Some(id) = found {
            return Ok(Either::Left(see_other(&format!("/books/{id}"))));
        }
    }
    let lookup = query.clone();
    let (results, author_name) = with_read_conn(&reads, move |conn| {
        let results = search::search(conn, &lookup)?;
        let author = match lookup.author_id {
            Some(id) => search::author_name(conn, id)?,
            None => None,
        };
        Ok::<_, diesel::result::Error>((results, author))
    })
    .await?;
    let page_count = results.page_count();
    let (first, last) = results.range();
    let listed_up_to = results.is_cut().then_some(results.listed);
    // A window of page numbers around the current one.
    let window = (query.page - 3).max(1)..=(query.page + 3).min(page_count);
    let pages = window
        .map(|number| PageLink {
            number,
            href: CatalogParams::link(&query, number),
            current: number == query.page,
        })
        .collect();
    let without_author = CatalogQuery {
        author_id: None,
        ..query.clone()
    };
    let suggestion_href = results.suggestion.as_ref().map(|suggestion| {
        let suggested = CatalogQuery {
            text: Some(suggestion.clone()),
            sort: Sort::default_for(true),
            ..query.clone()
        };
        CatalogParams::link(&suggested, 1)
    });
    Ok(Either::Right(CatalogPageView {
        layout,
        corrected: results.matching == Matching::Corrected,
        text_was_cut: params.text_was_cut(),
        suggestion: results.suggestion.clone(),
        suggestion_href,
        search_text: query.text.clone().unwrap_or_default(),
        author_id: query.author_id,
        author_name,
        in_stock_only: query.in_stock_only,
        sort_options: Sort::choices(query.text.is_some())
            .map(|sort| SortOption {
                // The default order is sent as no order at all, so a search typed on the
                // browsing page (default: popularity) gets the searching default (best match).
                key: if sort == Sort::default_for(query.text.is_some()) {
                    ""
                } else {
                    sort.key()
                },
                label: sort.label(),
                selected: sort == query.sort,
            })
            .collect(),
        books: results.books,
        total: results.total,
        listed_up_to,
        first,
        last,
        page: query.page,
        page_count,
        pages,
        previous: (query.page > 1).then(|| CatalogParams::link(&query, query.page - 1)),
        next: (query.page < page_count).then(|| CatalogParams::link(&query, query.page + 1)),
        clear_author_href: CatalogParams::link(&without_author, 1),
    }))
}

#[derive(Template, WebTemplate)]
#[template(path = "book.html")]
pub struct BookPage {
    layout: Layout,
    book: BookDetail,
    /// Empty for anonymous visitors: their click goes to the log-in page first.
    csrf_token: String,
    is_staff: bool,
}

/// `GET /books/{id}`
pub async fn show(
    reads: Reads,
    visitor: Visitor,
    layout: Layout,
    session: Session,
    path: web::Path<String>,
) -> Result<BookPage, WebError> {
    let id: BookId = path.parse().map_err(|_| WebError::NotFound)?;
    let is_staff = visitor.0.as_ref().is_some_and(|user| user.is_staff());
    let book = with_read_conn(&reads, move |conn| catalog::book_detail(conn, id))
        .await?
        // A hidden book is out of the shop; staff still open it to unhide it.
        .filter(|book| is_staff || !book.hidden)
        .ok_or(WebError::NotFound)?;
    let csrf_token = if visitor.0.is_some() {
        csrf::token(&session)
    } else {
        String::new()
    };
    Ok(BookPage {
        layout,
        book,
        csrf_token,
        is_staff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_the_query() {
        let params = CatalogParams {
            q: Some("  harry   potter ".into()),
            author: Some("7".into()),
            in_stock: Some("1".into()),
            sort: Some("price_desc".into()),
            page: Some("3".into()),
        };
        let query = params.to_query(24);
        let link = CatalogParams::link(&query, query.page);
        assert_eq!(
            link,
            "/books?q=harry+potter&author=7&in_stock=1&sort=price_desc&page=3"
        );
        let again: CatalogParams =
            serde_urlencoded::from_str(link.split_once('?').unwrap().1).unwrap();
        assert_eq!(again.to_query(24), query);
    }

    #[test]
    fn nonsense_parameters_fall_back_to_defaults() {
        let params = CatalogParams {
            author: Some("x".into()),
            sort: Some("cheapest".into()),
            page: Some("-4".into()),
            ..Default::default()
        };
        let query = params.to_query(24);
        assert_eq!(
            (query.author_id, query.sort, query.page),
            (None, Sort::Popularity, 1)
        );
        assert_eq!(CatalogParams::link(&query, 1), "/books");
    }
}
