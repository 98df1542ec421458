//! Staff catalog editing: the book list (search, lowest stock first, hidden books too), add,
//! edit, hide and unhide.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;

use serde::Deserialize;

use crate::ids::BookId;
use crate::{
    domain::catalog::{
        self, BookSummary,
        book_form::BookFields,
        edit::{self, EditError},
        search::{self, CatalogQuery, Sort},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash::{self, FlashAction},
        forms::FieldErrors,
        layout::Layout,
        reads::{Reads, with_read_conn},
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/book_form.html")]
pub struct BookFormPage {
    layout: Layout,
    csrf_token: String,
    /// `None` when adding a book.
    book_id: Option<BookId>,
    fields: BookFields,
    errors: FieldErrors,
}

impl BookFormPage {
    /// The one-line fields: (name, label, value, help).
    fn inputs(&self) -> [(&'static str, &'static str, &str, &'static str); 7] {
        let f = &self.fields;
        [
            ("title", "Title", &f.title, ""),
            (
                "authors",
                "Authors",
                &f.authors,
                "In cover order, separated by commas.",
            ),
            (
                "year",
                "Year",
                &f.year,
                "Negative for BC; leave empty if unknown.",
            ),
            ("isbn", "ISBN", &f.isbn, "ISBN-10 or ISBN-13; optional."),
            (
                "language",
                "Language",
                &f.language,
                "A code like eng; optional.",
            ),
            ("price", "Price (USD)", &f.price, "Like 12.99."),
            ("stock", "Copies in stock", &f.stock, ""),
        ]
    }
}

/// `GET /admin/books/new`
pub async fn new_form(_staff: Staff, layout: Layout, session: Session) -> BookFormPage {
    BookFormPage {
        layout,
        csrf_token: csrf::token(&session),
        book_id: None,
        fields: BookFields {
            stock: "0".into(),
            ..BookFields::default()
        },
        errors: FieldErrors::default(),
    }
}

/// `GET /admin/books/{id}/edit`
pub async fn edit_form(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
    path: web::Path<String>,
) -> Result<BookFormPage, WebError> {
    let id: BookId = path.parse().map_err(|_| WebError::NotFound)?;
    let book = with_conn(&state, move |conn| catalog::book_detail(conn, id))
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(BookFormPage {
        layout,
        csrf_token: csrf::token(&session),
        book_id: Some(id),
        fields: BookFields::from(&book),
        errors: FieldErrors::default(),
    })
}

/// `POST /admin/books/new` and `POST /admin/books/{id}/edit`.
pub async fn save(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    req: HttpRequest,
    session: Session,
    path: Option<web::Path<String>>,
    CsrfForm(fields): CsrfForm<BookFields>,
) -> Result<HttpResponse, WebError> {
    let book_id = match path {
        Some(path) => Some(path.parse::<BookId>().map_err(|_| WebError::NotFound)?),
        None => None,
    };
    let mut errors = FieldErrors::default();
    // The layout (which takes pending flash messages) only when the form is shown again.
    let again = async |errors, fields: BookFields| {
        let page = BookFormPage {
            layout: Layout::extract(&req).await?,
            csrf_token: csrf::token(&session),
            book_id,
            fields,
            errors,
        };
        Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    let input = match fields.parse() {
        Ok(input) => input,
        Err(problems) => {
            for (field, message) in problems {
                errors.add(field, message);
            }
            return again(errors, fields.clone()).await;
        }
    };
    let price = input.book.price;
    let saved = with_conn(&state, move |conn| {
        Ok::<_, WebError>(match book_id {
            Some(id) => edit::update_book(conn, &audit, id, &input).map(|()| id),
            None => edit::create_book(conn, &audit, &input),
        })
    })
    .await?;
    match saved {
        Ok(id) => {
            let verb = if book_id.is_some() {
                "saved"
            } else {
                "added to the catalog"
            };
            flash::success(&session, format!("The book was {verb} at {price}."));
            Ok(see_other(&format!("/books/{id}")))
        }
        Err(EditError::IsbnTaken) => {
            errors.add("isbn", EditError::IsbnTaken.to_string());
            again(errors, fields.clone()).await
        }
        Err(EditError::NotFound) => Err(WebError::NotFound),
        Err(EditError::StockChanged { now }) => {
            errors.add("stock", EditError::StockChanged { now }.to_string());
            // Shown with the current stock, so saving again is a decision made knowing it.
            let fields = BookFields {
                stock_was: now.to_string(),
                ..fields.clone()
            };
            again(errors, fields).await
        }
        Err(EditError::Database(err)) => Err(err.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/books.html")]
pub struct BookListPage {
    layout: Layout,
    csrf_token: String,
    search_text: String,
    books: Vec<BookSummary>,
    total: crate::db::counting::Count,
    page: i64,
    page_count: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// The list's search and page: its query string, and the hidden fields of its hide and
/// unhide forms (so staff land back where they were).
#[derive(Deserialize)]
pub struct BookListParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

impl BookListParams {
    /// As in the catalog: the first 200 characters (each word costs a dictionary scan).
    fn text(&self) -> Option<String> {
        self.q
            .as_deref()
            .map(crate::domain::collapse_spaces)
            .map(|q| q.chars().take(200).collect::<String>())
            .filter(|q| !q.is_empty())
    }

    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(1)
            .clamp(1, 10_000)
    }
}

/// The list at a search and page: always a path of this site, whatever was typed.
fn list_location(text: Option<&str>, page: i64) -> String {
    let mut query = Vec::new();
    if let Some(text) = text {
        query.push(("q", text.to_owned()));
    }
    if page > 1 {
        query.push(("page", page.to_string()));
    }
    match serde_urlencoded::to_string(&query).unwrap_or_default() {
        encoded if encoded.is_empty() => "/admin/books".to_owned(),
        encoded => format!("/admin/books?{encoded}"),
    }
}

/// Books per page of the staff list.
const STAFF_PAGE_SIZE: i64 = 50;

/// `GET /admin/books`: every book, hidden ones too, fewest copies first (what to restock).
pub async fn list(
    reads: Reads,
    _staff: Staff,
    layout: Layout,
    session: Session,
    params: web::Query<BookListParams>,
) -> Result<BookListPage, WebError> {
    let text = params.text();
    let query = CatalogQuery {
        text: text.clone(),
        include_hidden: true,
        sort: Sort::LowStock,
        page: params.page(),
        per_page: STAFF_PAGE_SIZE,
        ..CatalogQuery::default()
    };
    let lookup = query.clone();
    let results = with_read_conn(&reads, move |conn| search::search(conn, &lookup)).await?;
    let page_count = results.page_count();
    let link = |page: i64| list_location(text.as_deref(), page);
    Ok(BookListPage {
        layout,
        csrf_token: csrf::token(&session),
        search_text: text.clone().unwrap_or_default(),
        previous: (query.page > 1).then(|| link(query.page - 1)),
        next: (query.page < page_count).then(|| link(query.page + 1)),
        books: results.books,
        total: results.total,
        page: query.page,
        page_count,
    })
}

/// `POST /admin/books/{id}/hide` (out of the catalog, kept with its order history) and
/// `.../unhide` (back in).
pub async fn hide_or_unhide(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<(String, String)>,
    CsrfForm(list): CsrfForm<BookListParams>,
) -> Result<HttpResponse, WebError> {
    let (search, page) = (list.text(), list.page());
    let back = list_location(search.as_deref(), page);
    let (id, verb) = path.into_inner();
    let id: BookId = id.parse().map_err(|_| WebError::NotFound)?;
    let hidden = verb == "hide";
    let title = with_conn(&state, move |conn| {
        edit::set_hidden(conn, &audit, id, hidden)
    })
    .await?
    .ok_or(WebError::NotFound)?;
    let (text, undo) = if hidden {
        (
            format!("“{title}” is hidden: shoppers no longer find it; orders keep it."),
            "unhide",
        )
    } else {
        (format!("“{title}” is back in the catalog."), "hide")
    };
    flash::success_with(
        &session,
        text,
        FlashAction::Post {
            label: "Undo".into(),
            action: format!("/admin/books/{id}/{undo}"),
            fields: search
                .map(|q| ("q".to_owned(), q))
                .into_iter()
                .chain((page > 1).then(|| ("page".to_owned(), page.to_string())))
                .collect(),
        },
    );
    Ok(see_other(&back))
}
