//! `/admin/mail`: the latest mails of the outbox (recipient, subject, status, the task that
//! sends them), so staff can see what left and what is stuck. Never a link's token: those
//! exist only in the mails themselves. A failed mail can be sent again from here.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    domain::outbox::{self, ListedMail, RetryError},
    ids::MailId,
    mail::MailStatus,
    web::{
        AppState,
        auth::Staff,
        csrf::CsrfForm,
        error::{WebError, see_other},
        flash,
        forms::NoFields,
        layout::Layout,
        reads::{Reads, with_read_conn},
        with_conn,
    },
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
    mails: Vec<ListedMail>,
    /// The filter shown as chosen: `None` is "All".
    status: Option<MailStatus>,
    smtp: bool,
}

/// `GET /admin/mail?status=failed`
pub async fn list(
    state: web::Data<AppState>,
    reads: Reads,
    _staff: Staff,
    layout: Layout,
    params: web::Query<MailParams>,
) -> Result<MailPage, WebError> {
    // Anything else (empty, or a status that does not exist) shows them all.
    let status = params.status.parse::<MailStatus>().ok();
    let mails = with_read_conn(&reads, move |conn| outbox::recent(conn, status, SHOWN)).await?;
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

/// `POST /admin/mail/{id}/retry`: a failed mail, sent again by a new `send_mail` task.
pub async fn retry(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let id = MailId(path.parse().map_err(|_| WebError::NotFound)?);
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(outbox::retry(conn, &audit, id))
    })
    .await?;
    match outcome {
        Ok(task) => flash::task_queued(
            &session,
            format!("Mail #{id} is queued again: task #{task} sends it."),
            task,
        ),
        Err(RetryError::NotFound) => return Err(WebError::NotFound),
        Err(RetryError::Database(err)) => return Err(err.into()),
        Err(refused) => flash::error(&session, format!("Mail #{id} is not sent again: {refused}")),
    }
    Ok(see_other("/admin/mail"))
}
