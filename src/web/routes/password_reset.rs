//! `/password-reset/{token}`: a one-time link (from staff or `bookstore reset-password`) that
//! sets a new password. Its visitor is usually not logged in, so the form's CSRF token may
//! live in a cookie of its own ([`FormToken`]), as on the log-in page.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use crate::ids::UserId;
use crate::{
    audit::{Actor, AuditContext},
    domain::accounts::{
        User,
        resets::{self, LinkState, ResetError, ResetToken},
        sessions::USER_ID_KEY,
    },
    web::{
        AppState,
        auth::{client_address, end_session},
        csrf::{CsrfForm, FormToken},
        error::{WebError, html, see_other},
        flash,
        forms::{FieldErrors, judge_new_password},
        layout::Layout,
        with_conn,
    },
};

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    layout: Layout,
    csrf_token: String,
    action: String,
    login: String,
    errors: FieldErrors,
}

/// A link that does not work (any more), and why.
#[derive(Template)]
#[template(path = "password_reset_unusable.html")]
struct UnusablePage {
    layout: Layout,
    reason: &'static str,
}

fn unusable(layout: Layout, state: &LinkState) -> HttpResponse {
    let (status, reason) = match state {
        LinkState::Used => (StatusCode::GONE, "This link has been used already."),
        LinkState::Expired => (
            StatusCode::GONE,
            "This link has expired: a link works for 30 minutes.",
        ),
        LinkState::Unknown | LinkState::Usable(_) => (
            StatusCode::NOT_FOUND,
            "This is not a valid link: it may be mistyped, or a newer link for the account \
             replaced it.",
        ),
    };
    html(status, &UnusablePage { layout, reason })
}

/// The link's state; anything that is not 64 hex digits is no link.
async fn link_state(state: &AppState, token: &str) -> Result<LinkState, WebError> {
    let Some(token) = ResetToken::parse(token) else {
        return Ok(LinkState::Unknown);
    };
    with_conn(state, move |conn| resets::check(conn, &token)).await
}

async fn form_page(
    req: &HttpRequest,
    user: &User,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let token = FormToken::extract(req).await?;
    let page = ResetPage {
        layout: Layout::extract(req).await?,
        csrf_token: token.token.clone(),
        action: req.path().to_owned(),
        login: user.login.clone(),
        errors,
    };
    Ok(token.respond(html(status, &page)))
}

/// `GET /password-reset/{token}`
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    match link_state(&state, &path).await? {
        LinkState::Usable(user) => {
            form_page(&req, &user, FieldErrors::default(), StatusCode::OK).await
        }
        other => Ok(unusable(Layout::extract(&req).await?, &other)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    password: String,
    password_confirmation: String,
}

/// `POST /password-reset/{token}`: sets the password, uses up the link and ends every session
/// of the account; then the visitor logs in with the new password.
pub async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<HttpResponse, WebError> {
    // Checked first so that the new password is judged against the account's login and name.
    let user = match link_state(&state, &path).await? {
        LinkState::Usable(user) => user,
        other => return Ok(unusable(Layout::extract(&req).await?, &other)),
    };
    let mut errors = FieldErrors::default();
    let password = errors.check(
        "password",
        judge_new_password(&form.password, &[&user.login, &user.display_name]).await?,
    );
    if password.is_some() && form.password != form.password_confirmation {
        errors.add("password_confirmation", "The two passwords do not match.");
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        return form_page(&req, &user, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    // The link was usable a moment ago; `use_link` decides, once, whether it still is.
    let token = ResetToken::parse(&path).ok_or(WebError::NotFound)?;
    let context = AuditContext::new(Actor::Visitor, Some(client_address(&req)));
    let used = with_conn(&state, move |conn| {
        Ok::<_, WebError>(resets::use_link(conn, &context, &token, &password))
    })
    .await?;
    match used {
        Ok(user) => {
            // This browser's session was the account's too: it is gone from the table, so
            // the message needs a new (anonymous) session to travel in.
            if session.get::<UserId>(USER_ID_KEY).ok().flatten() == Some(user.id) {
                end_session(&session);
            }
            flash::success(
                &session,
                format!(
                    "The password of {} is set, and every session of the account has ended. \
                     Log in with the new password.",
                    user.login
                ),
            );
            Ok(see_other("/login"))
        }
        Err(ResetError::NotUsable) => {
            // Used or expired in the meantime: say which.
            let now = link_state(&state, &path).await?;
            Ok(unusable(Layout::extract(&req).await?, &now))
        }
        Err(ResetError::Database(err)) => Err(err.into()),
        Err(other) => Err(WebError::internal(other)),
    }
}
