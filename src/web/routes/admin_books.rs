//! Staff catalog editing: add and edit books.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::{
    domain::catalog::{
        self,
        edit::{self, BookFields, EditError},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash,
        forms::FieldErrors,
        layout::Layout,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/book_form.html")]
pub struct BookFormPage {
    layout: Layout,
    csrf_token: String,
    /// `None` when adding a book.
    book_id: Option<i64>,
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
    let id: i64 = path.parse().map_err(|_| WebError::NotFound)?;
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
    _staff: Staff,
    req: HttpRequest,
    session: Session,
    path: Option<web::Path<String>>,
    CsrfForm(fields): CsrfForm<BookFields>,
) -> Result<HttpResponse, WebError> {
    let book_id = match path {
        Some(path) => Some(path.parse::<i64>().map_err(|_| WebError::NotFound)?),
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
    let saved = with_conn(&state, move |conn| {
        Ok::<_, WebError>(match book_id {
            Some(id) => edit::update_book(conn, id, &input).map(|()| id),
            None => edit::create_book(conn, &input),
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
            flash::success(&session, format!("The book was {verb}."));
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
