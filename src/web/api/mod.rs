//! The JSON API for background programs, `/api/v1`. Staff only: a staff session (the pages'
//! live updates) or a personal API token (`Authorization: Bearer bks_...`, made on
//! `/admin/tokens`). The operations and their errors are the same as the pages': both call the
//! SQL functions of the task engine.

mod error;
mod routes;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use crate::{
    domain::accounts::{User, tokens},
    web::{AppState, auth::Visitor, with_conn},
};

pub use error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|err, _| {
                        ApiError::bad_request(
                            "invalid_json",
                            format!("The body is not the JSON expected: {err}"),
                        )
                        .into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("The query string is not valid: {err}"),
                )
                .into()
            }))
            .route("/programs", web::get().to(routes::programs))
            .route("/programs", web::post().to(routes::register))
            .route("/tasks", web::get().to(routes::tasks))
            .route("/tasks", web::post().to(routes::run))
            .route("/tasks/{id}", web::get().to(routes::task))
            .route("/tasks/{id}/cancel", web::post().to(routes::cancel))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such API route"))
            })),
    );
}

/// A staff member calling the API, by token or by session.
pub struct ApiStaff(pub User);

impl FromRequest for ApiStaff {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| token.trim().to_owned());
        let visitor = Visitor::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let user = match bearer {
                Some(token) => {
                    let state = state.ok_or_else(|| ApiError::internal("no app state"))?;
                    with_conn(&state, move |conn| tokens::authenticate(conn, &token))
                        .await
                        .map_err(ApiError::from)?
                        .ok_or_else(|| {
                            ApiError::unauthenticated("That API token is unknown or revoked.")
                        })?
                }
                None => visitor.await.map_err(ApiError::from)?.0.ok_or_else(|| {
                    ApiError::unauthenticated("Log in as staff or send an API token.")
                })?,
            };
            if !user.is_staff() {
                return Err(ApiError::forbidden());
            }
            Ok(ApiStaff(user))
        })
    }
}
