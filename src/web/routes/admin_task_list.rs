//! `/admin/tasks`: the task list (search, filters, sort, pages) and bulk actions on selected
//! tasks or on everything a filter matches, each behind one confirmation that says how many
//! tasks it will touch.

use actix_session::Session;
use actix_web::{Either, FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::ids::TaskId;
use crate::{
    db::counting::Count,
    tasks::{
        bulk::{self, BulkAction},
        listing::{self, Cursor, IdRange, PageRequest, TaskPage, TaskSort},
        status::TaskStatus,
        views::{self, TaskRow},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, see_other},
        flash,
        layout::Layout,
        reads::{Reads, with_read_conn},
        routes::admin_overview::LiveParam,
        task_query::{Problem, TaskListParams, TaskListQuery},
        with_conn,
    },
};

const TASKS_PER_PAGE: i64 = 25;
/// "Everything matching" touches at most this many tasks per confirmation.
const MAX_BULK: i64 = 10_000;

pub struct SortOption {
    pub key: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tasks.html")]
pub struct TasksPage {
    layout: Layout,
    params: TaskListParams,
    statuses: [&'static str; 6],
    programs: Vec<String>,
    sorts: Vec<SortOption>,
    filtered: bool,
    /// Where the script fetches the live part: this list with `live=1`.
    live_src: String,
    live: TaskListLive,
}

/// The part of the list that updates itself (rows, counts, pages, bulk forms); served alone
/// with `live=1`.
#[derive(Template, WebTemplate)]
#[template(path = "admin/_task_list_live.html")]
pub struct TaskListLive {
    problems: Vec<String>,
    tasks: Vec<TaskRow>,
    /// "4 tasks.", "About 11.0M tasks.", "2 tasks. Searched tasks #1–#50000 ...".
    summary: String,
    total: Count,
    page: i64,
    page_count: i64,
    /// What the page searched, when its filters read each task.
    searched: Option<String>,
    actions: [BulkAction; 3],
    /// Rows get a checkbox.
    selectable: bool,
    /// Page links: ("newest"|"previous"|"next", its label, where).
    links: Vec<(&'static str, &'static str, String)>,
    filtered: bool,
    /// The filters (and the searched window) as fields, for "everything matching".
    matching_query: Vec<(String, String)>,
}

/// `GET /admin/tasks` (with `live=1`: its live part only)
pub async fn list(
    reads: Reads,
    _staff: Staff,
    req: HttpRequest,
    params: web::Query<TaskListParams>,
    live: web::Query<LiveParam>,
) -> Result<Either<TaskListLive, TasksPage>, WebError> {
    let params = params.into_inner();
    let (query, problems) = params.parse();
    let lookup = query.clone();
    let (found, programs) = with_read_conn(&reads, move |conn| {
        let request = PageRequest {
            cursor: lookup.cursor,
            page: lookup.page,
            per_page: TASKS_PER_PAGE,
        };
        let found = listing::list_tasks(conn, &lookup.filter, lookup.sort, request)?;
        Ok::<_, diesel::result::Error>((found, views::program_names(conn)?))
    })
    .await?;
    let fragment = TaskListLive::new(&params, &query, found, problems);
    if live.wanted() {
        return Ok(Either::Left(fragment));
    }
    let here = list_href(params.at(query.cursor, query.page));
    let live_src = if here.contains('?') {
        format!("{here}&live=1")
    } else {
        format!("{here}?live=1")
    };
    // Only the whole page takes the pending flash messages (a live fetch would swallow them).
    Ok(Either::Right(TasksPage {
        layout: Layout::extract(&req).await?,
        statuses: TaskStatus::ALL.map(TaskStatus::as_str),
        programs,
        sorts: TaskSort::ALL
            .into_iter()
            .map(|sort| SortOption {
                key: sort.key(),
                label: sort.label(),
                selected: sort == query.sort,
            })
            .collect(),
        filtered: !query.filter.is_empty(),
        live_src,
        live: fragment,
        params,
    }))
}

fn list_href(query: String) -> String {
    match query {
        query if query.is_empty() => "/admin/tasks".to_owned(),
        query => format!("/admin/tasks?{query}"),
    }
}

impl TaskListLive {
    /// What the list shows of `found`: its sentence, its links, its forms.
    fn new(
        params: &TaskListParams,
        query: &TaskListQuery,
        found: TaskPage,
        problems: Vec<Problem>,
    ) -> TaskListLive {
        let links = params.links(query, &found, TASKS_PER_PAGE);
        let by_id = query.sort == TaskSort::Created;
        let links = [
            (
                "newest",
                if by_id { "« Newest" } else { "« First" },
                links.newest,
            ),
            (
                "prev",
                if by_id { "‹ Newer" } else { "‹ Previous" },
                links.previous,
            ),
            ("next", if by_id { "Older ›" } else { "Next ›" }, links.next),
        ]
        .into_iter()
        .filter_map(|(rel, label, query)| Some((rel, label, list_href(query?))))
        .collect();
        let matching_query: Vec<(String, String)> = serde_urlencoded::from_str(
            &serde_urlencoded::to_string(params.matching(&found)).unwrap_or_default(),
        )
        .unwrap_or_default();
        TaskListLive {
            summary: summary(&found, query.page),
            page_count: ((found.total.value() + TASKS_PER_PAGE - 1) / TASKS_PER_PAGE).max(1),
            problems: problems.into_iter().map(|(_, message)| message).collect(),
            searched: found
                .searched
                .map(|ids| searched(ids, found.older.is_some())),
            tasks: found.rows,
            total: found.total,
            page: query.page,
            actions: BulkAction::ALL,
            selectable: true,
            links,
            filtered: !query.filter.is_empty(),
            matching_query,
        }
    }
}

/// "4 tasks.", "About 11.0M tasks.", "1 task. Searched tasks #1–#3, newest first." and
/// " Page 2." after an old link's page number.
fn summary(found: &TaskPage, page: i64) -> String {
    let total = found.total.to_string();
    let mut text = format!(
        "{}{} task{}.",
        total[..1].to_uppercase(),
        &total[1..],
        if found.total == Count::Exact(1) {
            ""
        } else {
            "s"
        }
    );
    if let Some(ids) = found.searched {
        text.push_str(&format!(" {}", searched(ids, found.older.is_some())));
    }
    if page > 1 {
        text.push_str(&format!(" Page {page}."));
    }
    text
}

/// What a page of filters that look at each task says it read.
fn searched(ids: IdRange, older: bool) -> String {
    let (lowest, highest) = (ids.lowest, ids.highest);
    if older {
        format!(
            "Searched tasks #{lowest}–#{highest}, newest first: these filters look at each \
             task, so a page stops after a moment and “Older” searches on."
        )
    } else {
        format!("Searched tasks #{lowest}–#{highest}.")
    }
}

/// What a bulk form asks: an action, and either ticked ids or "everything matching" filters.
struct BulkRequest {
    action: BulkAction,
    target: BulkTarget,
}

enum BulkTarget {
    Ids(Vec<TaskId>),
    /// The filters, and (once confirmed) the highest id the confirmation counted: tasks
    /// queued after it are not touched by the "yes".
    Matching(Box<TaskListParams>, Option<TaskId>),
}

impl BulkRequest {
    fn from_pairs(pairs: &[(String, String)]) -> Result<BulkRequest, WebError> {
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let action = value("action")
            .and_then(BulkAction::parse)
            .ok_or_else(|| WebError::BadRequest("Choose cancel, retry or delete.".into()))?;
        let target = if value("scope") == Some("matching") {
            let rest: Vec<&(String, String)> = pairs
                .iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "action" | "scope" | "csrf_token" | "id" | "up_to"
                    )
                })
                .collect();
            let up_to = match value("up_to") {
                None => None,
                Some(id) => Some(id.trim().parse::<TaskId>().map_err(|_| {
                    WebError::BadRequest("The confirmation is damaged; start again.".into())
                })?),
            };
            let encoded = serde_urlencoded::to_string(&rest).unwrap_or_default();
            let params: TaskListParams = serde_urlencoded::from_str(&encoded)
                .map_err(|err| WebError::BadRequest(format!("The filters are not valid: {err}")))?;
            BulkTarget::Matching(Box::new(params.bulk_scope()), up_to)
        } else {
            let ids: Vec<TaskId> = pairs
                .iter()
                .filter(|(key, _)| key == "id")
                .map(|(_, value)| value.trim().parse::<TaskId>())
                .collect::<Result<_, _>>()
                .map_err(|_| WebError::BadRequest("A task id is not a number.".into()))?;
            if ids.is_empty() {
                return Err(WebError::BadRequest(
                    "Tick the tasks first, or act on everything matching the filters.".into(),
                ));
            }
            if ids.len() > 1_000 {
                return Err(WebError::BadRequest(
                    "At most 1,000 ticked tasks at once; use the filters for more.".into(),
                ));
            }
            BulkTarget::Ids(ids)
        };
        Ok(BulkRequest { action, target })
    }

    /// The tasks it names.
    fn ids(&self, conn: &mut diesel::PgConnection) -> Result<Vec<TaskId>, WebError> {
        match &self.target {
            BulkTarget::Ids(ids) => Ok(ids.clone()),
            BulkTarget::Matching(params, up_to) => {
                let (query, problems) = params.parse();
                if let Some((_, message)) = problems.into_iter().next() {
                    return Err(WebError::BadRequest(message));
                }
                let filter = listing::TaskFilter {
                    up_to_id: *up_to,
                    ..query.filter
                };
                Ok(listing::matching_ids(
                    conn,
                    &filter,
                    query.cursor,
                    MAX_BULK,
                )?)
            }
        }
    }

    /// Back to the list the form came from.
    fn back(&self) -> String {
        match &self.target {
            BulkTarget::Matching(params, _) => match params.filters_only().at(Cursor::Newest, 1) {
                query if query.is_empty() => "/admin/tasks".to_owned(),
                query => format!("/admin/tasks?{query}"),
            },
            BulkTarget::Ids(_) => "/admin/tasks".to_owned(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/bulk_confirm.html")]
pub struct BulkConfirmPage {
    layout: Layout,
    csrf_token: String,
    action: BulkAction,
    /// Every field to post back (action, scope or ids, filters).
    fields: Vec<(String, String)>,
    named: usize,
    applicable: i64,
    /// "everything matching the filters" rather than ticked tasks.
    matching: bool,
    back: String,
}

impl BulkConfirmPage {
    /// What the "yes" does, in a sentence or two: "1 of the 3 tasks you chose is failed or
    /// cancelled: it will be queued again. The other 2 are left as they are."
    fn summary(&self) -> String {
        let (named, applicable) = (self.named as i64, self.applicable);
        let chosen = if self.matching {
            "matching the filters"
        } else {
            "you chose"
        };
        let which = self.action.applies_to_text();
        let done = self.action.done();
        let (is, it) = if applicable == 1 {
            ("is", "it")
        } else {
            ("are", "they")
        };
        match (named, applicable) {
            (1, 0) => format!("The task {chosen} is not {which}: nothing would change."),
            (_, 0) => {
                format!("None of the {named} tasks {chosen} is {which}: nothing would change.")
            }
            (1, _) => format!("The task {chosen} is {which}: it will be {done}."),
            _ if applicable >= named => {
                format!("All {named} tasks {chosen} are {which}: they will be {done}.")
            }
            _ => {
                let others = match named - applicable {
                    1 => "The other one is left as it is.".to_owned(),
                    n => format!("The other {n} are left as they are."),
                };
                format!(
                    "{applicable} of the {named} tasks {chosen} {is} {which}: {it} will be \
                     {done}. {others}"
                )
            }
        }
    }
}

/// `GET /admin/tasks/bulk`: "Cancel 3 tasks?"
pub async fn confirm(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
    pairs: web::Query<Vec<(String, String)>>,
) -> Result<BulkConfirmPage, WebError> {
    let pairs = pairs.into_inner();
    let request = BulkRequest::from_pairs(&pairs)?;
    let action = request.action;
    let back = request.back();
    let matching = matches!(request.target, BulkTarget::Matching(..));
    let (named, applicable, highest) = with_conn(&state, move |conn| {
        let ids = request.ids(conn)?;
        let applicable = bulk::bulk_applicable(conn, action, &ids)?;
        // Newest first: the first is the highest id counted.
        Ok::<_, WebError>((ids.len(), applicable, ids.first().copied()))
    })
    .await?;
    let mut fields: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(key, _)| key != "csrf_token" && key != "up_to")
        .collect();
    if matching {
        fields.push(("up_to".into(), highest.unwrap_or(TaskId(0)).to_string()));
    }
    Ok(BulkConfirmPage {
        layout,
        csrf_token: csrf::token(&session),
        action,
        fields,
        named,
        applicable,
        matching,
        back,
    })
}

/// `POST /admin/tasks/bulk`: does it, then back to the list with how many changed.
pub async fn apply(
    state: web::Data<AppState>,
    Staff(_, context): Staff,
    session: Session,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let request = BulkRequest::from_pairs(&pairs)?;
    let action = request.action;
    let back = request.back();
    let changed = with_conn(&state, move |conn| {
        let ids = request.ids(conn)?;
        Ok::<_, WebError>(bulk::bulk(conn, &context, action, &ids)?)
    })
    .await?;
    let tasks = if changed == 1 { "task" } else { "tasks" };
    flash::success(&session, format!("{changed} {tasks} {}.", action.done()));
    Ok(see_other(&back))
}
