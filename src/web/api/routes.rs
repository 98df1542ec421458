//! `/api/v1` handlers.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::{
    ids::TaskId,
    tasks::{
        bulk::{self, BulkAction},
        listing::{self, PageRequest},
        ops,
    },
    web::{
        AppState,
        api::{
            ApiError, ApiStaff, ErrorCode,
            openapi::{BadBody, Refused},
            resources,
            schemas::{
                BulkDone, Cancelled, ErrorBody, Paused, ProgramList, RegisteredProgram, Task,
                TaskPage,
            },
        },
        task_query::TaskListParams,
        with_conn,
    },
};

const PER_PAGE: i64 = 50;

/// Runs task-store work, keeping its refusals as API errors.
async fn call<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&mut diesel::PgConnection) -> Result<T, ops::OperationError> + Send + 'static,
) -> Result<T, ApiError> {
    with_conn(state, move |conn| {
        Ok::<_, crate::web::error::WebError>(work(conn))
    })
    .await
    .map_err(ApiError::from)?
    .map_err(ApiError::from)
}

/// `GET /api/v1/programs`: get_programs.
#[utoipa::path(get, path = "/api/v1/programs", tag = "programs",
    summary = "List the programs",
    responses((status = 200, description = "Every program, with its schedule, last run and options", body = ProgramList), Refused))]
pub async fn programs(
    state: web::Data<AppState>,
    _staff: ApiStaff,
) -> Result<HttpResponse, ApiError> {
    let programs = call(&state, |conn| Ok(ops::get_programs(conn)?)).await?;
    Ok(HttpResponse::Ok().json(json!({ "programs": programs })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    name: String,
    function_name: String,
}

/// `POST /api/v1/programs` `{"name", "function_name"}`: register_program.
#[utoipa::path(post, path = "/api/v1/programs", tag = "programs",
    summary = "Register a program", description = "A program runs one of the built-in functions, under a name of its own.",
    request_body = RegisterBody,
    responses((status = 201, description = "Registered", body = RegisteredProgram),
        (status = 409, description = "`name_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_name` or `unknown_function`", body = ErrorBody),
        BadBody, Refused))]
pub async fn register(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterBody {
        name,
        function_name,
    } = body.into_inner();
    let (n, f) = (name.clone(), function_name.clone());
    let id = call(&state, move |conn| {
        ops::register_program_as(conn, &audit, &n, &f)
    })
    .await?;
    Ok(HttpResponse::Created()
        .json(json!({ "id": id, "name": name, "function_name": function_name })))
}

/// `GET /api/v1/tasks?status=&program=&q=&queued_by=&node=&from=&to=&batch=&priority=&sort=`
/// `&before=&after=&page=`: 50 a page, newest first unless `sort` says otherwise (see
/// `TaskListParams`). `next` and `previous` are the paths of the pages around this one (by
/// task id, `before=`/`after=`: follow them rather than counting pages). `total` is exact up
/// to 10,000 and PostgreSQL's estimate beyond (`total_is`: "exact", "about" or "more_than").
/// Filters that read each task (text, JSON, who queued, node, priority, dates, finished, the
/// other orders) search 50,000 task ids per page, named in `searched`; `total` then counts
/// the matches among those, and `next` goes on with older ones.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    summary = "List tasks, 50 a page",
    description = "Newest first unless `sort` says otherwise. `next` and `previous` are the paths of the pages around this one (keyset by task id: follow them rather than counting pages). `total` is exact up to 10,000 and PostgreSQL's estimate beyond (`total_is`). Filters that read each task (text, JSON, who queued, node, priority, dates, the other orders) search 50,000 task ids per page, named in `searched`; `total` then counts the matches among those.",
    params(TaskListParams),
    responses((status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "`invalid_query`: a filter is wrong (`fields` names it)", body = ErrorBody),
        Refused))]
pub async fn tasks(
    state: web::Data<AppState>,
    _staff: ApiStaff,
    params: web::Query<TaskListParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let (query, problems) = params.parse();
    if let Some((field, message)) = problems.into_iter().next() {
        return Err(ApiError::bad_request(ErrorCode::InvalidQuery, message).with_field(field));
    }
    let lookup = query.clone();
    let found = call(&state, move |conn| {
        let request = PageRequest {
            cursor: lookup.cursor,
            page: lookup.page,
            per_page: PER_PAGE,
        };
        Ok(listing::list_tasks(
            conn,
            &lookup.filter,
            lookup.sort,
            request,
        )?)
    })
    .await?;
    let links = params.links(&query, &found, PER_PAGE);
    let path = |query: Option<String>| query.map(|query| format!("/api/v1/tasks?{query}"));
    let searched = found
        .searched
        .map(|ids| json!({ "lowest": ids.lowest, "highest": ids.highest }));
    Ok(HttpResponse::Ok().json(json!({
        "tasks": found.rows,
        "page": query.page,
        "per_page": PER_PAGE,
        "total": found.total.value(),
        "total_is": found.total.kind(),
        "searched": searched,
        "next": path(links.next),
        "previous": path(links.previous),
    })))
}

fn task_id(path: &str) -> Result<TaskId, ApiError> {
    path.parse()
        .map_err(|_| ApiError::not_found("no task with that id"))
}

/// `GET /api/v1/tasks/{id}`: get_task_result, plus progress, attempts, a table result, how
/// it was queued and the tasks it waits for and that wait for it (`resources::task`).
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    summary = "Read a task",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "The task", body = Task),
        (status = 404, description = "`not_found`", body = ErrorBody),
        Refused))]
pub async fn task(
    state: web::Data<AppState>,
    _staff: ApiStaff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    let task = call(&state, move |conn| resources::task(conn, id)).await?;
    let task = task.ok_or_else(|| ApiError::not_found(format!("no task with id {id}")))?;
    Ok(HttpResponse::Ok().json(task))
}

/// `POST /api/v1/tasks/{id}/cancel`
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "tasks",
    summary = "Cancel a task",
    description = "A queued task is cancelled at once; a running one is asked to stop (`cancel_requested`).",
    params(("id" = i64, Path, description = "The task's id")),
    responses((status = 200, description = "Its status after the call", body = Cancelled),
        (status = 404, description = "`not_found` or `task_not_found`", body = ErrorBody),
        Refused))]
pub async fn cancel(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = task_id(&path)?;
    let status = call(&state, move |conn| ops::cancel_task_as(conn, &audit, id)).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "id": id, "status": status, "cancel_requested": status.is_running() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BulkBody {
    /// `cancel`, `retry` or `delete`.
    action: String,
    /// At most 1,000.
    #[serde(default)]
    ids: Option<Vec<TaskId>>,
    /// Everything matching these filters (the list's query fields), when there are no ids;
    /// for filters that read each task, among the ids the list searched (`before`).
    #[serde(default)]
    filter: Option<TaskListParams>,
}

/// `POST /api/v1/tasks/bulk` `{"action": "cancel"|"retry"|"delete", "ids": [..]}` or
/// `{"action", "filter": {"status": "error", ...}}`: how many tasks were named and changed.
#[utoipa::path(post, path = "/api/v1/tasks/bulk", tag = "tasks",
    summary = "Cancel, retry or delete many tasks",
    description = "Names the tasks by `ids` (at most 1,000) or by a `filter` of the task list's fields (at most 10,000 matches).",
    request_body = BulkBody,
    responses((status = 200, description = "How many were named and changed", body = BulkDone),
        (status = 400, description = "`invalid_action`, `too_many_ids`, `invalid_filter` or `nothing_named`", body = ErrorBody),
        BadBody, Refused))]
pub async fn bulk(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    body: web::Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let BulkBody {
        action,
        ids,
        filter,
    } = body.into_inner();
    let action = BulkAction::parse(&action).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidAction,
            "action must be cancel, retry or delete",
        )
        .with_field("action")
    })?;
    let filter = match (&ids, filter) {
        (Some(ids), _) if ids.len() > 1_000 => {
            return Err(ApiError::bad_request(
                ErrorCode::TooManyIds,
                "at most 1000 ids at once; use a filter for more",
            )
            .with_field("ids"));
        }
        (Some(_), _) => None,
        (None, Some(filter)) => {
            let (query, problems) = filter.parse();
            if let Some((field, message)) = problems.into_iter().next() {
                return Err(
                    ApiError::bad_request(ErrorCode::InvalidFilter, message).with_field(field)
                );
            }
            Some((query.filter, query.cursor))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                ErrorCode::NothingNamed,
                "give ids or a filter",
            ));
        }
    };
    let (named, changed) = call(&state, move |conn| {
        let ids = match filter {
            Some((filter, cursor)) => listing::matching_ids(conn, &filter, cursor, 10_000)?,
            None => ids.unwrap_or_default(),
        };
        let changed = bulk::bulk(conn, &audit, action, &ids)?;
        Ok((ids.len(), changed))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "action": action, "named": named, "changed": changed })))
}

/// `POST /api/v1/programs/{name}/pause` and `.../resume`.
#[utoipa::path(post, path = "/api/v1/programs/{name}/{verb}", tag = "programs",
    summary = "Pause or resume a program",
    description = "A paused program's queued tasks wait until it is resumed.",
    params(("name" = String, Path, description = "The program's name"),
        ("verb" = String, Path, description = "`pause` or `resume`", pattern = "^(pause|resume)$")),
    responses((status = 200, description = "Whether it is now paused", body = Paused),
        (status = 404, description = "`not_found`", body = ErrorBody),
        Refused))]
pub async fn pause(
    state: web::Data<AppState>,
    staff: ApiStaff,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let ApiStaff(_, audit) = staff;
    let (name, verb) = path.into_inner();
    // The route admits only the two verbs.
    let paused = verb == "pause";
    let found = call(&state, move |conn| {
        Ok(ops::set_paused(conn, &audit, &name, paused)?)
    })
    .await?;
    if !found {
        return Err(ApiError::not_found("no program by that name"));
    }
    Ok(HttpResponse::Ok().json(json!({ "paused": paused })))
}
