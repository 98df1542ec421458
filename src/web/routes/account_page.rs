//! `/account`: a logged-in customer's name, password, session and orders.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    domain::{
        accounts::{
            self, DisplayName, PasswordChangeError, User, email,
            sessions::{self, SessionInfo},
        },
        orders::{self, OrderSummary},
    },
    web::{
        AppState,
        auth::{CurrentUser, client_address, known_device, remember_device, start_session},
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash,
        forms::{FieldErrors, judge_new_password},
        layout::Layout,
        routes::account::try_again_in,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    layout: Layout,
    csrf_token: String,
    user: User,
    /// The name form's value: the stored name, or what was typed when it comes back.
    name: String,
    /// Both forms' messages (their field names differ); passwords are never echoed.
    errors: FieldErrors,
    session: Option<SessionInfo>,
    orders: Vec<OrderSummary>,
    /// The confirmed address, and one waiting for its link to be opened.
    email: Option<String>,
    pending_email: Option<String>,
}

async fn account_page(
    state: &AppState,
    user: User,
    layout: Layout,
    session: &Session,
    name: Option<String>,
    errors: FieldErrors,
) -> Result<AccountPage, WebError> {
    let user_id = user.id;
    let (current, orders, email, pending_email) = with_conn(state, move |conn| {
        Ok::<_, diesel::result::Error>((
            sessions::current_of(conn, user_id)?,
            orders::orders_of(conn, user_id)?,
            email::address_of(conn, user_id)?.map(|address| address.as_str().to_owned()),
            email::pending_address(conn, user_id)?,
        ))
    })
    .await?;
    Ok(AccountPage {
        layout,
        csrf_token: csrf::token(session),
        name: name.unwrap_or_else(|| user.display_name.clone()),
        user,
        errors,
        session: current,
        orders,
        email,
        pending_email,
    })
}

/// The page again, with the form's errors (the layout only now: it takes the flash messages).
pub(crate) async fn again(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: User,
    name: Option<String>,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let layout = Layout::extract(req).await?;
    let page = account_page(state, user, layout, session, name, errors).await?;
    Ok(html(status, &page))
}

/// `GET /account`
pub async fn show(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    layout: Layout,
    session: Session,
) -> Result<AccountPage, WebError> {
    account_page(&state, user, layout, &session, None, FieldErrors::default()).await
}

/// `GET /account/name` and `GET /account/password`: a refused form is shown again at its
/// POST address, so going back to it, or opening it from the history, lands on the account
/// page instead of a 404.
pub async fn back_to_account() -> HttpResponse {
    see_other("/account")
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameForm {
    display_name: String,
}

/// `POST /account/name`
pub async fn change_name(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<HttpResponse, WebError> {
    let name = match DisplayName::parse(&form.display_name) {
        Ok(name) => name,
        Err(message) => {
            let mut errors = FieldErrors::default();
            errors.add("display_name", message);
            let typed = Some(form.display_name);
            return again(
                &state,
                &req,
                &session,
                user,
                typed,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let (user_id, stored) = (user.id, name.clone());
    with_conn(&state, move |conn| {
        accounts::change_display_name(conn, user_id, &stored)
    })
    .await?;
    flash::success(&session, format!("Your name is now {}.", name.as_str()));
    Ok(see_other("/account"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    new_password_confirmation: String,
}

/// `POST /account/password`: on success every other session of the user ends and this one
/// goes on under a new token.
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    CurrentUser(user): CurrentUser,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let mut errors = FieldErrors::default();
    if form.current_password.is_empty() {
        errors.add("current_password", "Type your current password.");
    }
    let new = errors.check(
        "new_password",
        judge_new_password(&form.new_password, &[&user.login, &user.display_name]).await?,
    );
    if new.is_some() && form.new_password != form.new_password_confirmation {
        errors.add(
            "new_password_confirmation",
            "The two new passwords do not match.",
        );
    }
    if new.is_some() && form.new_password == form.current_password {
        errors.add("new_password", "The new password is your current one.");
    }
    // The form is checked before the current password: a refused form costs no guess.
    let (Some(new), true) = (new, errors.is_empty()) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return again(&state, &req, &session, user, None, errors, status).await;
    };
    let (policy, address) = (state.throttle, client_address(&req));
    let (checked, current) = (user.clone(), form.current_password);
    let device = known_device(&req);
    let changed = with_conn(&state, move |conn| {
        Ok::<_, WebError>(accounts::change_password(
            conn,
            &policy,
            &checked,
            &current,
            &new,
            &address,
            device.as_ref(),
        ))
    })
    .await?;
    let status = match changed {
        Ok(device) => {
            // The change deleted every session of the user, this one too; renewing stores
            // this browser's state again under a new token, as a log-in would.
            start_session(&session, &user)?;
            flash::success(
                &session,
                "Your password is changed. Every other session of your account has ended; \
                 this one goes on.",
            );
            // This browser knows the new password: it stays a known device.
            let mut response = see_other("/account");
            remember_device(&state, &mut response, &device);
            return Ok(response);
        }
        Err(PasswordChangeError::WrongPassword) => {
            errors.add(
                "current_password",
                "That is not your current password. Nothing was changed.",
            );
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(PasswordChangeError::Throttled { until }) => {
            errors.add(
                "current_password",
                format!(
                    "Too many wrong passwords from here. For your safety, {}.",
                    try_again_in(until)
                ),
            );
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(PasswordChangeError::Database(err)) => return Err(err.into()),
        Err(other) => return Err(WebError::internal(other)),
    };
    again(&state, &req, &session, user, None, errors, status).await
}
