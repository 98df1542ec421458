//! A task's place in a trace (when spans are exported, see `telemetry`): queueing from a
//! request writes the request's W3C `traceparent` on the task, and the attempt's span takes
//! it as its parent, so the run shows in the request's trace. With tracing off neither side
//! touches the database.

use diesel::prelude::*;

use crate::db::PgPool;
use crate::db::schema::tasks;
use crate::ids::{TaskBatchId, TaskId};
use crate::telemetry;

use super::engine::store::ClaimedTask;

/// Writes the current span's `traceparent` on `ids`, in the caller's transaction; nothing when
/// spans are not exported or no trace is current.
pub fn record(conn: &mut PgConnection, ids: &[TaskId]) -> QueryResult<()> {
    let Some(traceparent) = telemetry::current_traceparent() else {
        return Ok(());
    };
    diesel::update(tasks::table.filter(tasks::id.eq_any(ids)))
        .set(tasks::traceparent.eq(traceparent))
        .execute(conn)?;
    Ok(())
}

/// [`record`] for every task of `batch` (its callback is queued when the batch ends, from no
/// request).
pub fn record_batch(conn: &mut PgConnection, batch: TaskBatchId) -> QueryResult<()> {
    let Some(traceparent) = telemetry::current_traceparent() else {
        return Ok(());
    };
    diesel::update(tasks::table.filter(tasks::batch_id.eq(batch)))
        .set(tasks::traceparent.eq(traceparent))
        .execute(conn)?;
    Ok(())
}

/// The span of one attempt of `task`, a child of the request that queued it when there was
/// one; no span at all while spans are not exported.
pub fn attempt_span(pool: &PgPool, task: &ClaimedTask) -> tracing::Span {
    if !telemetry::exporting() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "task run",
        otel.name = %format!("task run {}", task.program_name),
        task.id = %task.key.task_id,
        task.attempt = task.key.attempt,
        task.program = %task.program_name,
    );
    match queued_from(pool, task.key.task_id) {
        Ok(Some(traceparent)) => telemetry::continue_trace(&span, &traceparent),
        Ok(None) => {}
        // The run goes on: it only starts a trace of its own.
        Err(err) => tracing::debug!("reading task {}'s traceparent: {err:#}", task.key.task_id),
    }
    span
}

fn queued_from(pool: &PgPool, id: TaskId) -> anyhow::Result<Option<String>> {
    let mut conn = pool.get()?;
    Ok(tasks::table
        .filter(tasks::id.eq(id))
        .select(tasks::traceparent)
        .first::<Option<String>>(&mut conn)
        .optional()?
        .flatten())
}
