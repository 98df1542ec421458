//! Read models of tasks for the staff pages and the JSON API.

use chrono::{DateTime, Duration, Utc};
use diesel::{
    dsl::sql,
    prelude::*,
    sql_query,
    sql_types::{BigInt, Bool, Jsonb, Text, Timestamptz},
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    domain::ids::{TaskBatchId, TaskId},
    tasks::{status::TaskStatus, table::ResultTable},
};

/// A row of the task list.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
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

/// Which tasks a list shows (and a bulk action on "everything matching" touches).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub program: Option<String>,
    pub search: Option<TaskSearch>,
    /// Text the queuer's name contains ("boss", "token", "schedule", "psql").
    pub queued_by: Option<String>,
    /// Text the node (worker) name contains.
    pub node: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub created_until: Option<DateTime<Utc>>,
    pub batch: Option<TaskBatchId>,
    pub priority: Option<i32>,
    /// Only tasks up to this id: what a confirmation counted, not what was queued since.
    pub up_to_id: Option<TaskId>,
}

impl TaskFilter {
    pub fn is_empty(&self) -> bool {
        *self == TaskFilter::default()
    }
}

/// What the search box asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskSearch {
    /// "42" or "#42".
    Id(TaskId),
    /// `{"author": "Tolkien"}`: tasks whose parameters contain it (jsonb `@>`).
    Contains(Value),
    /// Text in the program's name, the parameters or the result ("sales" finds every
    /// `sales_report` task).
    Text(String),
}

impl TaskSearch {
    pub fn parse(text: &str) -> Option<TaskSearch> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Ok(id) = text.trim_start_matches('#').parse::<TaskId>() {
            return Some(TaskSearch::Id(id));
        }
        if text.starts_with('{')
            && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text)
        {
            return Some(TaskSearch::Contains(value));
        }
        Some(TaskSearch::Text(text.chars().take(200).collect()))
    }
}

/// The order of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    /// Newest first.
    #[default]
    Created,
    /// Longest first (tasks that have not run last).
    Duration,
    /// Most attempts first.
    Attempts,
}

impl TaskSort {
    pub const ALL: [TaskSort; 3] = [TaskSort::Created, TaskSort::Duration, TaskSort::Attempts];

    pub fn key(self) -> &'static str {
        match self {
            TaskSort::Created => "created",
            TaskSort::Duration => "duration",
            TaskSort::Attempts => "attempts",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TaskSort::Created => "Newest first",
            TaskSort::Duration => "Longest first",
            TaskSort::Attempts => "Most attempts first",
        }
    }

    pub fn parse(key: &str) -> Option<TaskSort> {
        TaskSort::ALL.into_iter().find(|sort| sort.key() == key)
    }
}

/// `%`, `_` and `\` are ILIKE syntax; a search for "100%" means the characters.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

type BoxedTasks<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::InnerJoin<tasks::table, programs::table>,
    diesel::pg::Pg,
>;

fn filtered(filter: &TaskFilter) -> BoxedTasks<'static> {
    let mut query = tasks::table.inner_join(programs::table).into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(tasks::status.eq(status));
    }
    if let Some(program) = &filter.program {
        query = query.filter(programs::name.eq(program.clone()));
    }
    match &filter.search {
        None => {}
        Some(TaskSearch::Id(id)) => query = query.filter(tasks::id.eq(*id)),
        Some(TaskSearch::Contains(value)) => {
            query = query.filter(
                sql::<Bool>("tasks.parameters @> ")
                    .bind::<Jsonb, _>(value.clone())
                    .sql(""),
            )
        }
        Some(TaskSearch::Text(text)) => {
            let pattern = contains_pattern(text);
            query = query.filter(
                sql::<Bool>("(programs.name ILIKE ")
                    .bind::<Text, _>(pattern.clone())
                    .sql(" OR tasks.parameters::text ILIKE ")
                    .bind::<Text, _>(pattern.clone())
                    .sql(" OR tasks.result ILIKE ")
                    .bind::<Text, _>(pattern)
                    .sql(")"),
            )
        }
    }
    if let Some(who) = &filter.queued_by {
        query = query.filter(tasks::queued_by.ilike(contains_pattern(who)));
    }
    if let Some(node) = &filter.node {
        query = query.filter(tasks::worker_id.ilike(contains_pattern(node)));
    }
    if let Some(from) = filter.created_from {
        query = query.filter(tasks::created_at.ge(from));
    }
    if let Some(until) = filter.created_until {
        query = query.filter(tasks::created_at.lt(until));
    }
    if let Some(batch) = filter.batch {
        query = query.filter(tasks::batch_id.eq(batch));
    }
    if let Some(priority) = filter.priority {
        query = query.filter(tasks::priority.eq(priority));
    }
    if let Some(up_to) = filter.up_to_id {
        query = query.filter(tasks::id.le(up_to));
    }
    query
}

/// One page of the list; `page` is 1-based. Returns the page and the total.
pub fn list_tasks(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    sort: TaskSort,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<TaskRow>, i64)> {
    let total = filtered(filter).count().get_result(conn)?;
    let ordered = match sort {
        TaskSort::Created => filtered(filter).order(tasks::id.desc()),
        TaskSort::Duration => filtered(filter).order((
            sql::<Bool>("(tasks.end_time - tasks.start_time) DESC NULLS LAST"),
            tasks::id.desc(),
        )),
        TaskSort::Attempts => filtered(filter).order((tasks::attempt.desc(), tasks::id.desc())),
    };
    let rows = ordered
        .limit(per_page)
        .offset((page.max(1) - 1) * per_page)
        .select(TaskRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// The ids of the tasks a filter matches, newest first, at most `limit`.
pub fn matching_ids(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    limit: i64,
) -> QueryResult<Vec<TaskId>> {
    filtered(filter)
        .order(tasks::id.desc())
        .limit(limit)
        .select(tasks::id)
        .load(conn)
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

/// How many tasks have each status (every status listed, zeros included).
pub fn status_counts(conn: &mut PgConnection) -> QueryResult<Vec<(TaskStatus, i64)>> {
    let counted: Vec<(TaskStatus, i64)> = tasks::table
        .group_by(tasks::status)
        .select((tasks::status, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(TaskStatus::ALL
        .into_iter()
        .map(|status| {
            let n = counted
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            (status, n)
        })
        .collect())
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

/// Tasks created per hour and status over the last 24 hours: (hour start, status, count).
pub fn hourly_counts(conn: &mut PgConnection) -> QueryResult<Vec<(DateTime<Utc>, String, i64)>> {
    #[derive(QueryableByName)]
    struct Bucket {
        #[diesel(sql_type = Timestamptz)]
        hour: DateTime<Utc>,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let rows: Vec<Bucket> = sql_query(
        "SELECT date_trunc('hour', created_at) AS hour, status, count(*) AS count FROM tasks \
          WHERE created_at >= date_trunc('hour', now()) - interval '23 hours' \
          GROUP BY 1, 2 ORDER BY 1",
    )
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|b| (b.hour, b.status, b.count))
        .collect())
}

/// The function names this app has, for the register form.
pub fn function_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    crate::db::schema::program_functions::table
        .order(crate::db::schema::program_functions::name)
        .select(crate::db::schema::program_functions::name)
        .load(conn)
}
