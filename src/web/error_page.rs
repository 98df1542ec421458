//! How a [`WebError`] answers: its HTTP status, and for a page the error page inside the
//! shared layout. Here, above `layout`, so that `error` needs none of the modules that use it.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use askama::Template;

use crate::web::{
    error::{WebError, html, see_other},
    layout::Layout,
};

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden | WebError::CsrfRejected => StatusCode::FORBIDDEN,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::LoginRequired { next } => {
                let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
                return see_other(&format!("/login?{query}"));
            }
            WebError::Unavailable(_) => tracing::warn!("{self:?}"),
            WebError::Internal(_) => tracing::error!("{self:?}"),
            _ => {}
        }
        let page = ErrorPage {
            layout: Layout::default(),
            status: self.status_code().as_u16(),
            title: title(self),
            message: self.to_string(),
        };
        html(self.status_code(), &page)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    title: &'static str,
    message: String,
}

/// The error page's heading.
fn title(err: &WebError) -> &'static str {
    match err {
        WebError::NotFound => "Page not found",
        WebError::BadRequest(_) => "That request was not understood",
        WebError::LoginRequired { .. } => "Please log in",
        WebError::Forbidden => "Staff only",
        WebError::CsrfRejected => "Form expired",
        WebError::Unavailable(_) => "Temporarily unavailable",
        WebError::Internal(_) => "Something went wrong",
    }
}
