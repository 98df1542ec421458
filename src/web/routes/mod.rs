mod health;
mod home;

use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;

use crate::web::{error::html, layout::Layout};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home::get))
        .route("/healthz", web::get().to(health::get));
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    layout: Layout,
}

/// Any unknown path, whatever the method.
pub async fn not_found(layout: Layout) -> HttpResponse {
    html(StatusCode::NOT_FOUND, &NotFoundPage { layout })
}
