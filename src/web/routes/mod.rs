mod account;
mod account_email;
mod account_page;
mod admin_api;
mod admin_audit;
mod admin_batches;
mod admin_books;
mod admin_imports;
mod admin_mail;
mod admin_overview;
mod admin_program;
mod admin_programs;
mod admin_task_list;
mod admin_tasks;
mod admin_tokens;
mod admin_users;
pub(crate) mod cart;
mod catalog;
mod covers;
pub(crate) mod health;
mod home;
mod orders;
mod password_forgotten;
mod password_reset;

use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;

use crate::web::{error::html, layout::Layout};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home::get))
        .route("/healthz", web::get().to(health::get))
        .route("/readyz", web::get().to(health::ready))
        .route("/favicon.ico", web::get().to(covers::favicon))
        .route("/register", web::get().to(account::register_form))
        .route("/register", web::post().to(account::register))
        .route("/login", web::get().to(account::login_form))
        .route("/login", web::post().to(account::login))
        .route("/logout", web::post().to(account::logout))
        .route("/account", web::get().to(account_page::show))
        .route("/account/name", web::post().to(account_page::change_name))
        .route(
            "/account/name",
            web::get().to(account_page::back_to_account),
        )
        .route(
            "/account/password",
            web::post().to(account_page::change_password),
        )
        .route(
            "/account/password",
            web::get().to(account_page::back_to_account),
        )
        .route("/account/email", web::post().to(account_email::change))
        .route(
            "/account/email",
            web::get().to(account_page::back_to_account),
        )
        .route("/account/email/{token}", web::get().to(account_email::show))
        .route(
            "/account/email/{token}",
            web::post().to(account_email::confirm),
        )
        .route(
            "/password-forgotten",
            web::get().to(password_forgotten::form),
        )
        .route(
            "/password-forgotten",
            web::post().to(password_forgotten::request),
        )
        .route(
            "/password-reset/{token}",
            web::get().to(password_reset::show),
        )
        .route(
            "/password-reset/{token}",
            web::post().to(password_reset::reset),
        )
        .route("/books", web::get().to(catalog::list))
        .route("/books/{id}", web::get().to(catalog::show))
        .route("/books/{id}/cover.svg", web::get().to(covers::show))
        .route("/cart", web::get().to(cart::show))
        .route("/cart/items", web::post().to(cart::add))
        .route("/cart/items/{id}/change", web::post().to(cart::change))
        .route(
            "/cart/items/{id}/quantity",
            web::post().to(cart::set_quantity),
        )
        .route("/cart/items/{id}/remove", web::post().to(cart::remove))
        .route("/checkout", web::post().to(cart::checkout))
        .route("/orders", web::get().to(orders::list))
        .route("/orders/{id}", web::get().to(orders::show))
        .route("/admin", web::get().to(admin_overview::overview))
        .route("/admin/programs", web::get().to(admin_programs::programs))
        .route("/admin/programs", web::post().to(admin_programs::register))
        .route("/admin/programs/{name}", web::get().to(admin_program::show))
        .route(
            "/admin/programs/{name}/options",
            web::post().to(admin_program::save_options),
        )
        .route(
            "/admin/programs/{name}/run",
            web::get().to(admin_programs::run_form),
        )
        .route(
            "/admin/programs/{name}/run",
            web::post().to(admin_programs::run),
        )
        .route(
            "/admin/programs/{name}/settings",
            web::post().to(admin_programs::settings),
        )
        .route(
            "/admin/programs/{name}/{verb:pause|resume}",
            web::post().to(admin_programs::pause_or_resume),
        )
        .route("/admin/tasks", web::get().to(admin_task_list::list))
        .route("/admin/tasks/bulk", web::get().to(admin_task_list::confirm))
        .route("/admin/tasks/bulk", web::post().to(admin_task_list::apply))
        .route("/admin/tasks/{id}", web::get().to(admin_tasks::task))
        .route(
            "/admin/tasks/{id}/cancel",
            web::get().to(admin_tasks::confirm),
        )
        .route(
            "/admin/tasks/{id}/cancel",
            web::post().to(admin_tasks::cancel),
        )
        .route(
            "/admin/tasks/{id}/rerun",
            web::get().to(admin_tasks::confirm),
        )
        .route(
            "/admin/tasks/{id}/rerun",
            web::post().to(admin_tasks::rerun),
        )
        .route(
            "/admin/tasks/{id}/result.{format}",
            web::get().to(admin_tasks::download),
        )
        .route("/admin/batches/{id}", web::get().to(admin_batches::show))
        .route("/admin/imports", web::post().to(admin_imports::upload))
        .route("/admin/api", web::get().to(admin_api::show))
        .route("/admin/tokens", web::get().to(admin_tokens::list))
        .route("/admin/tokens", web::post().to(admin_tokens::create))
        .route(
            "/admin/tokens/{id}/revoke",
            web::get().to(admin_tokens::confirm_revoke),
        )
        .route(
            "/admin/tokens/{id}/revoke",
            web::post().to(admin_tokens::revoke),
        )
        .route("/admin/books", web::get().to(admin_books::list))
        .route(
            "/admin/books/{id}/{verb:hide|unhide}",
            web::post().to(admin_books::hide_or_unhide),
        )
        .route("/admin/audit", web::get().to(admin_audit::list))
        .route("/admin/mail", web::get().to(admin_mail::list))
        .route("/admin/mail/{id}/retry", web::post().to(admin_mail::retry))
        .route("/admin/users", web::get().to(admin_users::show))
        .route(
            "/admin/users/password-reset",
            web::post().to(admin_users::create_reset_link),
        )
        .route("/admin/books/new", web::get().to(admin_books::new_form))
        .route("/admin/books/new", web::post().to(admin_books::save))
        .route(
            "/admin/books/{id}/edit",
            web::get().to(admin_books::edit_form),
        )
        .route("/admin/books/{id}/edit", web::post().to(admin_books::save));
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
