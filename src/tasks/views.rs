//! Read models of tasks for the staff pages and the JSON API.

use chrono::{DateTime, Duration, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{BigInt, Text, Timestamptz},
};
use serde::Serialize;
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    tasks::{status::TaskStatus, table::ResultTable},
};

/// A row of the task list.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub struct TaskRow {
    pub id: i64,
    #[diesel(select_expression = programs::name, select_expression_type = programs::name)]
    pub program: String,
    pub parameters: Option<Value>,
    pub status: TaskStatus,
    pub created_at: DateTime<Utc>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub progress_message: Option<String>,
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
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub program: Option<String>,
}

/// Newest first; `page` is 1-based. Returns the page and the total.
pub fn list_tasks(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<TaskRow>, i64)> {
    let query = || {
        let mut query = tasks::table.inner_join(programs::table).into_boxed();
        if let Some(status) = filter.status {
            query = query.filter(tasks::status.eq(status));
        }
        if let Some(program) = &filter.program {
            query = query.filter(programs::name.eq(program.clone()));
        }
        query
    };
    let total = query().count().get_result(conn)?;
    let rows = query()
        .order(tasks::id.desc())
        .limit(per_page)
        .offset((page.max(1) - 1) * per_page)
        .select(TaskRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}

/// Tasks by id (for the live-update script).
pub fn tasks_by_id(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<TaskRow>> {
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

pub fn task_detail(conn: &mut PgConnection, id: i64) -> QueryResult<Option<TaskDetail>> {
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
