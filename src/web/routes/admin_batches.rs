//! A batch's page for staff: its counts and progress, its callback, and its members a page at
//! a time (by id, after the last one shown: no count or offset over the tasks).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::{
    ids::{TaskBatchId, TaskId},
    tasks::{
        flow::{self, BatchSummary},
        views::TaskRow,
    },
    web::{AppState, auth::Staff, error::WebError, layout::Layout, with_conn},
};

const MEMBERS_PER_PAGE: i64 = 50;

#[derive(Template, WebTemplate)]
#[template(path = "admin/batch.html")]
pub struct BatchPage {
    layout: Layout,
    batch: BatchSummary,
    /// This page of its members.
    tasks: Vec<TaskRow>,
    /// The member table has no tick boxes here.
    selectable: bool,
    /// The next page's link, when more members follow.
    next: Option<String>,
    /// This is not the first page.
    later_page: bool,
}

#[derive(Deserialize)]
pub struct MembersQuery {
    /// The last member shown on the page before.
    #[serde(default)]
    after: String,
}

/// `GET /admin/batches/{id}` (`?after=` a member's id: the members after it)
pub async fn show(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    path: web::Path<String>,
    query: web::Query<MembersQuery>,
) -> Result<BatchPage, WebError> {
    let id: TaskBatchId = path.parse().map_err(|_| WebError::NotFound)?;
    let after = match query.after.trim() {
        "" => None,
        text => Some(text.parse::<TaskId>().map_err(|_| {
            WebError::BadRequest("“after” is the number of a task of this batch.".into())
        })?),
    };
    let (batch, (tasks, more)) = with_conn(&state, move |conn| {
        let batch = flow::batch(conn, id)?.ok_or(WebError::NotFound)?;
        let members = flow::batch_members(conn, id, after, MEMBERS_PER_PAGE)?;
        Ok::<_, WebError>((batch, members))
    })
    .await?;
    let next = match tasks.last() {
        Some(last) if more => Some(format!("/admin/batches/{id}?after={}", last.id)),
        _ => None,
    };
    Ok(BatchPage {
        layout,
        batch,
        tasks,
        selectable: false,
        next,
        later_page: after.is_some(),
    })
}
