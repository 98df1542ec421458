//! Read models of tasks for the staff pages and the JSON API: a row, a task's page, the
//! running and failed ones. (The list's query is `listing`, the overview's counts `stats`.)

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    ids::{TaskBatchId, TaskId},
    tasks::{status::TaskStatus, table::ResultTable},
};

/// A row of the task list.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub struct TaskRow {
    pub id: TaskId,
    #[diesel(select_expression = programs::name, select_expression_type = programs::name)]
    pub program: String,
    pub parameters: Option<Value>,
    pub status: TaskStatus,
    pub created_at: DateTime<Utc>,
    /// When a queued task may start (later than `created_at` while it waits to retry).
    pub run_after: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub progress_message: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// While this task holds it, its program queues no other task with the same key.
    pub unique_key: Option<String>,
    pub batch_id: Option<TaskBatchId>,
}

impl TaskRow {
    /// 0-100 when the program reports progress.
    pub fn percent(&self) -> Option<i64> {
        match (self.progress_done, self.progress_total) {
            (Some(done), Some(total)) if total > 0 => Some((done * 100 / total).clamp(0, 100)),
            _ => None,
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        let start = self.start_time?;
        Some(self.end_time.unwrap_or_else(Utc::now) - start)
    }

    /// "1.2 s", "3 min 4 s".
    pub fn duration_label(&self) -> String {
        match self.duration() {
            None => String::new(),
            Some(d) if d.num_milliseconds() < 10_000 => {
                format!("{:.1} s", d.num_milliseconds() as f64 / 1000.0)
            }
            Some(d) if d.num_seconds() < 3600 => {
                format!("{} min {} s", d.num_seconds() / 60, d.num_seconds() % 60)
            }
            Some(d) => format!("{} h {} min", d.num_hours(), d.num_minutes() % 60),
        }
    }

    /// `{"a":1}` shortened for a table cell.
    pub fn parameters_short(&self) -> String {
        let text = match &self.parameters {
            None | Some(Value::Null) => return "—".to_owned(),
            Some(value) => value.to_string(),
        };
        if text.chars().count() > 60 {
            format!("{}…", text.chars().take(59).collect::<String>())
        } else {
            text
        }
    }

    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// "retrying: attempt 2 of 3 at 14:03:12 (in 40 s)" for a task waiting after a failed
    /// attempt.
    pub fn retry_note(&self) -> Option<String> {
        if self.status != TaskStatus::Scheduled || self.attempt == 0 {
            return None;
        }
        let wait = (self.run_after - Utc::now()).num_seconds();
        let when = if wait > 0 {
            format!(" (in {wait} s)")
        } else {
            " (due now)".to_owned()
        };
        Some(format!(
            "retrying: attempt {} of {} at {}{when}",
            self.attempt + 1,
            self.max_attempts,
            self.run_after.format("%H:%M:%S")
        ))
    }
}

/// Tasks by id (for the live-update script).
pub fn tasks_by_id(conn: &mut PgConnection, ids: &[TaskId]) -> QueryResult<Vec<TaskRow>> {
    tasks::table
        .inner_join(programs::table)
        .filter(tasks::id.eq_any(ids))
        .select(TaskRow::as_select())
        .load(conn)
}

/// Everything the task page shows.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub row: TaskRow,
    pub function_name: String,
    pub worker_id: Option<String>,
    pub result: Option<String>,
    pub result_table: Option<ResultTable>,
    /// [{"attempt", "error", "at"}]
    pub attempts: Value,
    pub cancel_requested: bool,
}

pub fn task_detail(conn: &mut PgConnection, id: TaskId) -> QueryResult<Option<TaskDetail>> {
    type Found = (
        TaskRow,
        String,
        Option<String>,
        Option<String>,
        Option<Value>,
        Value,
        bool,
    );
    let found: Option<Found> = tasks::table
        .inner_join(programs::table)
        .filter(tasks::id.eq(id))
        .select((
            TaskRow::as_select(),
            programs::function_name,
            tasks::worker_id,
            tasks::result,
            tasks::result_table,
            tasks::attempts,
            tasks::cancel_requested,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(
        |(row, function_name, worker_id, result, table, attempts, cancel_requested)| TaskDetail {
            row,
            function_name,
            worker_id,
            result,
            result_table: table.and_then(|t| serde_json::from_value(t).ok()),
            attempts,
            cancel_requested,
        },
    ))
}

/// Tasks that ended in error since `since`, newest first.
pub fn failures_since(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<TaskRow>> {
    tasks::table
        .inner_join(programs::table)
        .filter(tasks::status.eq(TaskStatus::Error))
        .filter(tasks::end_time.ge(since))
        .order(tasks::end_time.desc())
        .limit(limit)
        .select(TaskRow::as_select())
        .load(conn)
}

pub fn running_tasks(conn: &mut PgConnection) -> QueryResult<Vec<TaskRow>> {
    tasks::table
        .inner_join(programs::table)
        .filter(tasks::status.eq(TaskStatus::Running))
        .order(tasks::start_time)
        .select(TaskRow::as_select())
        .load(conn)
}

/// The programs' names, for the task list's filter.
pub fn program_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    programs::table
        .order(programs::name)
        .select(programs::name)
        .load(conn)
}

/// The function names this app has, for the register form.
pub fn function_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    crate::db::schema::program_functions::table
        .order(crate::db::schema::program_functions::name)
        .select(crate::db::schema::program_functions::name)
        .load(conn)
}
