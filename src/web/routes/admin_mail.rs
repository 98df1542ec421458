//! `/admin/mail`: the latest mails of the outbox (recipient, subject, status, the task that
//! sends them), so staff can see what left and what is stuck. Never a link's token: those
//! exist only in the mails themselves.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    mail::{
        MailStatus,
        outbox::{self, MailRow},
    },
    web::{AppState, auth::Staff, error::WebError, layout::Layout, with_conn},
};

/// Mails shown.
const SHOWN: i64 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MailParams {
    status: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/mail.html")]
pub struct MailPage {
    layout: Layout,
    mails: Vec<MailRow>,
    /// The filter shown as chosen: `None` is "All".
    status: Option<MailStatus>,
    smtp: bool,
}

/// `GET /admin/mail?status=failed`
pub async fn list(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    params: web::Query<MailParams>,
) -> Result<MailPage, WebError> {
    // Anything else (empty, or a status that does not exist) shows them all.
    let status = params.status.parse::<MailStatus>().ok();
    let mails = with_conn(&state, move |conn| outbox::recent(conn, status, SHOWN)).await?;
    Ok(MailPage {
        layout,
        mails,
        status,
        smtp: matches!(
            state.programs.mail.transport,
            crate::mail::Transport::Smtp(_)
        ),
    })
}
