//! `/admin/users`: staff create a one-time password reset link for an account and hand it
//! over themselves (customers can also ask for one by mail on `/password-forgotten`).

use actix_session::Session;
use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    domain::accounts::{
        Login,
        resets::{self, CreateLinkError, LinkIssuer},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, html},
        layout::Layout,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    layout: Layout,
    csrf_token: String,
    login: String,
    error: Option<String>,
    /// The link just created: shown this once.
    new_link: Option<NewLink>,
}

pub struct NewLink {
    url: String,
    login: String,
    /// When it stops working, formatted.
    expires: String,
}

/// `GET /admin/users`
pub async fn show(_staff: Staff, layout: Layout, session: Session) -> UsersPage {
    UsersPage {
        layout,
        csrf_token: csrf::token(&session),
        login: String::new(),
        error: None,
        new_link: None,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetLinkForm {
    login: String,
}

/// `POST /admin/users/password-reset`: answers with the page itself (no redirect), so the link
/// is shown once and kept nowhere, not even in a flash message.
pub async fn create_reset_link(
    state: web::Data<AppState>,
    Staff(_, context): Staff,
    layout: Layout,
    session: Session,
    CsrfForm(form): CsrfForm<ResetLinkForm>,
) -> Result<HttpResponse, WebError> {
    let mut page = UsersPage {
        layout,
        csrf_token: csrf::token(&session),
        login: form.login.trim().to_owned(),
        error: None,
        new_link: None,
    };
    let login = match Login::parse(&form.login) {
        Ok(login) => login,
        Err(message) => {
            page.error = Some(message);
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let created = with_conn(&state, move |conn| {
        Ok::<_, WebError>(resets::create_link(
            conn,
            &context,
            &login,
            LinkIssuer::StaffPage,
        ))
    })
    .await?;
    match created {
        Ok(link) => {
            // The shop's public address, never the request's Host header (which the client
            // chooses).
            let url = state.programs.mail.link(&link.path());
            let expires = link.expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
            page.new_link = Some(NewLink {
                url,
                login: link.user.login,
                expires,
            });
            page.login = String::new();
            Ok(html(StatusCode::CREATED, &page))
        }
        Err(err @ (CreateLinkError::UnknownLogin(_) | CreateLinkError::StaffAccount(_))) => {
            page.error = Some(err.to_string());
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(CreateLinkError::Database(err)) => Err(err.into()),
    }
}
