//! `/password-forgotten`: "Forgot your password?". A login or an address in; a reset link
//! goes by mail to the account's confirmed address, if there is such an account. The page
//! says the same thing whether or not there is one.

use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    audit::{Actor, AuditContext},
    domain::accounts::forgot::{self, ForgotError},
    web::{
        AppState,
        auth::client_address,
        csrf::{CsrfForm, FormToken},
        error::{WebError, html},
        layout::Layout,
        routes::account::try_again_in,
        with_conn,
    },
};

#[derive(Template)]
#[template(path = "password_forgotten.html")]
struct ForgottenPage {
    layout: Layout,
    csrf_token: String,
    who: String,
    error: Option<String>,
    /// The form was taken: the page says where the link went, if anywhere.
    sent: bool,
}

/// `GET /password-forgotten`
pub async fn form(layout: Layout, token: FormToken) -> HttpResponse {
    let page = ForgottenPage {
        layout,
        csrf_token: token.token.clone(),
        who: String::new(),
        error: None,
        sent: false,
    };
    token.respond(html(StatusCode::OK, &page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgottenForm {
    who: String,
}

/// `POST /password-forgotten`: the same answer for an account that exists and one that does
/// not; only the network address's own throttle is told (it says nothing about accounts).
pub async fn request(
    state: web::Data<AppState>,
    req: HttpRequest,
    CsrfForm(form): CsrfForm<ForgottenForm>,
) -> Result<HttpResponse, WebError> {
    let mut page = ForgottenPage {
        layout: Layout::extract(&req).await?,
        csrf_token: String::new(),
        who: form.who.trim().chars().take(254).collect(),
        error: None,
        sent: false,
    };
    let status = match forgot::parse_who(&form.who) {
        None => {
            page.error = Some(
                "Type your login (3 to 32 letters, digits, dots, dashes or underscores) or your \
                 e-mail address."
                    .into(),
            );
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(who) => {
            let address = client_address(&req);
            let context = AuditContext::new(Actor::Visitor, Some(address.clone()));
            let policy = state.throttle;
            let outcome = with_conn(&state, move |conn| {
                Ok::<_, WebError>(forgot::request_reset_mail(
                    conn, &policy, &context, &address, &who,
                ))
            })
            .await?;
            match outcome {
                Ok(_queued_or_not) => {
                    page.sent = true;
                    StatusCode::OK
                }
                Err(ForgotError::Throttled { until }) => {
                    page.error = Some(format!(
                        "Too many requests from your network lately: {}.",
                        try_again_in(until)
                    ));
                    StatusCode::TOO_MANY_REQUESTS
                }
                Err(ForgotError::Database(err)) => return Err(err.into()),
            }
        }
    };
    let token = FormToken::extract(&req).await?;
    page.csrf_token = token.token.clone();
    Ok(token.respond(html(status, &page)))
}
