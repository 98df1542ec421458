//! The task list's query string, shared by `/admin/tasks` and `GET /api/v1/tasks`: filters,
//! search, sort and page, parsed once. Bad values are reported per field; the page shows them
//! and ignores that filter, the API answers 400.

use serde::{Deserialize, Serialize};

use crate::{
    domain::ids::TaskBatchId,
    tasks::{
        status::TaskStatus,
        views::{TaskFilter, TaskSearch, TaskSort},
    },
};

/// As typed; every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
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
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub page: String,
}

/// What the list asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskListQuery {
    pub filter: TaskFilter,
    pub sort: TaskSort,
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
            },
            sort,
            page,
        };
        (query, problems)
    }

    /// The same list at another page, as a query string (empty values left out).
    pub fn at_page(&self, page: i64) -> String {
        let params = TaskListParams {
            page: if page > 1 {
                page.to_string()
            } else {
                String::new()
            },
            ..self.clone()
        };
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }

    /// The filters only (no sort, no page): what "everything matching" carries.
    pub fn filters_only(&self) -> TaskListParams {
        TaskListParams {
            sort: String::new(),
            page: String::new(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::TaskId;

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
            page: "0".into(),
            ..Default::default()
        }
        .parse();
        let fields: Vec<&str> = problems.iter().map(|(field, _)| *field).collect();
        assert_eq!(
            fields,
            ["status", "from", "batch", "priority", "sort", "page"]
        );
        assert_eq!((query.filter.status, query.page), (None, 1));
    }
}
