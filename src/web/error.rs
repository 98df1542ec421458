//! The web layer's one error type (its answer, status and error page, is `error_page`'s), and
//! the plain responses every handler uses. The lowest of the web modules: it imports none of
//! them (order, lowest first: error, flash, csrf, auth, layout, error_page).

use actix_web::{HttpResponse, http::StatusCode};
use askama::Template;

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
