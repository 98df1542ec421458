//! `/admin/audit`: the audit log, newest first, with filters (action, actor, dates).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::{Deserialize, Serialize};

use crate::{
    domain::audit::{self, AuditAction, AuditQuery, AuditRow},
    web::{AppState, auth::Staff, error::WebError, layout::Layout, with_conn},
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<i64>,
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
        let query = AuditQuery {
            action,
            actor: (!actor.is_empty()).then_some(actor),
            from: from_instant,
            until,
            page: self.page.unwrap_or(1).clamp(1, 100_000),
            per_page: PER_PAGE,
        };
        (query, problems)
    }

    fn link(&self, page: i64) -> String {
        let params = AuditParams {
            page: (page > 1).then_some(page),
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
    total: i64,
    page: i64,
    page_count: i64,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
}

/// `GET /admin/audit`
pub async fn list(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    params: web::Query<AuditParams>,
) -> Result<AuditPage, WebError> {
    let params = params.into_inner();
    let (query, problems) = params.parse();
    let lookup = query.clone();
    let (events, total) = with_conn(&state, move |conn| audit::list(conn, &lookup)).await?;
    let page_count = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
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
        events,
        total,
        page: query.page,
        page_count,
        previous: (query.page > 1).then(|| params.link(query.page - 1)),
        next: (query.page < page_count).then(|| params.link(query.page + 1)),
        filtered: query.action.is_some()
            || query.actor.is_some()
            || query.from.is_some()
            || query.until.is_some(),
        params,
    })
}
