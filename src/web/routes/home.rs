use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use crate::{
    domain::catalog::{self, BookSummary},
    web::{AppState, error::WebError, layout::Layout, with_conn},
};

const FEATURED_BOOKS: i64 = 12;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    books: Vec<BookSummary>,
}

/// `GET /`: the shop window.
pub async fn get(state: web::Data<AppState>, layout: Layout) -> Result<HomePage, WebError> {
    let books = with_conn(&state, |conn| catalog::featured_books(conn, FEATURED_BOOKS)).await?;
    Ok(HomePage { layout, books })
}
