//! The staff dashboard for background programs: overview, programs (run, register, schedule),
//! tasks (list, detail, cancel, run again, downloads).

use std::collections::{BTreeMap, HashMap};

use actix_session::Session;
use actix_web::{Either, FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::Deserialize;
use serde_json::json;

use crate::{
    domain::{
        audit::{self, AuditAction},
        overview::{self, ShopCounts},
    },
    tasks::{
        ops::{self, OperationError, ProgramInfo},
        status::TaskStatus,
        views::{self, TaskDetail, TaskFilter, TaskRow, TaskSort},
    },
    web::{
        AppState,
        auth::Staff,
        chart::{self, Chart},
        csrf::{self, CsrfForm},
        error::{WebError, html, see_other},
        flash,
        layout::Layout,
        params::{self, ParamField},
        result_view::{ResultParams, ResultView},
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    layout: Layout,
    shop: ShopCounts,
    live: OverviewLive,
}

/// The part of the overview that updates itself: counts, chart, running, failures, latest.
/// Served alone at `/admin?live=1`, so the page's script fetches one fragment per round.
#[derive(Template, WebTemplate)]
#[template(path = "admin/_overview_live.html")]
pub struct OverviewLive {
    counts: Vec<(TaskStatus, i64)>,
    running: Vec<TaskRow>,
    latest: Vec<TaskRow>,
    failures: Vec<TaskRow>,
    chart: Chart,
    /// The task tables here have no checkboxes.
    selectable: bool,
}

/// `?live=1`: the self-updating part of a page only.
#[derive(Debug, Default, Deserialize)]
pub struct LiveParam {
    #[serde(default)]
    live: Option<String>,
}

impl LiveParam {
    pub fn wanted(&self) -> bool {
        self.live.is_some()
    }
}

/// `GET /admin` (and `GET /admin?live=1`, its live part)
pub async fn overview(
    state: web::Data<AppState>,
    _staff: Staff,
    req: HttpRequest,
    live: web::Query<LiveParam>,
) -> Result<Either<OverviewLive, OverviewPage>, WebError> {
    let (shop, counts, running, latest, failures, hourly) = with_conn(&state, |conn| {
        Ok::<_, diesel::result::Error>((
            overview::shop_counts(conn)?,
            views::status_counts(conn)?,
            views::running_tasks(conn)?,
            views::list_tasks(conn, &TaskFilter::default(), TaskSort::Created, 1, 10)?.0,
            views::failures_since(conn, Utc::now() - chrono::Duration::hours(24), 10)?,
            views::hourly_counts(conn)?,
        ))
    })
    .await?;
    let fragment = OverviewLive {
        selectable: false,
        counts,
        running,
        latest,
        failures,
        chart: chart::hourly(&hourly, Utc::now()),
    };
    if live.wanted() {
        return Ok(Either::Left(fragment));
    }
    // Only the whole page takes the pending flash messages (a live fetch would swallow them).
    Ok(Either::Right(OverviewPage {
        layout: Layout::extract(&req).await?,
        shop,
        live: fragment,
    }))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/programs.html")]
pub struct ProgramsPage {
    layout: Layout,
    csrf_token: String,
    programs: Vec<ProgramInfo>,
    functions: Vec<String>,
    new_name: String,
    new_function: String,
    errors: BTreeMap<String, String>,
}

impl ProgramsPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }

    fn param_names(program: &ProgramInfo) -> String {
        program
            .parameters
            .as_ref()
            .and_then(|p| p.as_array())
            .map(|specs| {
                specs
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({})",
                            s["name"].as_str().unwrap_or("?"),
                            s["type"].as_str().unwrap_or("?")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "none".to_owned())
    }
}

async fn programs_page(
    state: &AppState,
    layout: Layout,
    session: &Session,
    input: (String, String),
    errors: BTreeMap<String, String>,
) -> Result<ProgramsPage, WebError> {
    let (programs, functions) = with_conn(state, |conn| {
        Ok::<_, diesel::result::Error>((ops::get_programs(conn)?, views::function_names(conn)?))
    })
    .await?;
    Ok(ProgramsPage {
        layout,
        csrf_token: csrf::token(session),
        programs,
        functions,
        new_name: input.0,
        new_function: input.1,
        errors,
    })
}

/// `GET /admin/programs`: get_programs.
pub async fn programs(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
) -> Result<ProgramsPage, WebError> {
    programs_page(
        &state,
        layout,
        &session,
        Default::default(),
        BTreeMap::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    function_name: String,
}

/// `POST /admin/programs`: register_program.
pub async fn register(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    req: HttpRequest,
    session: Session,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<HttpResponse, WebError> {
    let (name, function) = (
        form.name.trim().to_owned(),
        form.function_name.trim().to_owned(),
    );
    let (n, f) = (name.clone(), function.clone());
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(audit::within(
            conn,
            &audit,
            AuditAction::ProgramRegistered,
            |_| format!("program {n}"),
            |conn| ops::register_program(conn, &n, &f),
        ))
    })
    .await?;
    match outcome {
        Ok(_) => {
            flash::success(
                &session,
                format!("Program {name} registered; it runs {function}."),
            );
            Ok(see_other("/admin/programs"))
        }
        Err(OperationError::Refused { fields, .. }) => {
            let page = programs_page(
                &state,
                Layout::extract(&req).await?,
                &session,
                (name, function),
                fields,
            )
            .await?;
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(OperationError::Database(err)) => Err(err.into()),
    }
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    enabled: Option<String>,
}

/// `POST /admin/programs/{name}/settings`: schedule and enabled.
pub async fn settings(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<HttpResponse, WebError> {
    let program = find_program(&state, &path).await?;
    let enabled = form.enabled.is_some();
    let schedule = form.schedule.trim().to_owned();
    let id = program.id;
    let before = program.clone();
    let outcome = with_conn(&state, move |conn| {
        Ok::<_, WebError>(conn.transaction(|conn| {
            ops::configure_program(conn, id, Some(&schedule), enabled)?;
            let subject = format!("program {}", before.name);
            if before.schedule.as_deref().unwrap_or("") != schedule {
                let details = json!({ "schedule": schedule });
                audit::record(
                    conn,
                    &audit,
                    AuditAction::ProgramScheduled,
                    &subject,
                    details,
                )?;
            }
            if before.enabled != enabled {
                let action = if enabled {
                    AuditAction::ProgramEnabled
                } else {
                    AuditAction::ProgramDisabled
                };
                audit::record(conn, &audit, action, &subject, json!({}))?;
            }
            Ok::<_, OperationError>(())
        }))
    })
    .await?;
    match outcome {
        Ok(()) => flash::success(&session, format!("Settings of {} saved.", program.name)),
        Err(err) => flash::error(&session, format!("Nothing was saved: {err}")),
    }
    Ok(see_other("/admin/programs"))
}

/// `POST /admin/programs/{name}/pause` and `.../resume`
pub async fn pause_or_resume(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    session: Session,
    path: web::Path<(String, String)>,
    _form: CsrfForm<NoFields>,
) -> Result<HttpResponse, WebError> {
    let (name, verb) = path.into_inner();
    let paused = verb == "pause";
    let program = name.clone();
    if !with_conn(&state, move |conn| {
        ops::set_paused(conn, &audit, &name, paused)
    })
    .await?
    {
        return Err(WebError::NotFound);
    }
    let message = if paused {
        format!("{program} is paused: its queued tasks wait (its schedule still queues them).")
    } else {
        format!("{program} is running its queue again.")
    };
    flash::success(&session, message);
    Ok(see_other("/admin/programs"))
}

async fn find_program(state: &AppState, name: &str) -> Result<ProgramInfo, WebError> {
    let name = name.to_owned();
    with_conn(state, ops::get_programs)
        .await?
        .into_iter()
        .find(|program| program.name == name)
        .ok_or(WebError::NotFound)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/run.html")]
pub struct RunPage {
    layout: Layout,
    csrf_token: String,
    program: ProgramInfo,
    fields: Vec<ParamField>,
    error: Option<String>,
}

/// `GET /admin/programs/{name}/run`: the form generated from the parameter schema.
pub async fn run_form(
    state: web::Data<AppState>,
    _staff: Staff,
    layout: Layout,
    session: Session,
    path: web::Path<String>,
    prefill: web::Query<HashMap<String, String>>,
) -> Result<RunPage, WebError> {
    let program = find_program(&state, &path).await?;
    // `?param_path=books.csv` (after an upload) fills in that field; `?from_task=42` ("run
    // again with changes") fills in that task's parameters; the rest keep defaults.
    let mut prefill = prefill.into_inner();
    if let Some(id) = prefill
        .get("from_task")
        .and_then(|id| id.parse::<i64>().ok())
    {
        let earlier = with_conn(&state, move |conn| views::task_detail(conn, id)).await?;
        if let Some(serde_json::Value::Object(values)) =
            earlier.and_then(|task| task.row.parameters)
        {
            for (name, value) in values {
                let text = match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                prefill.entry(format!("param_{name}")).or_insert(text);
            }
        }
    }
    let mut fields = params::fields(program.parameters.as_ref(), None, &BTreeMap::new());
    for field in &mut fields {
        if let Some(value) = prefill.get(&field.input_name()) {
            field.value = value.clone();
        }
    }
    Ok(RunPage {
        layout,
        csrf_token: csrf::token(&session),
        fields,
        program,
        error: None,
    })
}

/// `POST /admin/programs/{name}/run`: run_program; then the new task's page.
pub async fn run(
    state: web::Data<AppState>,
    Staff(_, audit): Staff,
    req: HttpRequest,
    session: Session,
    path: web::Path<String>,
    CsrfForm(input): CsrfForm<HashMap<String, String>>,
) -> Result<HttpResponse, WebError> {
    let program = find_program(&state, &path).await?;
    let parameters = params::parameters(program.parameters.as_ref(), &input);
    let name = program.name.clone();
    let (function, settings) = (program.function_name.clone(), state.programs.clone());
    let outcome = with_conn(&state, move |conn| {
        // On the blocking pool: the import's check looks at files.
        if let Err(refused) = ops::check_before_queueing(&function, &parameters, &settings) {
            return Ok::<_, WebError>(Err(refused));
        }
        Ok::<_, WebError>(audit::within(
            conn,
            &audit,
            AuditAction::TaskQueued,
            |id| format!("task {id}"),
            |conn| ops::run_program(conn, &name, Some(&parameters)),
        ))
    })
    .await?;
    match outcome {
        Ok(task_id) => {
            flash::success(&session, format!("Task #{task_id} queued."));
            Ok(see_other(&format!("/admin/tasks/{task_id}")))
        }
        Err(OperationError::Refused {
            fields, message, ..
        }) => {
            let page = RunPage {
                layout: Layout::extract(&req).await?,
                csrf_token: csrf::token(&session),
                fields: params::fields(program.parameters.as_ref(), Some(&input), &fields),
                program,
                error: Some(message),
            };
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(OperationError::Database(err)) => Err(err.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/task.html")]
pub struct TaskPage {
    layout: Layout,
    task: TaskDetail,
    attempts: Vec<AttemptRow>,
    parameters: String,
    /// The table result, paged and sorted as asked.
    result: Option<ResultView>,
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
    let id: i64 = path.parse().map_err(|_| WebError::NotFound)?;
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

#[derive(Deserialize)]
pub struct NoFields {}

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
        Ok::<_, WebError>(audit::within(
            conn,
            &audit,
            AuditAction::TaskCancelled,
            |_| format!("task {id}"),
            |conn| ops::cancel_task(conn, id),
        ))
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
        Ok::<_, WebError>(audit::within(
            conn,
            &audit,
            AuditAction::TaskQueued,
            |id| format!("task {id}"),
            |conn| ops::run_program(conn, &program, parameters.as_ref()),
        ))
    })
    .await?;
    match outcome {
        Ok(new_id) => {
            flash::success(
                &session,
                format!("Task #{new_id} queued: a new run of task #{}.", task.row.id),
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
