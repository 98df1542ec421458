//! Programs for staff: the list, registering one, its settings (schedule, enabled, paused),
//! and running it through a form generated from its parameters.

use std::collections::{BTreeMap, HashMap};

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use crate::ids::TaskId;
use crate::{
    programs,
    tasks::{
        ops::{self, OperationError, ProgramInfo},
        queueing::{self, Enqueued, RunOptions},
        refusal::FieldProblem,
        views::{self},
    },
    web::{
        AppState,
        auth::Staff,
        csrf::{self, CsrfForm},
        engine_options::{AdvancedInput, AdvancedSection},
        error::{WebError, html, see_other},
        flash,
        forms::NoFields,
        layout::Layout,
        params::{self, ParamField},
        with_conn,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "admin/programs.html")]
pub struct ProgramsPage {
    layout: Layout,
    csrf_token: String,
    programs: Vec<ProgramInfo>,
    functions: Vec<String>,
    new_name: String,
    new_function: String,
    errors: BTreeMap<String, FieldProblem>,
}

impl ProgramsPage {
    fn error(&self, field: &str) -> Option<&FieldProblem> {
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
    errors: BTreeMap<String, FieldProblem>,
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
        Ok::<_, WebError>(ops::register_program_as(conn, &audit, &n, &f))
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
    let (id, enabled, schedule) = (program.id, form.enabled.is_some(), form.schedule);
    let outcome = with_conn(&state, move |conn| {
        let configured = ops::configure_program(conn, &audit, id, Some(&schedule), enabled);
        Ok::<_, WebError>(configured)
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

pub(super) async fn find_program(state: &AppState, name: &str) -> Result<ProgramInfo, WebError> {
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
    /// Priority, unique key, tasks to wait for.
    advanced: AdvancedSection,
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
        .and_then(|id| id.parse::<TaskId>().ok())
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
        advanced: AdvancedSection::new(AdvancedInput::default(), program.priority),
        program,
        error: None,
    })
}

/// `POST /admin/programs/{name}/run`: run_program (with the advanced section's options);
/// then the new task's page, or the task that holds the unique key.
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
    let mut advanced = AdvancedSection::new(AdvancedInput::from_form(&input), program.priority);
    let options = match advanced.input.parse() {
        Ok(options) => options,
        Err(errors) => {
            advanced.errors = errors;
            let refused = (
                BTreeMap::new(),
                "an advanced option is not valid.".to_owned(),
            );
            return refused_run(&req, &session, program, &input, advanced, refused).await;
        }
    };
    let name = program.name.clone();
    let (function, settings) = (program.function_name.clone(), state.programs.clone());
    let queued = options.clone();
    let outcome = with_conn(&state, move |conn| {
        // On the blocking pool: the import's check looks at files.
        if let Err(refused) = programs::check_before_queueing(&function, &parameters, &settings) {
            return Ok::<_, WebError>(Err(refused));
        }
        let enqueued = queueing::enqueue_as(conn, &audit, &name, Some(&parameters), &queued);
        Ok::<_, WebError>(enqueued)
    })
    .await?;
    match outcome {
        Ok(enqueued) => Ok(announce(&session, enqueued, &options)),
        Err(OperationError::Refused {
            mut fields,
            message,
            ..
        }) => {
            advanced.take_refusals(&mut fields);
            refused_run(&req, &session, program, &input, advanced, (fields, message)).await
        }
        Err(OperationError::Database(err)) => Err(err.into()),
    }
}

/// Says what queueing did, then that task's page: the new one, or the one holding the key.
fn announce(session: &Session, enqueued: Enqueued, options: &RunOptions) -> HttpResponse {
    let id = enqueued.id;
    if enqueued.existed {
        let key = options.unique_key.as_deref().unwrap_or_default();
        flash::info(
            session,
            format!(
                "A task with key “{key}” is already queued: task #{id}. Nothing new was queued."
            ),
        );
    } else {
        flash::task_queued(session, queued_message(id, options), id);
    }
    see_other(&format!("/admin/tasks/{id}"))
}

/// "Task #6 queued." (and what it waits for).
fn queued_message(id: TaskId, options: &RunOptions) -> String {
    match options.after.as_slice() {
        [] => format!("Task #{id} queued."),
        after => {
            let ids: Vec<String> = after.iter().map(|id| format!("#{id}")).collect();
            format!(
                "Task #{id} queued; it starts once {} finished.",
                match after.len() {
                    1 => format!("task {} has", ids[0]),
                    _ => format!("tasks {} have", ids.join(", ")),
                }
            )
        }
    }
}

/// The run form again, with what was typed and what was refused: (field messages, message).
async fn refused_run(
    req: &HttpRequest,
    session: &Session,
    program: ProgramInfo,
    input: &HashMap<String, String>,
    advanced: AdvancedSection,
    (fields, message): (BTreeMap<String, FieldProblem>, String),
) -> Result<HttpResponse, WebError> {
    let page = RunPage {
        layout: Layout::extract(req).await?,
        csrf_token: csrf::token(session),
        fields: params::fields(program.parameters.as_ref(), Some(input), &fields),
        advanced,
        program,
        error: Some(message),
    };
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
}
