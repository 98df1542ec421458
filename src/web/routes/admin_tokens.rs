//! `/admin/tokens`: a staff member's personal API tokens (create, shown once; revoke).

use actix_session::Session;
use actix_web::{HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use diesel::Connection;
use serde::Deserialize;
use serde_json::json;

use crate::{
    domain::{
        accounts::tokens::{self, TokenInfo},
        audit::{self, AuditAction},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash,
        layout::Layout,
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    layout: Layout,
    csrf_token: String,
    tokens: Vec<TokenInfo>,
    /// The token just created: shown this once.
    new_token: Option<String>,
    name: String,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    user_id: i64,
    layout: Layout,
    session: &Session,
    new_token: Option<String>,
    name: String,
    error: Option<String>,
) -> Result<TokensPage, WebError> {
    let tokens = with_conn(state, move |conn| tokens::list(conn, user_id)).await?;
    Ok(TokensPage {
        layout,
        csrf_token: csrf::token(session),
        tokens,
        new_token,
        name,
        error,
    })
}

/// `GET /admin/tokens`
pub async fn list(
    state: web::Data<AppState>,
    Staff(user, _): Staff,
    layout: Layout,
    session: Session,
) -> Result<TokensPage, WebError> {
    page(&state, user.id, layout, &session, None, String::new(), None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

/// `POST /admin/tokens`: the page answers directly (no redirect), so the token is shown once
/// and never stored anywhere, not even in a flash message.
pub async fn create(
    state: web::Data<AppState>,
    Staff(user, audit): Staff,
    layout: Layout,
    session: Session,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let name = match tokens::parse_name(&form.name) {
        Ok(name) => name,
        Err(message) => {
            let page = page(
                &state,
                user.id,
                layout,
                &session,
                None,
                form.name.clone(),
                Some(message),
            )
            .await?;
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let user_id = user.id;
    let token = with_conn(&state, move |conn| {
        conn.transaction(|conn| {
            let token = tokens::create(conn, user_id, &name)?;
            audit::record(
                conn,
                &audit,
                AuditAction::TokenCreated,
                &format!("token {name}"),
                json!({}),
            )?;
            Ok::<_, diesel::result::Error>(token)
        })
    })
    .await?;
    let page = page(
        &state,
        user.id,
        layout,
        &session,
        Some(token),
        String::new(),
        None,
    )
    .await?;
    Ok(html(StatusCode::CREATED, &page))
}

#[derive(Deserialize)]
pub struct NoFields {}

/// `POST /admin/tokens/{id}/revoke`: only the owner's own tokens.
pub async fn revoke(
    state: web::Data<AppState>,
    Staff(user, audit): Staff,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let id: i64 = path.parse().map_err(|_| WebError::NotFound)?;
    let user_id = user.id;
    let revoked = with_conn(&state, move |conn| {
        conn.transaction(|conn| {
            let revoked = tokens::revoke(conn, user_id, id)?;
            if revoked {
                let subject = format!("token #{id}");
                audit::record(conn, &audit, AuditAction::TokenRevoked, &subject, json!({}))?;
            }
            Ok::<_, diesel::result::Error>(revoked)
        })
    })
    .await?;
    if !revoked {
        return Err(WebError::NotFound);
    }
    flash::success(&session, "The token is revoked: it no longer works.");
    Ok(see_other("/admin/tokens"))
}
