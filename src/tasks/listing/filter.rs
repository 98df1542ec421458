//! What a task list asks for (filters, search, order) and the SQL it becomes: one boxed
//! diesel query per filter, shared by the pages, the counts and the bulk actions.

use chrono::{DateTime, Utc};
use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{Array, BigInt, Bool, Jsonb, Text},
};
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    ids::{ProgramId, TaskBatchId, TaskId},
    tasks::status::TaskStatus,
};

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
    /// Only tasks from this id up: the lowest a search looked at, for "everything matching"
    /// what it found.
    pub down_to_id: Option<TaskId>,
}

impl TaskFilter {
    pub fn is_empty(&self) -> bool {
        *self == TaskFilter::default()
    }

    /// Whether no index answers it in id order, so a page reads a window of tasks one by one.
    pub fn reads_each_task(&self) -> bool {
        matches!(
            self.search,
            Some(TaskSearch::Text(_) | TaskSearch::Contains(_))
        ) || self.queued_by.is_some()
            || self.node.is_some()
            || self.priority.is_some()
            || self.created_from.is_some()
            || self.created_until.is_some()
            || self.status == Some(TaskStatus::Finished)
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

/// The filter's names turned into ids once, so the query compares numbers and the planner
/// knows which program it is (its share of the tasks, hence the right index).
pub(super) struct Resolved {
    program: Option<ProgramId>,
    /// The programs whose name the search text is in.
    text_programs: Vec<i64>,
}

/// `None` when a program is named that does not exist: nothing can match.
pub(super) fn resolve(
    conn: &mut PgConnection,
    filter: &TaskFilter,
) -> QueryResult<Option<Resolved>> {
    let program = match &filter.program {
        None => None,
        Some(name) => match programs::table
            .filter(programs::name.eq(name))
            .select(programs::id)
            .first::<i64>(conn)
            .optional()?
        {
            Some(id) => Some(ProgramId(id)),
            None => return Ok(None),
        },
    };
    let text_programs = match &filter.search {
        Some(TaskSearch::Text(text)) => programs::table
            .filter(programs::name.ilike(contains_pattern(text)))
            .select(programs::id)
            .load(conn)?,
        _ => Vec::new(),
    };
    Ok(Some(Resolved {
        program,
        text_programs,
    }))
}

/// `%`, `_` and `\` are ILIKE syntax; a search for "100%" means the characters.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(super) type BoxedTasks = diesel::dsl::IntoBoxed<'static, tasks::table, diesel::pg::Pg>;

/// The tasks `filter` matches. Pages select ids only (and load the rows of one page by id):
/// an id is in every index, so the planner can answer from the index that fits the filter
/// alone, where whole rows would tempt it to walk the primary key and filter.
pub(super) fn filtered(filter: &TaskFilter, resolved: &Resolved) -> BoxedTasks {
    let mut query = tasks::table.into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(tasks::status.eq(status));
    }
    if let Some(program) = resolved.program {
        query = query.filter(tasks::program_id.eq(program.0));
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
                sql::<Bool>("(tasks.program_id = ANY(")
                    .bind::<Array<BigInt>, _>(resolved.text_programs.clone())
                    .sql(") OR tasks.parameters::text ILIKE ")
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
    if let Some(down_to) = filter.down_to_id {
        query = query.filter(tasks::id.ge(down_to));
    }
    query
}

/// The filter as parts that indexes answer one by one: queued tasks are in two partial
/// indexes (plain and limited, engine v3) and neither holds "status = 'scheduled'" alone, so
/// without the split a short queue among millions of kept tasks is found by a full scan.
pub(super) fn parts(filter: &TaskFilter, resolved: &Resolved) -> Vec<BoxedTasks> {
    match filter.status {
        Some(TaskStatus::Scheduled) => [false, true]
            .into_iter()
            .map(|limited| filtered(filter, resolved).filter(tasks::limited.eq(limited)))
            .collect(),
        _ => vec![filtered(filter, resolved)],
    }
}

pub(super) fn ordered(query: BoxedTasks, sort: TaskSort, ascending: bool) -> BoxedTasks {
    match (sort, ascending) {
        (TaskSort::Created, false) => query.order(tasks::id.desc()),
        (TaskSort::Created, true) => query.order(tasks::id.asc()),
        (TaskSort::Duration, _) => query.order((
            sql::<Bool>("(tasks.end_time - tasks.start_time) DESC NULLS LAST"),
            tasks::id.desc(),
        )),
        (TaskSort::Attempts, _) => query.order((tasks::attempt.desc(), tasks::id.desc())),
    }
}
