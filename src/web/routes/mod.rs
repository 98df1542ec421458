mod account;
mod admin;
mod health;
mod home;

use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;

use crate::web::{error::html, layout::Layout};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home::get))
        .route("/healthz", web::get().to(health::get))
        .route("/register", web::get().to(account::register_form))
        .route("/register", web::post().to(account::register))
        .route("/login", web::get().to(account::login_form))
        .route("/login", web::post().to(account::login))
        .route("/logout", web::post().to(account::logout))
        .route("/admin", web::get().to(admin::overview));
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
