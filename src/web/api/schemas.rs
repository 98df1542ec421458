//! The shapes of the API's answers, for its OpenAPI description (`openapi`). The handlers build
//! these answers with `json!` (`resources`, `routes`, `queue`); the types here say what those
//! build, and `tests/api/openapi.rs` validates live answers against them so that the two cannot
//! drift apart unnoticed. Row types that answers embed as they are (`ProgramInfo`, `TaskRow`,
//! `ResultTable`, the ids and `TaskStatus`) derive their schema where they are defined.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    ids::{ProgramId, TaskBatchId, TaskId},
    tasks::{ops::ProgramInfo, status::TaskStatus, table::ResultTable, views::TaskRow},
    web::api::ApiError,
};

/// Every error: `{"error": {...}}` with the HTTP status that fits.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// `GET /api/v1/programs`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ProgramList {
    pub programs: Vec<ProgramInfo>,
}

/// A program just registered.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct RegisteredProgram {
    pub id: ProgramId,
    pub name: String,
    pub function_name: String,
}

/// Whether a count is exact or PostgreSQL's estimate.
#[derive(Serialize, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TotalIs {
    Exact,
    About,
    MoreThan,
}

/// The task ids a filter that reads each task searched for this page.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SearchedIds {
    pub lowest: TaskId,
    pub highest: TaskId,
}

/// A page of the task list, 50 tasks, newest first unless `sort` says otherwise. Follow `next`
/// and `previous` (keyset links by task id) rather than counting pages.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct TaskPage {
    pub tasks: Vec<TaskRow>,
    /// The page number asked for with `page` (old links), else 1.
    pub page: i64,
    pub per_page: i64,
    /// Exact up to 10,000, PostgreSQL's estimate beyond (see `total_is`); with a filter that
    /// reads each task, the matches among the ids in `searched`.
    pub total: i64,
    pub total_is: TotalIs,
    /// Null unless the filters read each task.
    pub searched: Option<SearchedIds>,
    /// The path of the next (older) page, null on the last.
    pub next: Option<String>,
    /// The path of the previous (newer) page, null on the first.
    pub previous: Option<String>,
}

/// A task's progress, as its program reports it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Progress {
    pub done: Option<i64>,
    pub total: Option<i64>,
    pub message: Option<String>,
    /// 0-100, when `total` is known.
    pub percent: Option<i64>,
}

/// One attempt of a task that did not finish it: failed, lost with its connection
/// (`refunded`: not counted) or snoozed.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Attempt {
    pub attempt: i32,
    pub error: String,
    pub started: Option<DateTime<Utc>>,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Not counted against `max_attempts`.
    pub refunded: Option<bool>,
    /// Seconds it was snoozed for.
    pub snoozed: Option<f64>,
}

/// A task: what `get_task_result` says, with its progress, attempts, table result, how it was
/// queued and the tasks on either side of it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Task {
    pub id: TaskId,
    /// Its path in this API.
    pub url: String,
    pub program: String,
    pub status: TaskStatus,
    pub parameters: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub attempt: i32,
    pub max_attempts: i32,
    /// The text result, once finished (or the error, once failed).
    pub result: Option<String>,
    pub result_table: Option<ResultTable>,
    /// The failed attempts, oldest first.
    pub attempts: Vec<Attempt>,
    pub progress: Progress,
    /// "1.2 s", "3 min 4 s"; empty before it starts.
    pub duration: String,
    pub cancel_requested: bool,
    /// Higher runs first.
    pub priority: i32,
    pub unique_key: Option<String>,
    pub batch_id: Option<TaskBatchId>,
    /// The tasks it waits for (the first 100; `waits_for_count` counts them all).
    pub waits_for: Vec<TaskId>,
    pub waits_for_count: i64,
    /// The tasks that wait for it (the first 100).
    pub waited_by: Vec<TaskId>,
    pub waited_by_count: i64,
}

/// A task queued by `POST /api/v1/tasks`, or the one that already held its unique key.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct QueuedTask {
    #[schema(inline)]
    #[serde(flatten)]
    pub task: Task,
    /// True when the unique key was held: this is the task that holds it (and the status 200).
    pub existed: bool,
}

/// Many tasks queued in one statement, their ids in the order of the parameters.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct QueuedMany {
    pub ids: Vec<TaskId>,
    pub count: i64,
    pub status: TaskStatus,
}

/// `POST /api/v1/tasks/{id}/cancel`: the status after the call (`running` with
/// `cancel_requested`: it was asked to stop).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Cancelled {
    pub id: TaskId,
    pub status: TaskStatus,
    pub cancel_requested: bool,
}

/// What `POST /api/v1/tasks/bulk` did.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct BulkDone {
    /// `cancel`, `retry` or `delete`.
    pub action: String,
    /// How many tasks the ids or the filter named.
    pub named: i64,
    /// How many of those the action changed.
    pub changed: i64,
}

/// `POST /api/v1/programs/{name}/pause` or `resume`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Paused {
    pub paused: bool,
}

/// A batch's callback: the task queued once every member has ended.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct BatchCallback {
    /// Null when its program was deleted since.
    pub program: Option<String>,
    /// Null until it is queued.
    pub task_id: Option<TaskId>,
    /// Why it could not be queued, if it could not.
    pub error: Option<String>,
}

/// A batch: its counts, its callback and whether it is over.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Batch {
    pub id: TaskBatchId,
    pub url: String,
    pub size: i32,
    pub finished: i32,
    pub failed: i32,
    pub pending: i32,
    pub ended: bool,
    pub callback: Option<BatchCallback>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
}

/// A batch just made, with its members' ids in the order of the parameters.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreatedBatch {
    #[schema(inline)]
    #[serde(flatten)]
    pub batch: Batch,
    pub task_ids: Vec<TaskId>,
}

/// A program's default priority and limits (`null`: no limit).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ProgramOptionsAnswer {
    pub program: String,
    pub priority: i32,
    pub max_running: Option<i32>,
    pub per_minute: Option<i32>,
}

/// What `POST /api/v1/tasks` answers with 201: the task, or the ids of many.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum QueuedOneOrMany {
    One(Box<QueuedTask>),
    Many(QueuedMany),
}
