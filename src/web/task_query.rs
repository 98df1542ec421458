//! The task list's query string, shared by `/admin/tasks` and `GET /api/v1/tasks`: filters,
//! search, sort and where the page starts, parsed once, and the links to the pages around one.
//! Bad values are reported per field; the page shows them and ignores that filter, the API
//! answers 400.

use serde::{Deserialize, Serialize};

use crate::{
    ids::{TaskBatchId, TaskId},
    tasks::{
        listing::{Cursor, IdRange, TaskFilter, TaskPage, TaskSearch, TaskSort},
        status::TaskStatus,
    },
};

/// As typed; every field optional.
#[derive(
    Debug,
    Clone,
    Default,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    utoipa::ToSchema,
    utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub program: String,
    /// A task id, a JSON object the parameters contain, or text in the program's name, the
    /// parameters or the result.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub q: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub queued_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Created on or after this day (UTC), `2026-11-25`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// Created on or before this day (UTC).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// A batch's number: its members.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub batch: String,
    /// Tasks of this priority (-100 to 100).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sort: String,
    /// The tasks older than this id: where the "older" link goes on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub before: String,
    /// The tasks newer than this id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub after: String,
    /// With `before`, for "everything matching": the lowest id a search looked at.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub down_to: String,
    /// A page number counted from there (old links; each page further skips a page of rows).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub page: String,
}

/// What the list asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskListQuery {
    pub filter: TaskFilter,
    pub sort: TaskSort,
    pub cursor: Cursor,
    pub page: i64,
}

/// A value that could not be read: (field, message).
pub type Problem = (&'static str, String);

const MAX_TEXT: usize = 200;

impl TaskListParams {
    pub fn parse(&self) -> (TaskListQuery, Vec<Problem>) {
        let mut problems: Vec<Problem> = Vec::new();
        let text = |value: &str| {
            Some(value.trim().chars().take(MAX_TEXT).collect::<String>()).filter(|t| !t.is_empty())
        };
        let status = match self.status.trim() {
            "" => None,
            value => match value.parse::<TaskStatus>() {
                Ok(status) => Some(status),
                Err(_) => {
                    problems.push((
                        "status",
                        format!("status must be one of: {}", TaskStatus::list()),
                    ));
                    None
                }
            },
        };
        let mut day = |value: &str, field: &'static str| match value.trim() {
            "" => None,
            value => match crate::web::forms::parse_day(value) {
                Some(day) => Some(day),
                None => {
                    problems.push((field, format!("{field} is a date like 2026-11-25")));
                    None
                }
            },
        };
        let (from, to) = (day(&self.from, "from"), day(&self.to, "to"));
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            problems.push(("from", "from is after to: nothing can match".to_owned()));
        }
        let (created_from, created_until) = crate::web::forms::day_bounds(from, to);
        let batch = match self.batch.trim().trim_start_matches('#') {
            "" => None,
            value => match value.parse::<TaskBatchId>() {
                Ok(batch) if batch.0 > 0 => Some(batch),
                _ => {
                    problems.push(("batch", "batch is a batch number like 12".to_owned()));
                    None
                }
            },
        };
        let priority = match self.priority.trim() {
            "" => None,
            value => match value.parse::<i32>() {
                Ok(priority) if (-100..=100).contains(&priority) => Some(priority),
                _ => {
                    problems.push((
                        "priority",
                        "priority is a whole number from -100 to 100".to_owned(),
                    ));
                    None
                }
            },
        };
        let sort = match self.sort.trim() {
            "" => TaskSort::default(),
            value => TaskSort::parse(value).unwrap_or_else(|| {
                problems.push((
                    "sort",
                    "sort must be one of: created, duration, attempts".to_owned(),
                ));
                TaskSort::default()
            }),
        };
        let page = match self.page.trim() {
            "" => 1,
            value => match value.parse::<i64>() {
                Ok(page) if (1..=100_000).contains(&page) => page,
                _ => {
                    problems.push(("page", "page must be between 1 and 100000".to_owned()));
                    1
                }
            },
        };
        let mut cursor_at = |value: &str, field: &'static str| match value.trim() {
            "" => None,
            value => match value.trim_start_matches('#').parse::<TaskId>() {
                Ok(id) if id.0 > 0 => Some(id),
                _ => {
                    problems.push((field, format!("{field} is a task number like 42")));
                    None
                }
            },
        };
        let down_to = cursor_at(&self.down_to, "down_to");
        let cursor = match (
            cursor_at(&self.before, "before"),
            cursor_at(&self.after, "after"),
        ) {
            (Some(_), Some(_)) => {
                problems.push(("after", "give before or after, not both".to_owned()));
                Cursor::Newest
            }
            (Some(id), None) => Cursor::Before(id),
            (None, Some(id)) => Cursor::After(id),
            (None, None) => Cursor::Newest,
        };
        let query = TaskListQuery {
            filter: TaskFilter {
                status,
                program: text(&self.program),
                search: TaskSearch::parse(&self.q),
                queued_by: text(&self.queued_by),
                node: text(&self.node),
                created_from,
                created_until,
                batch,
                priority,
                up_to_id: None,
                down_to_id: down_to,
            },
            sort,
            cursor,
            page,
        };
        (query, problems)
    }

    /// The same list from another place, as a query string (empty values left out).
    pub fn at(&self, cursor: Cursor, page: i64) -> String {
        let (before, after) = match cursor {
            Cursor::Newest => (String::new(), String::new()),
            Cursor::Before(id) => (id.to_string(), String::new()),
            Cursor::After(id) => (String::new(), id.to_string()),
        };
        let params = TaskListParams {
            before,
            after,
            page: if page > 1 {
                page.to_string()
            } else {
                String::new()
            },
            ..self.clone()
        };
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }

    /// The filters only (no sort, no place): what "everything matching" carries.
    pub fn filters_only(&self) -> TaskListParams {
        TaskListParams {
            sort: String::new(),
            before: String::new(),
            after: String::new(),
            down_to: String::new(),
            page: String::new(),
            ..self.clone()
        }
    }

    /// What a bulk request on "everything matching" reads: the filters and the window.
    pub fn bulk_scope(&self) -> TaskListParams {
        TaskListParams {
            before: self.before.clone(),
            down_to: self.down_to.clone(),
            ..self.filters_only()
        }
    }

    /// What "everything matching" on `page` carries: the filters, and for filters that read
    /// each task the ids the page searched (the same window, once confirmed).
    pub fn matching(&self, page: &TaskPage) -> TaskListParams {
        let searched = |id: fn(IdRange) -> i64| page.searched.map(id).map(|id| id.to_string());
        TaskListParams {
            before: searched(|ids| ids.highest.0 + 1).unwrap_or_default(),
            down_to: searched(|ids| ids.lowest.0).unwrap_or_default(),
            ..self.filters_only()
        }
    }

    /// The links around `page` (query strings; empty is the first page, unfiltered).
    pub fn links(&self, query: &TaskListQuery, page: &TaskPage, per_page: i64) -> PageLinks {
        let by_id = query.sort == TaskSort::Created;
        let next = if !by_id && page.more_in_window {
            Some(self.at(query.cursor, query.page + 1))
        } else {
            page.older.map(|id| self.at(Cursor::Before(id), 1))
        };
        let previous = if page.rows.is_empty() && query.page > 1 {
            // Past the end of an old link's pages: the last one.
            let pages = ((page.total.value() + per_page - 1) / per_page.max(1)).max(1);
            Some(self.at(query.cursor, pages.min(query.page - 1)))
        } else if !by_id && query.page > 1 {
            Some(self.at(query.cursor, query.page - 1))
        } else {
            page.newer.map(|id| self.at(Cursor::After(id), 1))
        };
        let moved = query.cursor != Cursor::Newest || query.page > 1;
        PageLinks {
            next,
            previous,
            newest: moved.then(|| self.at(Cursor::Newest, 1)),
        }
    }
}

/// Query strings of the pages around one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageLinks {
    /// Older tasks (newest first), or the next page in another order.
    pub next: Option<String>,
    pub previous: Option<String>,
    /// The first page, when this is not it.
    pub newest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TaskId;

    #[test]
    fn searches_read_as_ids_json_or_text() {
        let parse = |q: &str| {
            TaskListParams {
                q: q.into(),
                ..Default::default()
            }
            .parse()
            .0
            .filter
            .search
        };
        assert_eq!(parse("#42"), Some(TaskSearch::Id(TaskId(42))));
        assert_eq!(
            parse(r#"{"author": "Tolkien"}"#),
            Some(TaskSearch::Contains(
                serde_json::json!({"author": "Tolkien"})
            ))
        );
        assert_eq!(parse("tolkien"), Some(TaskSearch::Text("tolkien".into())));
        assert_eq!(parse("  "), None);
    }

    #[test]
    fn bad_values_are_named_and_ignored() {
        let (query, problems) = TaskListParams {
            status: "done".into(),
            from: "2026-12-01".into(),
            to: "2026-11-01".into(),
            batch: "x".into(),
            priority: "101".into(),
            sort: "fastest".into(),
            before: "x".into(),
            page: "0".into(),
            ..Default::default()
        }
        .parse();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
        assert_eq!(
            fields,
            [
                "status", "from", "batch", "priority", "sort", "page", "before"
            ]
        );
        assert_eq!((query.filter.status, query.page), (None, 1));
    }
}
