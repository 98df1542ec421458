//! The task list's query, shared by `/admin/tasks`, the overview and `GET /api/v1/tasks`, made
//! to cost the same over ten thousand kept tasks or ten million: pages by keyset (the tasks
//! before or after one id, never an OFFSET over the table) and counts that stop at a threshold
//! (`db::counting`).
//!
//! Some filters an index answers in id order: none, a program, a batch, an id, and each
//! status but "finished" (each has a partial index; finished is nearly every task). A page of
//! those reads its own rows. The others have to look at each task (text, JSON contained in
//! the parameters, who queued it, the node, the priority, dates, "finished", and the orders
//! other than newest first): those read the tasks newest first, a window of ids at a time,
//! until the page is full or a time budget is spent ([`window`]), and say which ids they
//! searched, so "older" goes on where they stopped. A search over a year of tasks is then
//! several cheap pages rather than one request that reads them all; a trigram index would
//! make it one, at the cost of an index write on every task's insert and end, which the
//! engine pays first.

mod filter;
mod window;

use diesel::prelude::*;

use self::filter::{Resolved, filtered, ordered, parts, resolve};
pub use self::{
    filter::{TaskFilter, TaskSearch, TaskSort},
    window::{SCAN_BUDGET, SCAN_WINDOW},
};
use crate::{
    db::{
        counting::{self, Count, EXACT_UP_TO},
        schema::{programs, tasks},
    },
    ids::TaskId,
    tasks::views::{self, TaskRow},
};

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cursor {
    #[default]
    Newest,
    /// The tasks older than this one ("Older").
    Before(TaskId),
    /// The tasks newer than this one ("Newer").
    After(TaskId),
}

/// Which page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Cursor,
    /// 1-based, counted from the cursor: what old links (`?page=3`) ask for. Reading page n
    /// skips (n - 1) pages of rows, so the pages' own links use cursors instead.
    pub page: i64,
    pub per_page: i64,
}

/// Inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub lowest: TaskId,
    pub highest: TaskId,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub rows: Vec<TaskRow>,
    /// How many tasks match: in all, or among the `searched` ids when there are some.
    pub total: Count,
    /// The ids this page looked at, when its filters read each task.
    pub searched: Option<IdRange>,
    /// "Older": the cursor of the next page, when there may be one.
    pub older: Option<TaskId>,
    /// "Newer": the cursor of the page before, when this one does not start at the newest.
    pub newer: Option<TaskId>,
    /// Rows follow this page in its window (a page number further, for the orders other than
    /// newest first).
    pub more_in_window: bool,
}

impl TaskPage {
    fn empty() -> TaskPage {
        TaskPage {
            rows: Vec::new(),
            total: Count::Exact(0),
            searched: None,
            older: None,
            newer: None,
            more_in_window: false,
        }
    }
}

/// One page of the list (see the module's comment for what each kind of filter reads).
pub fn list_tasks(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    sort: TaskSort,
    request: PageRequest,
) -> QueryResult<TaskPage> {
    counting::planned_for_values(conn, |conn| {
        let Some(resolved) = resolve(conn, filter)? else {
            return Ok(TaskPage::empty());
        };
        if sort != TaskSort::Created || filter.reads_each_task() {
            window::window_page(conn, filter, &resolved, sort, request)
        } else {
            keyset_page(conn, filter, &resolved, request)
        }
    })
}

/// Newest first, from the cursor, by an index: the page's ids (from each part of the filter,
/// merged), its rows by id, and a count that stops early.
fn keyset_page(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    resolved: &Resolved,
    request: PageRequest,
) -> QueryResult<TaskPage> {
    let per_page = request.per_page.max(1);
    let ascending = matches!(request.cursor, Cursor::After(_));
    let skip = (request.page.max(1) - 1) * per_page;
    let from_cursor = parts(filter, resolved)
        .into_iter()
        .map(|part| match request.cursor {
            Cursor::Newest => part,
            Cursor::Before(id) => part.filter(tasks::id.lt(id)),
            Cursor::After(id) => part.filter(tasks::id.gt(id)),
        })
        .collect();
    let ids = ids_in_order(conn, from_cursor, ascending, skip + per_page + 1)?;
    let mut ids: Vec<TaskId> = ids.into_iter().skip(skip as usize).collect();
    let more = ids.len() as i64 > per_page;
    ids.truncate(per_page as usize);
    if ascending {
        ids.reverse();
    }
    let rows = rows_in_order(conn, &ids)?;
    let total = count_matching(conn, filter, resolved)?;
    let (first, last) = (ids.first().copied(), ids.last().copied());
    let (older, newer) = match request.cursor {
        Cursor::Newest => (last.filter(|_| more), first.filter(|_| request.page > 1)),
        Cursor::Before(_) => (last.filter(|_| more), first),
        Cursor::After(_) => (last, first.filter(|_| more)),
    };
    Ok(TaskPage {
        rows,
        total,
        searched: None,
        older,
        newer,
        more_in_window: false,
    })
}

/// Exact up to the threshold (each part counted from its index), the estimate beyond.
fn count_matching(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    resolved: &Resolved,
) -> QueryResult<Count> {
    let mut found = 0;
    for part in parts(filter, resolved) {
        found += counting::count_up_to(conn, part.select(tasks::id), EXACT_UP_TO)?;
    }
    if found <= EXACT_UP_TO {
        return Ok(Count::Exact(found));
    }
    counting::beyond_exact(conn, filtered(filter, resolved).select(tasks::id))
}

/// The first `limit` ids of the parts together, newest first (oldest first if `ascending`).
fn ids_in_order(
    conn: &mut PgConnection,
    parts: Vec<filter::BoxedTasks>,
    ascending: bool,
    limit: i64,
) -> QueryResult<Vec<TaskId>> {
    let mut ids: Vec<TaskId> = Vec::new();
    for part in parts {
        ids.extend(
            ordered(part, TaskSort::Created, ascending)
                .limit(limit)
                .select(tasks::id)
                .load::<TaskId>(conn)?,
        );
    }
    ids.sort_unstable();
    if !ascending {
        ids.reverse();
    }
    ids.truncate(limit.max(0) as usize);
    Ok(ids)
}

/// The rows of `ids`, in that order.
fn rows_in_order(conn: &mut PgConnection, ids: &[TaskId]) -> QueryResult<Vec<TaskRow>> {
    let mut rows = views::tasks_by_id(conn, ids)?;
    rows.sort_by_key(|row| ids.iter().position(|id| *id == row.id));
    Ok(rows)
}

/// The ids of the tasks a filter matches, newest first, at most `limit`: what "everything
/// matching" acts on. For a filter that reads each task, the ids a list page searched (from
/// `down_to_id` up to the cursor), or else one window below the cursor.
pub fn matching_ids(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    cursor: Cursor,
    limit: i64,
) -> QueryResult<Vec<TaskId>> {
    counting::planned_for_values(conn, |conn| {
        let Some(resolved) = resolve(conn, filter)? else {
            return Ok(Vec::new());
        };
        // What a search page read: from down_to (in the filter) up to before; else a window.
        let range = match (filter.reads_each_task(), cursor, filter.down_to_id) {
            (false, _, _) => None,
            (true, Cursor::Before(before), Some(down_to)) => Some((down_to, TaskId(before.0 - 1))),
            (true, _, _) => match window::window_at(conn, filter, cursor)? {
                Some(window) => Some((window.ids.lowest, window.ids.highest)),
                None => return Ok(Vec::new()),
            },
        };
        let parts = parts(filter, &resolved)
            .into_iter()
            .map(|part| match range {
                Some((lowest, highest)) => part.filter(tasks::id.between(lowest, highest)),
                None => part,
            })
            .collect();
        ids_in_order(conn, parts, false, limit)
    })
}

/// The newest tasks (the overview's "latest").
pub fn latest_tasks(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<TaskRow>> {
    tasks::table
        .inner_join(programs::table)
        .order(tasks::id.desc())
        .limit(limit)
        .select(TaskRow::as_select())
        .load(conn)
}
