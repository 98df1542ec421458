//! What the API says about a task and a batch, built in one place so that queueing one and
//! reading it back answer alike.

use diesel::PgConnection;
use serde_json::{Value, json};

use crate::{
    ids::{TaskBatchId, TaskId},
    tasks::{
        flow::{self, Direction, Links},
        ops, views,
    },
};

/// A task: what `get_task_result` says, with its progress, attempts, table result, how it was
/// queued (priority, unique key, batch) and the tasks on either side of it. `Ok(None)`: it was
/// deleted between the reads.
pub fn task(conn: &mut PgConnection, id: TaskId) -> Result<Option<Value>, ops::OperationError> {
    let result = ops::get_task_result(conn, id)?;
    let Some(detail) = views::task_detail(conn, id)? else {
        return Ok(None);
    };
    let waits_for = flow::links(conn, id, Direction::Upstream)?;
    let waited_by = flow::links(conn, id, Direction::Downstream)?;
    let row = &detail.row;
    Ok(Some(json!({
        "id": result.id,
        "url": format!("/api/v1/tasks/{id}"),
        "program": result.program,
        "status": result.status,
        "parameters": result.parameters,
        "created_at": result.created_at,
        "start_time": result.start_time,
        "end_time": result.end_time,
        "attempt": result.attempt,
        "max_attempts": row.max_attempts,
        "result": result.result,
        "result_table": detail.result_table,
        "attempts": detail.attempts,
        "progress": {
            "done": row.progress_done,
            "total": row.progress_total,
            "message": row.progress_message,
            "percent": row.percent(),
        },
        "duration": row.duration_label(),
        "cancel_requested": detail.cancel_requested,
        "priority": row.priority,
        "unique_key": row.unique_key,
        "batch_id": row.batch_id,
        "waits_for": ids(&waits_for),
        "waits_for_count": waits_for.total,
        "waited_by": ids(&waited_by),
        "waited_by_count": waited_by.total,
    })))
}

/// The ids listed (the first `flow::LINKS_SHOWN`).
fn ids(links: &Links) -> Vec<TaskId> {
    links.tasks.iter().map(|task| task.id).collect()
}

/// A batch: its counts, its callback and whether it is over.
pub fn batch(conn: &mut PgConnection, id: TaskBatchId) -> diesel::QueryResult<Option<Value>> {
    let Some(batch) = flow::batch(conn, id)? else {
        return Ok(None);
    };
    // A callback whose program was deleted since still shows the task it queued, if it did.
    // One that could not be queued says why.
    let has_callback = batch.callback_program.is_some()
        || batch.callback_task_id.is_some()
        || batch.callback_error.is_some();
    let callback = has_callback.then(|| {
        json!({
            "program": batch.callback_program,
            "task_id": batch.callback_task_id,
            "error": batch.callback_error,
        })
    });
    Ok(Some(json!({
        "id": batch.counts.id,
        "url": format!("/api/v1/batches/{id}"),
        "size": batch.counts.size,
        "finished": batch.counts.finished,
        "failed": batch.counts.failed,
        "pending": batch.remaining(),
        "ended": batch.ended_at.is_some(),
        "callback": callback,
        "created_at": batch.created_at,
        "ended_at": batch.ended_at,
        "created_by": batch.created_by,
    })))
}
