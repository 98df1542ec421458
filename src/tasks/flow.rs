//! What links tasks to one another, read back: the tasks one waits for (with their results,
//! for programs that build on them: `ctx.upstream()`) and the batch a callback reports on
//! (`ctx.batch()`). The rules that move tasks along these links live in SQL (migration
//! `engine_v3`); this module only reads.

use diesel::{
    prelude::*,
    sql_query,
    sql_types::{BigInt, Integer, Jsonb, Nullable, Text},
};
use serde_json::Value;

use crate::{
    domain::ids::{TaskBatchId, TaskId},
    tasks::status::TaskStatus,
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
