//! One task for staff: its page (attempts, progress, result as a table or text), cancel and
//! run again behind a confirmation, and the result's downloads.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};

use crate::ids::TaskId;
use crate::{
    tasks::{
        flow::{self, TaskFlow},
        ops::{self},
        status::TaskStatus,
        views::{self, TaskDetail},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        error::{WebError, see_other},
        flash,
        forms::NoFields,
        layout::Layout,
        result_view::{ResultParams, ResultView},
        with_conn,
        workflow_svg::{self, Graph},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/task.html")]
pub struct TaskPage {
    layout: Layout,
    task: TaskDetail,
    attempts: Vec<AttemptRow>,
    parameters: String,
    /// The table result, paged and sorted as asked.
    result: Option<ResultView>,
    /// What it waits for, what waits for it, its batch.
    flow: TaskFlow,
    /// The workflow it is part of, drawn.
    graph: Option<Graph>,
}

/// One attempt of a task, as the attempts table shows it.
pub struct AttemptRow {
    pub number: i64,
    pub started: String,
    pub ended: String,
    pub duration: String,
    /// The error of a failed attempt, or the status of the current one.
    pub outcome: String,
}

impl AttemptRow {
    /// The failed attempts (kept by `task_fail`), then the current or last one.
    fn all_of(task: &TaskDetail) -> Vec<AttemptRow> {
        let time = |at: Option<DateTime<Utc>>| {
            at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        let duration = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| match (start, end)
        {
            (Some(start), Some(end)) => {
                format!("{:.1} s", (end - start).num_milliseconds() as f64 / 1000.0)
            }
            _ => String::new(),
        };
        let parse = |value: &serde_json::Value| {
            value
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let mut rows: Vec<AttemptRow> = task
            .attempts
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| {
                        let (started, ended) = (parse(&a["started"]), parse(&a["at"]));
                        AttemptRow {
                            number: a["attempt"].as_i64().unwrap_or_default(),
                            started: time(started),
                            ended: time(ended),
                            duration: duration(started, ended),
                            outcome: a["error"].as_str().unwrap_or_default().to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let row = &task.row;
        let current = i64::from(row.attempt);
        if current > 0 && !rows.iter().any(|r| r.number == current) {
            rows.push(AttemptRow {
                number: current,
                started: time(row.start_time),
                ended: time(row.end_time),
                duration: duration(row.start_time, row.end_time),
                outcome: row.status.to_string(),
            });
        }
        rows
    }
}

async fn load_task(state: &AppState, path: &str) -> Result<TaskDetail, WebError> {
    let id: TaskId = path.parse().map_err(|_| WebError::NotFound)?;
    with_conn(state, move |conn| views::task_detail(conn, id))
        .await?
        .ok_or(WebError::NotFound)
}

/// `GET /admin/tasks/{id}`: get_task_result, and everything else about the task.
pub async fn task(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    path: web::Path<String>,
    result: web::Query<ResultParams>,
) -> Result<TaskPage, WebError> {
    let task = load_task(&state, &path).await?;
    let (id, batch) = (task.row.id, task.row.batch_id);
    let flow = with_conn(&state, move |conn| flow::task_flow(conn, id, batch)).await?;
    let graph = flow.workflow.as_ref().map(|w| workflow_svg::layout(w, id));
    let attempts = AttemptRow::all_of(&task);
    let parameters = task
        .row
        .parameters
        .as_ref()
        .map(|p| serde_json::to_string_pretty(p).unwrap_or_default())
        .unwrap_or_else(|| "none".to_owned());
    let result = task
        .result_table
        .as_ref()
        .map(|table| ResultView::new(table, &result, &format!("/admin/tasks/{}", task.row.id)));
    Ok(TaskPage {
        layout,
        task,
        attempts,
        parameters,
        result,
        flow,
        graph,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    layout: Layout,
    csrf_token: String,
    title: String,
    question: String,
    action: String,
    button: &'static str,
    back: String,
}

/// `GET /admin/tasks/{id}/cancel` and `.../rerun`: ask before doing it.
pub async fn confirm(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<ConfirmPage, WebError> {
    let task = load_task(&state, &path).await?;
    let id = task.row.id;
    let rerun = req.path().ends_with("/rerun");
    let (title, question, button) = if rerun {
        (
            format!("Run task #{id} again?"),
            format!(
                "A new task of {} will be queued with the same parameters.",
                task.row.program
            ),
            "Yes, run it again",
        )
    } else {
        (
            format!("Cancel task #{id}?"),
            if task.row.status.is_running() {
                format!("{} is running: it will be asked to stop.", task.row.program)
            } else {
                format!("{} will not start.", task.row.program)
            },
            "Yes, cancel it",
        )
    };
    Ok(ConfirmPage {
        layout,
        csrf_token: csrf::token(&session),
        title,
        question,
        action: req.path().to_owned(),
        button,
        back: format!("/admin/tasks/{id}"),
    })
}

/// `POST /admin/tasks/{id}/cancel`
pub async fn cancel(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let task = load_task(&state, &path).await?;
    let id = task.row.id;
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(ops::cancel_task_as(conn, &audit, id))
    })
    .await?;
    match outcome {
        Ok(TaskStatus::Cancelled) => flash::success(&session, format!("Task #{id} is cancelled.")),
        Ok(TaskStatus::Running) => flash::info(&session, format!("Task #{id} was asked to stop.")),
        Ok(status) => flash::info(
            &session,
            format!("Task #{id} had already ended ({status})."),
        ),
        Err(err) => return Err(WebError::internal(err)),
    }
    Ok(see_other(&format!("/admin/tasks/{id}")))
}

/// `POST /admin/tasks/{id}/rerun`: the same program and parameters, as a new task.
pub async fn rerun(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<String>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let task = load_task(&state, &path).await?;
    let (program, parameters) = (task.row.program.clone(), task.row.parameters.clone());
    let outcome = with_conn(&state, move |conn| {
        let queued = ops::run_program_as(conn, &audit, &program, parameters.as_ref());
        Ok::<_, WebError>(queued)
    })
    .await?;
    match outcome {
        Ok(new_id) => {
            flash::task_queued(
                &session,
                format!("Task #{new_id} queued: a new run of task #{}.", task.row.id),
                new_id,
            );
            Ok(see_other(&format!("/admin/tasks/{new_id}")))
        }
        Err(err) => {
            flash::error(&session, format!("It could not run again: {err}"));
            Ok(see_other(&format!("/admin/tasks/{}", task.row.id)))
        }
    }
}

/// `GET /admin/tasks/{id}/result.csv` (table results) and `.../result.txt`.
pub async fn download(
    state: web::Data<AppState>,
    _staff: Staff,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, format) = path.into_inner();
    let task = load_task(&state, &id).await?;
    let (body, content_type) = match (format.as_str(), &task.result_table, &task.result) {
        ("csv", Some(table), _) => (table.to_csv(), "text/csv; charset=utf-8"),
        ("txt", _, Some(text)) => (text.clone(), "text/plain; charset=utf-8"),
        _ => return Err(WebError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"task-{}-result.{format}\"",
                task.row.id
            ),
        ))
        .body(body))
}
