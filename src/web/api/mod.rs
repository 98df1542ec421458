//! The JSON API for background programs, `/api/v1`. Staff only: a staff session (the pages'
//! live updates) or a personal API token (`Authorization: Bearer bks_...`, made on
//! `/admin/tokens`). The operations and their errors are the same as the pages': both call the
//! SQL functions of the task engine. Engine v3's queueing (options, many tasks at once,
//! batches, a program's options) is in `queue`, what the API says about a task or a batch in
//! `resources`.

mod bodies;
mod error;
pub mod openapi;
mod queue;
pub mod reference;
mod resources;
mod routes;
pub mod schemas;

use actix_session::SessionExt;
use actix_web::{FromRequest, HttpRequest, dev::Payload, http::Method, web};
use futures_util::future::LocalBoxFuture;

use crate::{
    audit::{Actor, AuditContext},
    domain::accounts::{User, tokens},
    web::{
        AppState,
        auth::{Visitor, client_address},
        csrf, with_conn,
    },
};

pub use error::{ApiError, ErrorCode};

/// The most a body of most calls may be.
const BODY_LIMIT: usize = 64 * 1024;

/// The most a body that queues many tasks may be: 10,000 parameter sets of about 200 bytes.
pub const LARGE_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The larger limit of the calls that queue many tasks, for the input guard, which reads a
/// body before the route's own extractor does.
pub fn large_body_limit(method: &Method, path: &str) -> Option<usize> {
    let queues_many = matches!(path, "/api/v1/tasks" | "/api/v1/batches");
    (method == Method::POST && queues_many).then_some(LARGE_BODY_LIMIT)
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| {
            ApiError::bad_request(
                ErrorCode::InvalidJson,
                format!("The body is not the JSON expected: {err}"),
            )
            .into()
        })
}

/// One route of `/api/v1`: its method, its path under `/api/v1` as actix reads it, and how
/// the route reaches its handler.
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
    handler: fn(actix_web::Route) -> actix_web::Route,
}

/// Every route of `/api/v1`. The router is built from this table and the OpenAPI test checks
/// each row against the document (and each operation of the document against it), so a route
/// added here without its description, or described and gone, fails that test.
pub static ROUTES: &[ApiRoute] = &[
    route(Method::GET, "/openapi.json", |r| r.to(openapi::document)),
    route(Method::GET, "/programs", |r| r.to(routes::programs)),
    route(Method::POST, "/programs", |r| r.to(routes::register)),
    route(Method::GET, "/tasks", |r| r.to(routes::tasks)),
    route(Method::POST, "/tasks", |r| r.to(queue::run)),
    route(Method::POST, "/tasks/bulk", |r| r.to(routes::bulk)),
    route(Method::GET, "/tasks/{id}", |r| r.to(routes::task)),
    route(Method::POST, "/batches", |r| r.to(queue::create_batch)),
    route(Method::GET, "/batches/{id}", |r| r.to(queue::batch)),
    route(Method::GET, "/programs/{name}/options", |r| {
        r.to(queue::program_options)
    }),
    route(Method::PUT, "/programs/{name}/options", |r| {
        r.to(queue::set_program_options)
    }),
    route(Method::POST, "/programs/{name}/{verb:pause|resume}", |r| {
        r.to(routes::pause)
    }),
    route(Method::POST, "/tasks/{id}/cancel", |r| r.to(routes::cancel)),
];

const fn route(
    method: Method,
    path: &'static str,
    handler: fn(actix_web::Route) -> actix_web::Route,
) -> ApiRoute {
    ApiRoute {
        method,
        path,
        handler,
    }
}

/// One resource per path of `ROUTES`, in the table's order; a path's other methods answer
/// the API's 404 as an unknown path does.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut scope = web::scope("/api/v1")
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("The query string is not valid: {err}"),
            )
            .into()
        }))
        .default_service(web::to(no_such_route));
    // Each path once, where the table first names it: a second resource for the same path
    // would never be reached, its first one answering 404 for the other's method.
    let mut paths: Vec<&str> = Vec::new();
    for route in ROUTES {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let limit = large_body_limit(&Method::POST, &format!("/api/v1{path}"));
        let mut resource = web::resource(path)
            .default_service(web::to(no_such_route))
            .app_data(json_config(limit.unwrap_or(BODY_LIMIT)));
        for route in ROUTES.iter().filter(|route| route.path == path) {
            resource = resource.route((route.handler)(web::method(route.method.clone())));
        }
        scope = scope.service(resource);
    }
    cfg.service(scope);
}

/// A path or method the API does not have (a resource's other methods too).
async fn no_such_route() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such API route"))
}

/// Why a state-changing call authenticated by the session cookie is refused, if it is: it must
/// carry an Origin or Sec-Fetch-Site header (so the cross-site check can judge it) and the
/// session's CSRF token in `X-CSRF-Token`.
fn session_call_is_forged(req: &HttpRequest) -> Option<&'static str> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("origin").is_none() && header("sec-fetch-site").is_none() {
        return Some("A call with a session cookie needs an Origin or Sec-Fetch-Site header.");
    }
    let session = req.get_session();
    match header("x-csrf-token") {
        Some(token) if csrf::verify(&session, token).is_ok() => None,
        _ => Some(
            "A call with a session cookie needs the X-CSRF-Token header (the token of the \
             session's forms); or use an API token.",
        ),
    }
}

/// A staff member calling the API, by token or by session, and who that is for the audit log
/// (a token by its name).
pub struct ApiStaff(pub User, pub AuditContext);

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
        // A browser's session is sent by the browser whoever made the page: a call that changes
        // something must also prove it came from one of our pages, as a form does.
        let forged = (bearer.is_none() && !req.method().is_safe())
            .then(|| session_call_is_forged(req))
            .flatten();
        let visitor = Visitor::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let address = client_address(req);
        Box::pin(async move {
            if let Some(reason) = forged {
                return Err(ApiError::csrf_rejected(reason));
            }
            let (user, token_name) = match bearer {
                Some(token) => {
                    let state = state.ok_or_else(|| ApiError::internal("no app state"))?;
                    let (user, name) =
                        with_conn(&state, move |conn| tokens::authenticate(conn, &token))
                            .await
                            .map_err(ApiError::from)?
                            .ok_or_else(ApiError::token_refused)?;
                    (user, Some(name))
                }
                None => {
                    let user = visitor.await.map_err(ApiError::from)?.0.ok_or_else(|| {
                        ApiError::unauthenticated("Log in as staff or send an API token.")
                    })?;
                    (user, None)
                }
            };
            if !user.is_staff() {
                return Err(ApiError::forbidden());
            }
            let actor = match token_name {
                Some(name) => Actor::Token {
                    name,
                    owner: user.login.to_string(),
                },
                None => Actor::Staff(user.login.to_string()),
            };
            Ok(ApiStaff(user, AuditContext::new(actor, Some(address))))
        })
    }
}
