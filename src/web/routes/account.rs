//! Register, log in, log out.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::Utc;
use serde::Deserialize;

use crate::{
    domain::accounts::{
        self, DisplayName, Login, LoginError, RegisterError, SignUp, email::EmailAddress,
    },
    web::routes::cart,
    web::{
        AppState,
        auth::{
            client_address, end_session, known_device, remember_device, safe_next, start_session,
        },
        csrf::{CsrfForm, FormToken},
        error::{WebError, html, see_other},
        flash,
        forms::NoFields,
        forms::{FieldErrors, judge_new_password},
        layout::Layout,
        with_conn,
    },
};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    login: String,
    display_name: String,
    email: String,
    password: String,
    password_confirmation: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
pub struct RegisterPage {
    layout: Layout,
    csrf_token: String,
    /// The visitor's input, kept when the form comes back with errors (passwords never are).
    login: String,
    display_name: String,
    email: String,
    errors: FieldErrors,
}

pub async fn register_form(layout: Layout, token: FormToken) -> HttpResponse {
    let page = RegisterPage {
        layout,
        csrf_token: token.token.clone(),
        login: String::new(),
        display_name: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
    };
    token.respond(html(StatusCode::OK, &page))
}

/// `POST /register`: creates a customer account and logs it in.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<HttpResponse, WebError> {
    let mut errors = FieldErrors::default();
    let login = errors.check("login", Login::parse(&form.login));
    let name = errors.check("display_name", DisplayName::parse(&form.display_name));
    let email = errors.check("email", EmailAddress::parse(&form.email));
    let password = errors.check(
        "password",
        judge_new_password(&form.password, &[&form.login, &form.display_name]).await?,
    );
    if password.is_some() && form.password != form.password_confirmation {
        errors.add("password_confirmation", "The two passwords do not match.");
    }
    // The layout (which takes pending flash messages) only when the form is shown again.
    let again = async |errors| {
        let token = FormToken::extract(&req).await?;
        let page = RegisterPage {
            layout: Layout::extract(&req).await?,
            csrf_token: token.token.clone(),
            login: form.login.trim().to_owned(),
            display_name: form.display_name.clone(),
            email: form.email.trim().to_owned(),
            errors,
        };
        Ok(token.respond(html(StatusCode::UNPROCESSABLE_ENTITY, &page)))
    };
    let (Some(login), Some(display_name), Some(email), Some(password), true) =
        (login, name, email, password, errors.is_empty())
    else {
        return again(errors).await;
    };
    let address = client_address(&req);
    let policy = state.throttle;
    let sign_up = SignUp {
        login,
        display_name,
        password,
        email,
    };
    let created = with_conn(&state, move |conn| {
        Ok::<_, WebError>(accounts::sign_up(conn, &policy, &address, &sign_up))
    })
    .await?;
    match created {
        Ok(user) => {
            start_session(&session, &user)?;
            flash::success(
                &session,
                format!(
                    "Welcome to the shop, {}! We sent a link to {}: open it to confirm your \
                     address.",
                    user.display_name,
                    form.email.trim()
                ),
            );
            let then = cart::finish_pending_add(&state, &session, user.id).await?;
            Ok(see_other(then.as_deref().unwrap_or("/")))
        }
        Err(RegisterError::LoginTaken) => {
            errors.add("login", "That login is taken: choose another one.");
            again(errors).await
        }
        Err(RegisterError::Throttled { until }) => {
            errors.add(
                "login",
                format!(
                    "Too many accounts were created from your network lately: {}.",
                    try_again_in(until)
                ),
            );
            let mut response = again(errors).await?;
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            Ok(response)
        }
        Err(other) => Err(WebError::internal(other)),
    }
}

/// "try again in 8 seconds" / "try again in 3 minutes".
pub(crate) fn try_again_in(until: chrono::DateTime<Utc>) -> String {
    let seconds = (until - Utc::now()).num_seconds().max(1);
    match seconds {
        1 => "try again in a second".to_owned(),
        2..=90 => format!("try again in {seconds} seconds"),
        _ => format!("try again in {} minutes", (seconds + 59) / 60),
    }
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    login: String,
    password: String,
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    layout: Layout,
    csrf_token: String,
    login: String,
    next: String,
    error: Option<String>,
    /// The error is about what was typed (not the throttle): the fields are marked invalid.
    wrong_credentials: bool,
}

pub async fn login_form(
    layout: Layout,
    token: FormToken,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let page = LoginPage {
        layout,
        csrf_token: token.token.clone(),
        login: String::new(),
        next: safe_next(query.next.as_deref()),
        error: None,
        wrong_credentials: false,
    };
    token.respond(html(StatusCode::OK, &page))
}

/// `POST /login`: on success ends every earlier session of the user and starts a new one.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let address = client_address(&req);
    let policy = state.throttle;
    let (login, password) = (form.login.clone(), form.password.clone());
    let device = known_device(&req);
    let outcome = with_conn(&state, move |conn| {
        let outcome = accounts::log_in(conn, &policy, &login, &password, &address, device.as_ref());
        Ok::<_, WebError>(outcome)
    })
    .await?;
    let (status, error) = match outcome {
        Ok((user, device)) => {
            start_session(&session, &user)?;
            flash::success(&session, format!("Welcome back, {}!", user.display_name));
            let then = cart::finish_pending_add(&state, &session, user.id).await?;
            let mut response = see_other(&then.unwrap_or_else(|| safe_next(Some(&form.next))));
            remember_device(&state, &mut response, &device);
            return Ok(response);
        }
        Err(LoginError::WrongCredentials) => (
            StatusCode::UNAUTHORIZED,
            "Wrong login or password.".to_owned(),
        ),
        Err(LoginError::Throttled { until }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed log-ins from here. For your safety, {}.",
                try_again_in(until)
            ),
        ),
        Err(LoginError::Database(err)) => return Err(err.into()),
    };
    let token = FormToken::extract(&req).await?;
    let page = LoginPage {
        layout: Layout::extract(&req).await?,
        csrf_token: token.token.clone(),
        login: form.login.trim().to_owned(),
        next: safe_next(Some(&form.next)),
        error: Some(error),
        wrong_credentials: status == StatusCode::UNAUTHORIZED,
    };
    Ok(token.respond(html(status, &page)))
}

/// `POST /logout`: deletes the session row, not just the cookie.
pub async fn logout(session: Session, _form: CsrfForm<NoFields>) -> HttpResponse {
    end_session(&session);
    flash::info(&session, "You have been logged out.");
    see_other("/")
}
