//! `/admin/audit`: the audit log, newest first, with filters (action, actor, dates), paged by
//! keyset (`?before=ID` / `?after=ID`: "Older" and "Newer").

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::{Deserialize, Serialize};

use crate::{
    audit::{self, AuditAction, AuditCursor, AuditQuery, AuditRow},
    db::counting::Count,
    ids::AuditEventId,
    web::{
        auth::Staff,
        error::WebError,
        layout::Layout,
        reads::{Reads, with_read_conn},
    },
};

const PER_PAGE: i64 = 50;

/// The query string, as typed; anything unreadable is ignored (the filter is dropped and the
/// page says which).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditParams {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    to: String,
    /// The events older than this id: where "Older" goes on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    before: String,
    /// The events newer than this id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    after: String,
}

impl AuditParams {
    /// The query, and the problems with what was typed.
    fn parse(&self) -> (AuditQuery, Vec<String>) {
        let mut problems = Vec::new();
        let mut date = |text: &str, what: &str| match text.trim() {
            "" => None,
            text => match crate::web::forms::parse_day(text) {
                Some(date) => Some(date),
                None => {
                    problems.push(format!("“{what}” is a date like 2026-11-25; ignored."));
                    None
                }
            },
        };
        let from = date(&self.from, "From");
        let to = date(&self.to, "To");
        let (from_instant, until) = crate::web::forms::day_bounds(from, to);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            problems.push("“From” is after “To”: nothing can match.".to_owned());
        }
        let action = match self.action.trim() {
            "" => None,
            text => {
                let parsed = AuditAction::parse(text);
                if parsed.is_none() {
                    problems.push(format!("There is no action “{text}”; ignored."));
                }
                parsed
            }
        };
        let actor = self.actor.trim().chars().take(100).collect::<String>();
        let mut cursor_at = |value: &str, what: &str| match value.trim() {
            "" => None,
            value => match value.parse::<AuditEventId>() {
                Ok(id) if id.0 > 0 => Some(id),
                _ => {
                    problems.push(format!("“{what}” is an event number like 42; ignored."));
                    None
                }
            },
        };
        let cursor = match (
            cursor_at(&self.before, "before"),
            cursor_at(&self.after, "after"),
        ) {
            (Some(id), _) => AuditCursor::Before(id),
            (None, Some(id)) => AuditCursor::After(id),
            (None, None) => AuditCursor::Newest,
        };
        let query = AuditQuery {
            action,
            actor: (!actor.is_empty()).then_some(actor),
            from: from_instant,
            until,
            cursor,
            per_page: PER_PAGE,
        };
        (query, problems)
    }

    /// The same filters from another cursor.
    fn link(&self, cursor: AuditCursor) -> String {
        let (before, after) = match cursor {
            AuditCursor::Newest => (String::new(), String::new()),
            AuditCursor::Before(id) => (id.to_string(), String::new()),
            AuditCursor::After(id) => (String::new(), id.to_string()),
        };
        let params = AuditParams {
            before,
            after,
            ..self.clone()
        };
        match serde_urlencoded::to_string(&params).unwrap_or_default() {
            query if query.is_empty() => "/admin/audit".to_owned(),
            query => format!("/admin/audit?{query}"),
        }
    }
}

pub struct ActionOption {
    pub key: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    layout: Layout,
    params: AuditParams,
    actions: Vec<ActionOption>,
    problems: Vec<String>,
    events: Vec<AuditRow>,
    /// "12 events, newest first.", "About 1.2M events, newest first."
    summary: String,
    /// The count is PostgreSQL's estimate.
    estimated: bool,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
}

/// `GET /admin/audit`
pub async fn list(
    reads: Reads,
    _staff: Staff,
    layout: Layout,
    params: web::Query<AuditParams>,
) -> Result<AuditPage, WebError> {
    let params = params.into_inner();
    let (query, problems) = params.parse();
    let lookup = query.clone();
    let page = with_read_conn(&reads, move |conn| audit::list(conn, &lookup)).await?;
    Ok(AuditPage {
        layout,
        actions: AuditAction::ALL
            .into_iter()
            .map(|action| ActionOption {
                key: action.as_str(),
                selected: query.action == Some(action),
            })
            .collect(),
        problems,
        events: page.events,
        summary: summary(page.total),
        estimated: !page.total.is_exact(),
        previous: page.newer.map(|id| params.link(AuditCursor::After(id))),
        next: page.older.map(|id| params.link(AuditCursor::Before(id))),
        filtered: query.action.is_some()
            || query.actor.is_some()
            || query.from.is_some()
            || query.until.is_some(),
        params,
    })
}

/// "12 events, newest first.", "About 1.2M events, newest first." (an estimate beyond the
/// count's threshold, as the task list says it).
fn summary(total: Count) -> String {
    let count = total.to_string();
    let plural = if total == Count::Exact(1) { "" } else { "s" };
    format!(
        "{}{} event{plural}, newest first.",
        count[..1].to_uppercase(),
        &count[1..]
    )
}
