//! The account's e-mail address: asking for a new one on `/account` (a confirmation link goes
//! to it), and the link itself, `/account/email/{token}`, which makes it the account's. The
//! link works without logging in (it is opened where the mail is read); opening it shows a
//! button, so a mail scanner that fetches links confirms nothing.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    audit::{Actor, AuditContext},
    domain::accounts::email::{
        self, ConfirmError, ConfirmationToken, EmailAddress, EmailChangeError, LinkState,
    },
    web::{
        AppState,
        auth::{CurrentUser, client_address},
        csrf::{CsrfForm, FormToken},
        error::{WebError, html, see_other},
        flash,
        forms::FieldErrors,
        layout::Layout,
        routes::account_page::again,
        with_conn,
    },
};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
}

/// `POST /account/email`
pub async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<HttpResponse, WebError> {
    let refused = async |message: String, status| {
        let mut errors = FieldErrors::default();
        errors.add("email", message);
        again(&state, &req, &session, user.clone(), None, errors, status).await
    };
    let address = match EmailAddress::parse(&form.email) {
        Ok(address) => address,
        Err(message) => return refused(message, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let context = AuditContext::new(user.actor(), Some(client_address(&req)));
    let (asking, wanted) = (user.clone(), address.clone());
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(email::request_change(conn, &context, &asking, &wanted))
    })
    .await?;
    match outcome {
        Ok(_) => {
            flash::success(
                &session,
                format!(
                    "We sent a link to {}: your address changes when you open it (within 24 \
                     hours).",
                    address.as_str()
                ),
            );
            Ok(see_other("/account"))
        }
        Err(EmailChangeError::Database(err)) => Err(err.into()),
        Err(err @ EmailChangeError::Unchanged) => {
            refused(err.to_string(), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err @ EmailChangeError::Throttled) => {
            refused(err.to_string(), StatusCode::TOO_MANY_REQUESTS).await
        }
    }
}

#[derive(Template)]
#[template(path = "email_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    csrf_token: String,
    action: String,
    email: String,
    login: String,
    /// Why the link does not work, when it does not.
    problem: Option<&'static str>,
}

fn problem(state: &LinkState) -> (StatusCode, &'static str) {
    match state {
        LinkState::Used => (StatusCode::GONE, "This link has been used already."),
        LinkState::Expired => (
            StatusCode::GONE,
            "This link has expired: a link works for 24 hours. Ask for a new one on your account page.",
        ),
        LinkState::Unknown | LinkState::Usable { .. } => (
            StatusCode::NOT_FOUND,
            "This is not a valid link: it may be mistyped.",
        ),
    }
}

/// `GET /account/email/{token}`
pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let layout = Layout::extract(&req).await?;
    let text = path.into_inner();
    let action = format!("/account/email/{text}");
    let link = match ConfirmationToken::parse(&text) {
        Some(token) => with_conn(&state, move |conn| email::check(conn, &token)).await?,
        None => LinkState::Unknown,
    };
    let token = FormToken::extract(&req).await?;
    let mut page = ConfirmPage {
        layout,
        csrf_token: token.token.clone(),
        action,
        email: String::new(),
        login: String::new(),
        problem: None,
    };
    let status = match link {
        LinkState::Usable { email, login } => {
            page.email = email;
            page.login = login;
            StatusCode::OK
        }
        other => {
            let (status, why) = problem(&other);
            page.problem = Some(why);
            status
        }
    };
    Ok(token.respond(html(status, &page)))
}

/// `POST /account/email/{token}`
pub async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<crate::web::forms::NoFields>,
) -> Result<HttpResponse, WebError> {
    let Some(token) = ConfirmationToken::parse(&path.into_inner()) else {
        return Err(WebError::NotFound);
    };
    let context = AuditContext::new(Actor::Visitor, Some(client_address(&req)));
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(email::confirm(conn, &context, &token))
    })
    .await?;
    match outcome {
        Ok((user, address)) => {
            flash::success(
                &session,
                format!(
                    "{} is now the address of the account {}.",
                    address.as_str(),
                    user.login
                ),
            );
            Ok(see_other("/account"))
        }
        Err(ConfirmError::Database(err)) => Err(err.into()),
        Err(err) => {
            let status = match err {
                ConfirmError::AddressTaken => StatusCode::CONFLICT,
                _ => StatusCode::GONE,
            };
            let page = ConfirmPage {
                layout: Layout::extract(&req).await?,
                csrf_token: String::new(),
                action: String::new(),
                email: String::new(),
                login: String::new(),
                problem: Some(match err {
                    ConfirmError::AddressTaken => {
                        "Another account has confirmed this address meanwhile: it stays that account's."
                    }
                    _ => "This link was used already or has expired.",
                }),
            };
            Ok(html(status, &page))
        }
    }
}
