//! The web layer's one error type, mapped to an HTTP status and an error page in one place.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use askama::Template;

use crate::web::layout::Layout;

#[derive(thiserror::Error)]
pub enum WebError {
    #[error("The page you asked for does not exist.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("Please log in to continue.")]
    LoginRequired { next: String },
    #[error("This page is for staff only. You are logged in as a customer.")]
    Forbidden,
    #[error(
        "This form has expired or was sent from another site, so nothing was changed. \
         Please go back, reload the page and try again."
    )]
    CsrfRejected,
    #[error("The shop's database is unavailable right now. Please try again in a moment.")]
    Unavailable(#[source] anyhow::Error),
    #[error("Something went wrong on our side. It has been logged.")]
    Internal(#[source] anyhow::Error),
}

impl WebError {
    pub fn unavailable(err: impl Into<anyhow::Error>) -> Self {
        WebError::Unavailable(err.into())
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        WebError::Internal(err.into())
    }

    fn title(&self) -> &'static str {
        match self {
            WebError::NotFound => "Page not found",
            WebError::BadRequest(_) => "That request was not understood",
            WebError::LoginRequired { .. } => "Please log in",
            WebError::Forbidden => "Staff only",
            WebError::CsrfRejected => "Form expired",
            WebError::Unavailable(_) => "Temporarily unavailable",
            WebError::Internal(_) => "Something went wrong",
        }
    }
}

/// `Debug` prints the whole cause chain, which is what logs need.
impl std::fmt::Debug for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl From<diesel::result::Error> for WebError {
    fn from(err: diesel::result::Error) -> Self {
        match err {
            diesel::result::Error::NotFound => WebError::NotFound,
            other if crate::db::lost_connection(&other) => WebError::unavailable(other),
            other => WebError::internal(other),
        }
    }
}

/// A task operation refused (a task gone meanwhile, parameters refused) is the request's
/// fault; a database failure is ours.
impl From<crate::tasks::ops::OperationError> for WebError {
    fn from(err: crate::tasks::ops::OperationError) -> Self {
        match err {
            crate::tasks::ops::OperationError::Refused { message, .. } => {
                WebError::BadRequest(message)
            }
            crate::tasks::ops::OperationError::Database(err) => err.into(),
        }
    }
}

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
            title: self.title(),
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

/// 303 See Other: the answer to a successful form post (post/redirect/get).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// Renders a page with a status other than 200 (askama_web's responder always answers 200).
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(err) => {
            tracing::error!("rendering a page: {err}");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong on our side.")
        }
    }
}
