//! Pages of filters that must look at each task: the tasks are read newest first, a window of
//! [`SCAN_WINDOW`] ids at a time (a range of the primary key, so each window costs the same
//! however many tasks are kept), until the page is full, the time budget [`SCAN_BUDGET`] is
//! spent, or no older task is left. The page says which ids it searched and how many of them
//! matched; its "older" link goes on below them.
//!
//! Why a time budget rather than a fixed number of ids: what a task costs to look at differs
//! threefold (a queued task without parameters or result is cheap to rule out, a finished one
//! with both is not), so a budget searches a million queued tasks in the time a fixed window
//! would spend on a third as many finished ones, and a page answers in about the same time
//! either way.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::{
    dsl::sql,
    prelude::*,
    sql_types::{BigInt, Timestamptz},
};

use super::{
    Cursor, IdRange, PageRequest, Resolved, TaskFilter, TaskPage, TaskSort, filtered, ordered,
    rows_in_order,
};
use crate::{
    db::{
        counting::{self, Count, EXACT_UP_TO},
        schema::tasks,
    },
    ids::TaskId,
};

/// Ids one window reads (one statement: 20 ms for fifty thousand finished tasks).
pub const SCAN_WINDOW: i64 = 50_000;
/// A page reads more windows until this much time has passed.
pub const SCAN_BUDGET: Duration = Duration::from_millis(50);

pub(super) fn window_page(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    resolved: &Resolved,
    sort: TaskSort,
    request: PageRequest,
) -> QueryResult<TaskPage> {
    match (sort, request.cursor) {
        (TaskSort::Created, Cursor::Newest | Cursor::Before(_)) => {
            search_older(conn, filter, resolved, request)
        }
        _ => one_window(conn, filter, resolved, sort, request),
    }
}

/// Newest first from the cursor: windows one below the other until the page (and one row
/// more, to know there is more) is found or the budget is spent. Each window is one query for
/// the ids that match, at most [`EXACT_UP_TO`] + 1 (so the count is exact up to there), then
/// the page's rows by id.
fn search_older(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    resolved: &Resolved,
    request: PageRequest,
) -> QueryResult<TaskPage> {
    let started = Instant::now();
    let per_page = request.per_page.max(1) as usize;
    let skip = (request.page.max(1) as usize - 1) * per_page;
    let wanted = skip + per_page + 1;
    let (mut found, mut matched, mut capped) = (Vec::new(), 0, false);
    let (mut searched, mut older_left): (Option<IdRange>, bool) = (None, false);
    let Some(bounds) = id_bounds(conn, filter)? else {
        return Ok(TaskPage::empty());
    };
    let mut cursor = request.cursor;
    while let Some(window) = window_in(bounds, cursor) {
        let ids: Vec<TaskId> = filtered(filter, resolved)
            .filter(tasks::id.between(window.ids.lowest, window.ids.highest))
            .order(tasks::id.desc())
            .limit(EXACT_UP_TO + 1)
            .select(tasks::id)
            .load(conn)?;
        matched += ids.len() as i64;
        capped |= ids.len() as i64 > EXACT_UP_TO;
        found.extend(ids.into_iter().take(wanted.saturating_sub(found.len())));
        searched = Some(IdRange {
            lowest: window.ids.lowest,
            highest: searched.map_or(window.ids.highest, |s| s.highest),
        });
        older_left = window.older;
        if found.len() >= wanted || capped || !older_left || started.elapsed() >= SCAN_BUDGET {
            break;
        }
        cursor = Cursor::Before(window.ids.lowest);
    }
    let more = found.len() > skip + per_page;
    let page_ids: Vec<TaskId> = found.into_iter().skip(skip).take(per_page).collect();
    let rows = rows_in_order(conn, &page_ids)?;
    let (first, last) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id));
    let older = match searched {
        _ if more => last,
        Some(ids) if older_left => Some(ids.lowest),
        _ => None,
    };
    let newer = match request.cursor {
        Cursor::Newest if request.page <= 1 => None,
        Cursor::Newest => first,
        _ => first.or(searched.map(|ids| ids.highest)),
    };
    Ok(TaskPage {
        rows,
        total: if capped {
            Count::MoreThan(EXACT_UP_TO)
        } else {
            Count::Exact(matched)
        },
        searched,
        older,
        newer,
        more_in_window: false,
    })
}

/// One window in the asked order ("newer" pages, and the orders other than newest first,
/// whose pages are numbered inside the window).
fn one_window(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    resolved: &Resolved,
    sort: TaskSort,
    request: PageRequest,
) -> QueryResult<TaskPage> {
    let per_page = request.per_page.max(1);
    let Some(window) = window_at(conn, filter, request.cursor)? else {
        return Ok(TaskPage::empty());
    };
    let range = window.ids;
    let in_window =
        || filtered(filter, resolved).filter(tasks::id.between(range.lowest, range.highest));
    let ascending = sort == TaskSort::Created;
    let mut ids: Vec<TaskId> = ordered(in_window(), sort, ascending)
        .limit(per_page + 1)
        .offset((request.page.max(1) - 1) * per_page)
        .select(tasks::id)
        .load(conn)?;
    let more = ids.len() as i64 > per_page;
    ids.truncate(per_page as usize);
    if ascending {
        ids.reverse();
    }
    let rows = rows_in_order(conn, &ids)?;
    let matched = counting::count_up_to(conn, in_window().select(tasks::id), EXACT_UP_TO)?;
    // Beyond the window: the ids below it (before its lowest) and above it (after its highest).
    let below = window.older.then_some(range.lowest);
    let above = window.newer.then_some(range.highest);
    let newer = match sort {
        // "Newer" (the only way here newest first): the next page up starts above its newest row.
        TaskSort::Created if more => rows.first().map(|r| r.id),
        _ => above,
    };
    Ok(TaskPage {
        rows,
        total: if matched > EXACT_UP_TO {
            Count::MoreThan(EXACT_UP_TO)
        } else {
            Count::Exact(matched)
        },
        searched: Some(range),
        older: below,
        newer,
        more_in_window: more && sort != TaskSort::Created,
    })
}

/// The ids a window reads, and whether the filter could match ids below and above them.
pub(super) struct Window {
    pub ids: IdRange,
    pub older: bool,
    pub newer: bool,
}

/// The ids a filter can match at all (inclusive): those of its dates (where they begin and
/// end, by `task_id_at`), from `down_to_id` and up to `up_to_id`. `None`: no tasks.
pub(super) fn id_bounds(
    conn: &mut PgConnection,
    filter: &TaskFilter,
) -> QueryResult<Option<(i64, i64)>> {
    let (lowest, highest): (Option<i64>, Option<i64>) = tasks::table
        .select((diesel::dsl::min(tasks::id), diesel::dsl::max(tasks::id)))
        .first(conn)?;
    let (Some(mut bottom), Some(mut top)) = (lowest, highest) else {
        return Ok(None);
    };
    if let Some(until) = filter.created_until {
        top = top.min(task_id_at(conn, until)? - 1);
    }
    if let Some(up_to) = filter.up_to_id {
        top = top.min(up_to.0);
    }
    if let Some(from) = filter.created_from {
        bottom = bottom.max(task_id_at(conn, from)?);
    }
    if let Some(down_to) = filter.down_to_id {
        bottom = bottom.max(down_to.0);
    }
    Ok(Some((bottom, top)))
}

/// Up to [`SCAN_WINDOW`] ids below a "before" cursor (or the newest), or above an "after"
/// one, within `bounds`. `None` when that leaves nothing.
pub(super) fn window_in(bounds: (i64, i64), cursor: Cursor) -> Option<Window> {
    let (bottom, top) = bounds;
    let (lowest, highest) = match cursor {
        Cursor::Newest => (top - SCAN_WINDOW + 1, top),
        Cursor::Before(id) => (id.0 - SCAN_WINDOW, id.0 - 1),
        Cursor::After(id) => (id.0 + 1, id.0 + SCAN_WINDOW),
    };
    let (lowest, highest) = (lowest.max(bottom), highest.min(top));
    (lowest <= highest).then_some(Window {
        ids: IdRange {
            lowest: TaskId(lowest),
            highest: TaskId(highest),
        },
        older: lowest > bottom,
        newer: highest < top,
    })
}

/// The window at `cursor` for `filter`.
pub(super) fn window_at(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    cursor: Cursor,
) -> QueryResult<Option<Window>> {
    Ok(id_bounds(conn, filter)?.and_then(|bounds| window_in(bounds, cursor)))
}

/// The first task id created at or after `at` (migration dashboard_at_scale: a binary search
/// over the primary key).
fn task_id_at(conn: &mut PgConnection, at: DateTime<Utc>) -> QueryResult<i64> {
    diesel::select(
        sql::<BigInt>("task_id_at(")
            .bind::<Timestamptz, _>(at)
            .sql(")"),
    )
    .get_result(conn)
}
