//! `/api/v1` calls of engine v3: queueing with options (`POST /tasks`, one task or a list),
//! batches with a callback, and a program's priority and limits. Each handler reads its body
//! (`bodies`), hands one function below the store work (checks, then the SQL function, by the
//! caller), and answers with what `resources` builds.

use actix_web::{HttpResponse, web};
use diesel::PgConnection;
use serde_json::{Value, json};

use crate::{
    audit::AuditContext,
    ids::{TaskBatchId, TaskId},
    programs,
    tasks::{
        flow, ops,
        program::ProgramSettings,
        queueing::{self, Enqueued, ProgramOptions, RunOptions},
        status::TaskStatus,
    },
    web::{
        AppState,
        api::{
            ApiError, ApiStaff,
            bodies::{BatchBody, CallbackBody, OptionsBody, RunBody, RunRequest},
            openapi::{BadBody, Refused},
            resources,
            schemas::{
                Batch, CreatedBatch, ErrorBody, ProgramOptionsAnswer, QueuedOneOrMany, QueuedTask,
            },
        },
        error::WebError,
        with_conn,
    },
};

/// Runs store work in the blocking pool; its refusals are API errors already.
async fn store<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    with_conn(state, move |conn| Ok::<_, WebError>(work(conn)))
        .await
        .map_err(ApiError::from)?
}

/// `POST /api/v1/tasks`: `{"program", "parameters": {..}, "priority", "unique_key",
/// "unique_for_seconds", "after": [ids]}` queues one task: 201 with the task, or 200 with the
/// task that holds the unique key (`"existed": true`). With `"parameters": [{..}, ..]` (and
/// `"priority"`), one task per element in one statement: 201 with their ids, in order.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    summary = "Queue a task, or many",
    description = "With `parameters` an object (or none), queues one task: 201 with it, or 200 with the task that holds the unique key (`existed`). With `parameters` a list (at most 10,000), one task per element in one statement: 201 with their ids, in order; an element refused names its `index`.",
    request_body = RunBody,
    responses(
        (status = 201, description = "Queued: the task, or with a list of parameters the ids", body = QueuedOneOrMany),
        (status = 200, description = "The task that already holds the unique key", body = QueuedTask),
        (status = 404, description = "`program_not_found`", body = ErrorBody),
        (status = 409, description = "`program_disabled`", body = ErrorBody),
        (status = 422, description = "`invalid_parameters`, `invalid_option` or `unknown_upstream`", body = ErrorBody),
        BadBody, Refused))]
pub async fn run(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    body: web::Json<RunBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().parse()?;
    let settings = state.programs.clone();
    let queued = store(&state, move |conn| queue(conn, &audit, &settings, request)).await?;
    Ok(queued.answer())
}

/// `POST /api/v1/batches` `{"program", "parameters": [..], "callback": {"program",
/// "parameters"}}`: 201 with the batch and its members' ids.
#[utoipa::path(post, path = "/api/v1/batches", tag = "batches",
    summary = "Queue a batch",
    description = "One task per element of `parameters` (at most 10,000), and a callback task queued once they have all ended. An empty batch is over at once.",
    request_body = BatchBody,
    responses(
        (status = 201, description = "The batch and its members' ids", body = CreatedBatch,
            headers(("Location" = String, description = "The batch's path"))),
        (status = 404, description = "`program_not_found` (`callback.program` for the callback's)", body = ErrorBody),
        (status = 409, description = "`program_disabled`", body = ErrorBody),
        (status = 422, description = "`invalid_parameters`: `index` names the element", body = ErrorBody),
        BadBody, Refused))]
pub async fn create_batch(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    body: web::Json<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    let batch = body.into_inner().parse()?;
    let settings = state.programs.clone();
    let created = store(&state, move |conn| {
        queue_batch(conn, &audit, &settings, batch)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", created["url"].as_str().unwrap_or_default()))
        .json(created))
}

/// `GET /api/v1/batches/{id}`: its counts, its callback's task once queued, when it ended.
#[utoipa::path(get, path = "/api/v1/batches/{id}", tag = "batches",
    summary = "Read a batch",
    params(("id" = i64, Path, description = "The batch's id")),
    responses((status = 200, description = "The batch", body = Batch),
        (status = 404, description = "`not_found`", body = ErrorBody),
        Refused))]
pub async fn batch(
    state: web::Data<AppState>,
    _staff: ApiStaff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: TaskBatchId = path
        .parse()
        .map_err(|_| ApiError::not_found("no batch with that id"))?;
    let batch = store(&state, move |conn| Ok(resources::batch(conn, id)?)).await?;
    let batch = batch.ok_or_else(|| ApiError::not_found(format!("no batch with id {id}")))?;
    Ok(HttpResponse::Ok().json(batch))
}

/// `GET /api/v1/programs/{name}/options`: `{"program", "priority", "max_running",
/// "per_minute"}`.
#[utoipa::path(get, path = "/api/v1/programs/{name}/options", tag = "programs",
    summary = "Read a program's priority and limits",
    params(("name" = String, Path, description = "The program's name")),
    responses((status = 200, description = "Its options", body = ProgramOptionsAnswer),
        (status = 404, description = "`program_not_found`", body = ErrorBody),
        Refused))]
pub async fn program_options(
    state: web::Data<AppState>,
    _staff: ApiStaff,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let read = name.clone();
    let options = store(&state, move |conn| {
        Ok(queueing::program_options(conn, &read)?)
    })
    .await?;
    let options = options.ok_or_else(|| ApiError::program_not_found(&name))?;
    Ok(HttpResponse::Ok().json(options_json(&name, options)))
}

/// `PUT /api/v1/programs/{name}/options` with the same fields: sets all three (`null`: no
/// limit); answers with them as stored.
#[utoipa::path(put, path = "/api/v1/programs/{name}/options", tag = "programs",
    summary = "Set a program's priority and limits",
    description = "All three, as PUT replaces: one left out takes its default (priority 0, no limit).",
    params(("name" = String, Path, description = "The program's name")),
    request_body = OptionsBody,
    responses((status = 200, description = "Its options as stored", body = ProgramOptionsAnswer),
        (status = 404, description = "`program_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_option`", body = ErrorBody),
        BadBody, Refused))]
pub async fn set_program_options(
    state: web::Data<AppState>,
    ApiStaff(_, audit): ApiStaff,
    path: web::Path<String>,
    body: web::Json<OptionsBody>,
) -> Result<HttpResponse, ApiError> {
    let options = body.into_inner().parse()?;
    let name = path.into_inner();
    let set = name.clone();
    let stored = store(&state, move |conn| {
        Ok(queueing::set_program_options_as(
            conn, &audit, &set, options,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(options_json(&name, stored)))
}

fn options_json(program: &str, options: ProgramOptions) -> Value {
    let ProgramOptions {
        priority,
        max_running,
        per_minute,
    } = options;
    json!({ "program": program, "priority": priority, "max_running": max_running, "per_minute": per_minute })
}

/// What `POST /api/v1/tasks` did.
enum Queued {
    /// A task, new or (`existed`) the one holding the unique key, as `resources` shows it.
    One(Enqueued, Value),
    Many(Vec<TaskId>),
}

impl Queued {
    /// 201 with a new task; 200 with the one that held the unique key; 201 with many ids.
    fn answer(self) -> HttpResponse {
        match self {
            Queued::One(enqueued, mut task) => {
                task["existed"] = enqueued.existed.into();
                if enqueued.existed {
                    return HttpResponse::Ok().json(task);
                }
                HttpResponse::Created()
                    .insert_header(("Location", format!("/api/v1/tasks/{}", enqueued.id)))
                    .json(task)
            }
            Queued::Many(ids) => {
                let status = TaskStatus::Scheduled;
                HttpResponse::Created()
                    .json(json!({ "ids": ids, "count": ids.len(), "status": status }))
            }
        }
    }
}

fn queue(
    conn: &mut PgConnection,
    audit: &AuditContext,
    settings: &ProgramSettings,
    request: RunRequest,
) -> Result<Queued, ApiError> {
    match request {
        RunRequest::One {
            program,
            parameters,
            options,
        } => {
            let (enqueued, task) =
                queue_one(conn, audit, settings, &program, parameters, &options)?;
            Ok(Queued::One(enqueued, task))
        }
        RunRequest::Many {
            program,
            parameters,
            priority,
        } => queue_many(conn, audit, settings, &program, &parameters, priority).map(Queued::Many),
    }
}

fn queue_one(
    conn: &mut PgConnection,
    audit: &AuditContext,
    settings: &ProgramSettings,
    program: &str,
    parameters: Option<Value>,
    options: &RunOptions,
) -> Result<(Enqueued, Value), ApiError> {
    if let Some(params) = &parameters {
        check_each(conn, settings, program, std::slice::from_ref(params), false)?;
    }
    let enqueued = queueing::enqueue_as(conn, audit, program, parameters.as_ref(), options)
        .map_err(|err| ApiError::from(err).renaming("unique_for", "unique_for_seconds"))?;
    let task = resources::task(conn, enqueued.id)?;
    // Deleted between the two statements: what is known.
    let id = enqueued.id;
    let task = task.unwrap_or_else(|| json!({ "id": id, "url": format!("/api/v1/tasks/{id}") }));
    Ok((enqueued, task))
}

fn queue_many(
    conn: &mut PgConnection,
    audit: &AuditContext,
    settings: &ProgramSettings,
    program: &str,
    parameters: &[Value],
    priority: Option<i32>,
) -> Result<Vec<TaskId>, ApiError> {
    check_each(conn, settings, program, parameters, true)?;
    queueing::enqueue_many_as(conn, audit, program, parameters, priority)
        .map_err(|err| ApiError::from(err).at_named_element(parameters.len()))
}

fn queue_batch(
    conn: &mut PgConnection,
    audit: &AuditContext,
    settings: &ProgramSettings,
    batch: BatchBody,
) -> Result<Value, ApiError> {
    let BatchBody {
        program,
        parameters,
        callback,
    } = batch;
    check_each(conn, settings, &program, &parameters, true)?;
    if let Some(callback) = &callback {
        check_callback(conn, settings, callback).map_err(|err| err.within("callback"))?;
    }
    let callback = callback
        .as_ref()
        .map(|c| (c.program.as_str(), c.parameters.as_ref()));
    let id = queueing::enqueue_batch_as(conn, audit, &program, &parameters, callback)
        .map_err(|err| ApiError::from(err).at_named_element(parameters.len()))?;
    let members = flow::batch_member_ids(conn, id)?;
    let mut created = resources::batch(conn, id)?.unwrap_or_else(|| json!({ "id": id }));
    created["task_ids"] = json!(members);
    Ok(created)
}

/// Rules a program's parameter schema cannot say (`programs::check_before_queueing`), for each
/// element of a list (a refusal names its index) or for one task.
fn check_each(
    conn: &mut PgConnection,
    settings: &ProgramSettings,
    program: &str,
    parameters: &[Value],
    listed: bool,
) -> Result<(), ApiError> {
    let Some(function) = ops::function_of(conn, program)? else {
        return Ok(());
    };
    for (index, params) in parameters.iter().enumerate() {
        programs::check_before_queueing(&function, params, settings).map_err(|err| {
            let err = ApiError::from(err);
            if listed {
                err.at_element(index, parameters.len())
            } else {
                err
            }
        })?;
    }
    Ok(())
}

/// A batch's callback is queued by SQL when the batch ends, where a refusal would reach no
/// one: it is checked now, as it would be queued.
fn check_callback(
    conn: &mut PgConnection,
    settings: &ProgramSettings,
    callback: &CallbackBody,
) -> Result<(), ApiError> {
    if let Some(params) = &callback.parameters {
        check_each(
            conn,
            settings,
            &callback.program,
            std::slice::from_ref(params),
            false,
        )?;
    }
    Ok(queueing::check_queueable(
        conn,
        &callback.program,
        callback.parameters.as_ref(),
    )?)
}
