//! `GET /books/{id}/cover.svg`: a book's generated cover (see `web::cover`), and the favicon.

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    http::header::{self, CacheControl, CacheDirective, ETag, EntityTag, IfNoneMatch},
    web,
};
use serde::Deserialize;

use crate::ids::BookId;
use crate::{
    domain::catalog,
    web::{
        cover,
        error::WebError,
        reads::{Reads, with_read_conn},
    },
};

/// A versioned cover never changes (a new drawing has a new URL): browsers and shared caches
/// keep it a year without asking. An unversioned or outdated URL is kept an hour.
const VERSIONED_MAX_AGE: u32 = 365 * 24 * 3600;
const UNVERSIONED_MAX_AGE: u32 = 3600;

#[derive(Deserialize)]
pub struct CoverQuery {
    v: Option<String>,
}

/// `GET /books/{id}/cover.svg`. Hidden books keep their cover: staff still open their page,
/// and orders still name them.
pub async fn show(
    reads: Reads,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CoverQuery>,
) -> Result<HttpResponse, WebError> {
    let id: BookId = path.parse().map_err(|_| WebError::NotFound)?;
    let book = with_read_conn(&reads, move |conn| catalog::book_detail(conn, id))
        .await?
        .ok_or(WebError::NotFound)?;
    let byline = book.authors_line();
    let version = cover::version(&book.book.title, &byline);
    let max_age = if query.v.as_deref() == Some(version.as_str()) {
        VERSIONED_MAX_AGE
    } else {
        UNVERSIONED_MAX_AGE
    };
    let tag = EntityTag::new_strong(version);
    let not_modified = match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|known| known.weak_eq(&tag)),
        None => false,
    };
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(max_age),
        ]))
        .insert_header(ETag(tag));
    if not_modified {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, "image/svg+xml"))
        .body(cover::svg(&book.book.title, &byline)))
}

/// `GET /favicon.ico`: browsers ask for it whatever the page links; the icon is an SVG.
pub async fn favicon() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/static/favicon.svg"))
        .finish()
}
