//! `/admin/tokens`: a staff member's personal API tokens (create, shown once; revoke, after a
//! confirmation).

use actix_session::Session;
use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Days, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ApiTokenId, UserId};
use crate::{
    domain::accounts::tokens::{self, CreateError, MAX_LIFETIME_DAYS, TokenInfo},
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash,
        forms::FieldErrors,
        forms::NoFields,
        layout::Layout,
        with_conn,
    },
};

/// The session key under which `POST /admin/tokens` leaves the token it made for the next
/// `GET /admin/tokens`, which shows it and removes it.
///
/// The trade-off: answering the POST with the page itself kept the token out of any storage,
/// but a refresh re-sent the form and made a second token. With post/redirect/get the token
/// must cross the redirect, so it sits in clear in this session's row (server-side, in
/// PostgreSQL; the cookie holds only the session id) for the milliseconds until the browser
/// follows the redirect. It is removed when shown, ignored once older than
/// [`NEW_TOKEN_SHOWN_FOR`], and gone with the session at log-out. It is kept apart from flash
/// messages so that no other page can display it by accident.
const NEW_TOKEN_KEY: &str = "new_api_token";

/// How long a token left in the session for display stays showable.
const NEW_TOKEN_SHOWN_FOR: chrono::Duration = chrono::Duration::minutes(10);

/// A token just created, between the POST and the page that shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewToken {
    name: String,
    token: String,
    created_at: DateTime<Utc>,
}

/// The creation form as typed, with its problems.
#[derive(Default)]
pub struct CreateFields {
    name: String,
    expires: String,
    errors: FieldErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    layout: Layout,
    csrf_token: String,
    tokens: Vec<TokenInfo>,
    /// The token just created: shown this once.
    new_token: Option<NewToken>,
    fields: CreateFields,
    /// Bounds of the expiry date input (`YYYY-MM-DD`).
    earliest_expiry: String,
    latest_expiry: String,
}

async fn page(
    state: &AppState,
    user_id: UserId,
    layout: Layout,
    session: &Session,
    new_token: Option<NewToken>,
    fields: CreateFields,
) -> Result<TokensPage, WebError> {
    let tokens = with_conn(state, move |conn| tokens::list(conn, user_id)).await?;
    let today = Utc::now().date_naive();
    Ok(TokensPage {
        layout,
        csrf_token: csrf::token(session),
        tokens,
        new_token,
        fields,
        earliest_expiry: (today + Days::new(1)).to_string(),
        latest_expiry: (today + Days::new(MAX_LIFETIME_DAYS)).to_string(),
    })
}

/// The token left by the last creation, removed from the session: it is shown once.
fn take_new_token(session: &Session) -> Option<NewToken> {
    let new_token: NewToken = session.remove_as(NEW_TOKEN_KEY)?.ok()?;
    (Utc::now() - new_token.created_at < NEW_TOKEN_SHOWN_FOR).then_some(new_token)
}

/// `GET /admin/tokens`: the live tokens, and the one just created if any.
pub async fn list(
    state: web::Data<AppState>,
    Staff(user, _): Staff,
    layout: Layout,
    session: Session,
) -> Result<TokensPage, WebError> {
    let new_token = take_new_token(&session);
    page(
        &state,
        user.id,
        layout,
        &session,
        new_token,
        CreateFields::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    /// An optional date, `YYYY-MM-DD`.
    #[serde(default)]
    expires: String,
}

/// `POST /admin/tokens`: creates the token and redirects to the list, which shows it once
/// (see [`NEW_TOKEN_KEY`]); a refresh of that page creates nothing.
pub async fn create(
    state: web::Data<AppState>,
    Staff(user, audit): Staff,
    layout: Layout,
    session: Session,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let mut errors = FieldErrors::default();
    let name = errors.check("name", tokens::parse_name(&form.name));
    let expires_at = errors.check(
        "expires",
        tokens::parse_expiry(&form.expires, Utc::now().date_naive()),
    );
    let (Some(name), Some(expires_at)) = (name, expires_at) else {
        return refused(&state, user.id, layout, &session, form, errors).await;
    };
    let user_id = user.id;
    let token_name = name.clone();
    let created = with_conn(&state, move |conn| {
        // A taken name is an answer for the form, anything else an error of the page.
        match tokens::create(conn, &audit, user_id, &token_name, expires_at) {
            Ok(token) => Ok(Ok(token)),
            Err(taken @ CreateError::NameTaken(_)) => Ok(Err(taken.to_string())),
            Err(CreateError::Database(err)) => Err(err),
        }
    })
    .await?;
    let token = match created {
        Ok(token) => token,
        Err(message) => {
            errors.add("name", message);
            return refused(&state, user.id, layout, &session, form, errors).await;
        }
    };
    let new_token = NewToken {
        name,
        token,
        created_at: Utc::now(),
    };
    session
        .insert(NEW_TOKEN_KEY, new_token)
        .map_err(|err| WebError::internal(anyhow::anyhow!("{err}")))?;
    Ok(see_other("/admin/tokens"))
}

/// The form again, as typed, with what is wrong: 422.
async fn refused(
    state: &AppState,
    user_id: UserId,
    layout: Layout,
    session: &Session,
    form: CreateForm,
    errors: FieldErrors,
) -> Result<HttpResponse, WebError> {
    let fields = CreateFields {
        name: form.name,
        expires: form.expires,
        errors,
    };
    let page = page(state, user_id, layout, session, None, fields).await?;
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmRevokePage {
    layout: Layout,
    csrf_token: String,
    title: String,
    question: String,
    action: String,
    button: &'static str,
    back: &'static str,
}

fn token_id(path: &str) -> Result<ApiTokenId, WebError> {
    path.parse().map_err(|_| WebError::NotFound)
}

/// `GET /admin/tokens/{id}/revoke`: asks before revoking, since it cannot be undone.
pub async fn confirm_revoke(
    state: web::Data<AppState>,
    Staff(user, _): Staff,
    layout: Layout,
    session: Session,
    path: web::Path<String>,
) -> Result<ConfirmRevokePage, WebError> {
    let id = token_id(&path)?;
    let user_id = user.id;
    let token = with_conn(&state, move |conn| tokens::find(conn, user_id, id))
        .await?
        .ok_or(WebError::NotFound)?;
    let shown_as = match &token.display_prefix {
        Some(prefix) => format!(" ({prefix}…)"),
        None => String::new(),
    };
    Ok(ConfirmRevokePage {
        layout,
        csrf_token: csrf::token(&session),
        title: format!("Revoke the token “{}”?", token.name),
        question: format!(
            "Scripts using it{shown_as} are refused from then on. This cannot be undone: \
             they will need a new token."
        ),
        action: format!("/admin/tokens/{id}/revoke"),
        button: "Yes, revoke it",
        back: "/admin/tokens",
    })
}

/// `POST /admin/tokens/{id}/revoke`: only the owner's own tokens.
pub async fn revoke(
    state: web::Data<AppState>,
    Staff(user, audit): Staff,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = token_id(&path)?;
    let user_id = user.id;
    let revoked = with_conn(&state, move |conn| {
        tokens::revoke(conn, &audit, user_id, id)
    })
    .await?;
    if !revoked {
        return Err(WebError::NotFound);
    }
    flash::success(&session, "The token is revoked: it no longer works.");
    Ok(see_other("/admin/tokens"))
}
