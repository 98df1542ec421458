//! What links tasks to one another, read back: the tasks one waits for (with their results,
//! for programs that build on them: `ctx.upstream()`) and the batch a callback reports on
//! (`ctx.batch()`). The rules that move tasks along these links live in SQL (migration
//! `engine_v3`); this module only reads. The staff pages read here too: a task's links, its
//! batch, and the workflow around it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use serde_json::Value;

use crate::{
    db::schema::{programs, tasks},
    ids::{TaskBatchId, TaskId},
    tasks::{status::TaskStatus, views::TaskRow},
};

/// A task another one waited for, as it ended.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
pub struct UpstreamTask {
    #[diesel(sql_type = BigInt)]
    pub id: TaskId,
    #[diesel(sql_type = Text)]
    pub program: String,
    #[diesel(sql_type = Text)]
    pub status: TaskStatus,
    #[diesel(sql_type = Nullable<Text>)]
    pub result: Option<String>,
    /// A table result's columns and rows.
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub result_table: Option<Value>,
}

/// `task_upstream(task_id)`: the tasks `task` waits (or waited) for, oldest first.
pub fn upstream(conn: &mut PgConnection, task: TaskId) -> QueryResult<Vec<UpstreamTask>> {
    sql_query("SELECT * FROM task_upstream($1)")
        .bind::<BigInt, _>(task)
        .load(conn)
}

/// A batch's counts, as its callback sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct BatchCounts {
    #[diesel(sql_type = BigInt)]
    pub id: TaskBatchId,
    #[diesel(sql_type = Integer)]
    pub size: i32,
    #[diesel(sql_type = Integer)]
    pub finished: i32,
    /// Ended in error or cancelled.
    #[diesel(sql_type = Integer)]
    pub failed: i32,
}

/// `task_batch(task_id)`: the batch whose callback `task` is, if any.
pub fn batch_of_callback(
    conn: &mut PgConnection,
    task: TaskId,
) -> QueryResult<Option<BatchCounts>> {
    sql_query("SELECT * FROM task_batch($1)")
        .bind::<BigInt, _>(task)
        .get_result(conn)
        .optional()
}

/// The staff pages' view of these links: what a task waits for and what waits for it, the
/// batch it belongs to or reports on, and the workflow it is part of (the tasks connected to
/// it by waiting, drawn as a graph). Links outlive deleted tasks (there are no foreign keys,
/// see migration `engine_v3`), so a linked task may be gone: it is listed without a program.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct LinkedTask {
    #[diesel(sql_type = BigInt)]
    pub id: TaskId,
    /// `None`: deleted since.
    #[diesel(sql_type = Nullable<Text>)]
    pub program: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub status: Option<TaskStatus>,
    /// How many links of this kind the task has in all (the list stops at [`LINKS_SHOWN`]).
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// A page lists at most this many tasks a task waits for (and as many waiting for it).
pub const LINKS_SHOWN: i64 = 100;

/// Some of a task's links, and how many there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    pub tasks: Vec<LinkedTask>,
    pub total: i64,
}

impl Links {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many are not listed.
    pub fn not_shown(&self) -> i64 {
        self.total - self.tasks.len() as i64
    }
}

/// Which way a link is read.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// The tasks it waits for.
    Upstream,
    /// The tasks waiting for it.
    Downstream,
}

/// The first [`LINKS_SHOWN`] tasks `task` waits for (or that wait for it), and how many.
pub fn links(conn: &mut PgConnection, task: TaskId, direction: Direction) -> QueryResult<Links> {
    let statement = match direction {
        Direction::Upstream => {
            "SELECT d.upstream_id AS id, p.name AS program, t.status, count(*) OVER () AS total \
               FROM task_dependencies d \
               LEFT JOIN tasks t ON t.id = d.upstream_id \
               LEFT JOIN programs p ON p.id = t.program_id \
              WHERE d.task_id = $1 ORDER BY d.upstream_id LIMIT $2"
        }
        Direction::Downstream => {
            "SELECT d.task_id AS id, p.name AS program, t.status, count(*) OVER () AS total \
               FROM task_dependencies d \
               LEFT JOIN tasks t ON t.id = d.task_id \
               LEFT JOIN programs p ON p.id = t.program_id \
              WHERE d.upstream_id = $1 ORDER BY d.task_id LIMIT $2"
        }
    };
    let tasks: Vec<LinkedTask> = sql_query(statement)
        .bind::<BigInt, _>(task)
        .bind::<BigInt, _>(LINKS_SHOWN)
        .load(conn)?;
    let total = tasks.first().map_or(0, |task| task.total);
    Ok(Links { tasks, total })
}

/// A batch as staff see it: its counts (kept by the engine as members end), when it was
/// queued and by whom, and its callback.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct BatchSummary {
    #[diesel(embed)]
    pub counts: BatchCounts,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// When its last member ended (and its callback was queued).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub ended_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub created_by: Option<String>,
    /// The program queued when every member has ended (`None`: no callback, or deleted).
    #[diesel(sql_type = Nullable<Text>)]
    pub callback_program: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub callback_task_id: Option<TaskId>,
    /// Why the callback could not be queued when the batch ended (its program deleted or
    /// disabled since, say); the members' ends stand.
    #[diesel(sql_type = Nullable<Text>)]
    pub callback_error: Option<String>,
}

impl BatchSummary {
    /// Members that have not ended yet.
    pub fn remaining(&self) -> i32 {
        let counts = &self.counts;
        (counts.size - counts.finished - counts.failed).max(0)
    }

    /// 0-100: the share of members that have ended.
    pub fn percent_ended(&self) -> i64 {
        let counts = &self.counts;
        match counts.size {
            0 => 100,
            size => i64::from(counts.finished + counts.failed) * 100 / i64::from(size),
        }
    }
}

const BATCH_COLUMNS: &str = "SELECT b.id, b.size, b.finished, b.failed, b.created_at, b.ended_at, \
        b.created_by, p.name AS callback_program, b.callback_task_id, b.callback_error \
   FROM task_batches b LEFT JOIN programs p ON p.id = b.callback_program_id";

pub fn batch(conn: &mut PgConnection, id: TaskBatchId) -> QueryResult<Option<BatchSummary>> {
    sql_query(format!("{BATCH_COLUMNS} WHERE b.id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()
}

/// The batch whose callback `task` is, if any.
fn batch_called_back_by(
    conn: &mut PgConnection,
    task: TaskId,
) -> QueryResult<Option<BatchSummary>> {
    sql_query(format!("{BATCH_COLUMNS} WHERE b.callback_task_id = $1"))
        .bind::<BigInt, _>(task)
        .get_result(conn)
        .optional()
}

/// One page of a batch's members in id order, starting after `after`: at most `limit`, and
/// whether more follow.
pub fn batch_members(
    conn: &mut PgConnection,
    id: TaskBatchId,
    after: Option<TaskId>,
    limit: i64,
) -> QueryResult<(Vec<TaskRow>, bool)> {
    let mut rows: Vec<TaskRow> = tasks::table
        .inner_join(programs::table)
        .filter(tasks::batch_id.eq(id))
        .filter(tasks::id.gt(after.unwrap_or(TaskId(0))))
        .order(tasks::id)
        .limit(limit + 1)
        .select(TaskRow::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, more))
}

/// The ids of a batch's members, in queue order (what queueing the batch made).
pub fn batch_member_ids(conn: &mut PgConnection, id: TaskBatchId) -> QueryResult<Vec<TaskId>> {
    tasks::table
        .filter(tasks::batch_id.eq(id))
        .order(tasks::id)
        .select(tasks::id)
        .load(conn)
}

/// A task of a workflow, as a node of its graph.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct WorkflowNode {
    #[diesel(sql_type = BigInt)]
    pub id: TaskId,
    #[diesel(sql_type = Text)]
    pub program: String,
    #[diesel(sql_type = Text)]
    pub status: TaskStatus,
}

/// The tasks connected to one by waiting (either way, any number of steps), nearest first,
/// and which waits for which among them.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub nodes: Vec<WorkflowNode>,
    /// (task, the task it waits for), both among `nodes`.
    pub edges: Vec<(TaskId, TaskId)>,
    /// The workflow has more tasks than were read: these are the nearest.
    pub cut: bool,
}

#[derive(QueryableByName)]
struct Edge {
    #[diesel(sql_type = BigInt)]
    task_id: TaskId,
    #[diesel(sql_type = BigInt)]
    upstream_id: TaskId,
}

/// The workflow around `task`, at most `max_nodes` tasks (breadth first from it, so what is cut
/// is what is furthest away). Tasks deleted since are left out, with their links.
pub fn workflow(conn: &mut PgConnection, task: TaskId, max_nodes: i64) -> QueryResult<Workflow> {
    // The recursive query is read lazily: the LIMIT stops the walk of a large workflow.
    let mut reached: Vec<TaskId> = sql_query(
        "WITH RECURSIVE reach (id) AS ( \
             SELECT $1::bigint \
             UNION \
             SELECT n.id FROM reach r CROSS JOIN LATERAL ( \
                 SELECT d.upstream_id FROM task_dependencies d WHERE d.task_id = r.id \
                 UNION ALL \
                 SELECT d.task_id FROM task_dependencies d WHERE d.upstream_id = r.id \
             ) AS n (id) \
         ) SELECT id FROM reach LIMIT $2",
    )
    .bind::<BigInt, _>(task)
    .bind::<BigInt, _>(max_nodes + 1)
    .load::<Id>(conn)?
    .into_iter()
    .map(|row| row.id)
    .collect();
    let cut = reached.len() as i64 > max_nodes;
    reached.truncate(max_nodes.max(0) as usize);
    let mut nodes: Vec<WorkflowNode> = sql_query(
        "SELECT t.id, p.name AS program, t.status FROM tasks t \
           JOIN programs p ON p.id = t.program_id WHERE t.id = ANY ($1)",
    )
    .bind::<Array<BigInt>, _>(&reached)
    .load(conn)?;
    // Nearest first, as reached.
    nodes.sort_by_key(|node| reached.iter().position(|id| *id == node.id));
    let present: HashSet<TaskId> = nodes.iter().map(|node| node.id).collect();
    let edges = sql_query(
        "SELECT d.task_id, d.upstream_id FROM task_dependencies d \
          WHERE d.task_id = ANY ($1) AND d.upstream_id = ANY ($1) \
          ORDER BY d.task_id, d.upstream_id",
    )
    .bind::<Array<BigInt>, _>(&reached)
    .load::<Edge>(conn)?
    .into_iter()
    .filter(|edge| present.contains(&edge.task_id) && present.contains(&edge.upstream_id))
    .map(|edge| (edge.task_id, edge.upstream_id))
    .collect();
    Ok(Workflow { nodes, edges, cut })
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: TaskId,
}

/// A workflow's graph is drawn with at most this many tasks.
pub const WORKFLOW_MAX_NODES: i64 = 60;

/// Everything a task's page shows about its links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFlow {
    /// What it waits (or waited) for.
    pub upstream: Links,
    /// What waits (or waited) for it.
    pub downstream: Links,
    /// The batch it is a member of.
    pub batch: Option<BatchSummary>,
    /// The batch whose callback it is.
    pub callback_of: Option<BatchSummary>,
    /// The workflow it is part of, when it waits for a task or one waits for it.
    pub workflow: Option<Workflow>,
}

pub fn task_flow(
    conn: &mut PgConnection,
    task: TaskId,
    member_of: Option<TaskBatchId>,
) -> QueryResult<TaskFlow> {
    let upstream = links(conn, task, Direction::Upstream)?;
    let downstream = links(conn, task, Direction::Downstream)?;
    let workflow = if upstream.is_empty() && downstream.is_empty() {
        None
    } else {
        Some(workflow(conn, task, WORKFLOW_MAX_NODES)?)
    };
    let batch = match member_of {
        Some(id) => batch(conn, id)?,
        None => None,
    };
    Ok(TaskFlow {
        upstream,
        downstream,
        batch,
        callback_of: batch_called_back_by(conn, task)?,
        workflow,
    })
}
