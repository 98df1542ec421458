//! Firing program schedules: the one engine statement that queues tasks (as the "schedule"
//! actor), under a row lock so that one node fires a given slot, once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::{
    audit::{self, Actor, AuditContext},
    db::schema::programs,
    ids::{ProgramId, TaskId},
    tasks::{ops, schedule::Schedule},
};

/// Queues one task for every program whose schedule is due, and moves its next firing on.
/// The row lock (`SKIP LOCKED`) means one node fires a given slot, once; the others skip it.
pub fn fire_due_schedules(conn: &mut PgConnection) -> QueryResult<Vec<TaskId>> {
    conn.transaction(|conn| {
        // The tasks (and their audit events) are queued by "schedule".
        audit::act_as(conn, &AuditContext::new(Actor::Schedule, None))?;
        type Due = (ProgramId, String, Option<String>, Option<DateTime<Utc>>);
        let due: Vec<Due> = programs::table
            .filter(programs::enabled.eq(true))
            .filter(programs::schedule.is_not_null())
            .filter(programs::next_run_at.le(diesel::dsl::now))
            .select((
                programs::id,
                programs::name,
                programs::schedule,
                programs::next_run_at,
            ))
            // Not a key update: tasks' foreign key checks (each task queued or archived
            // takes a KEY SHARE lock on its program) need not wait for this.
            .for_no_key_update()
            .skip_locked()
            .load(conn)?;
        let mut queued = Vec::new();
        for (id, name, schedule, slot) in due {
            let now = Utc::now();
            let schedule = schedule
                .as_deref()
                .and_then(|text| Schedule::parse(text).ok());
            // Keep the cadence from the slot; after downtime, fire once and carry on from now.
            let next = schedule.and_then(|schedule| {
                schedule
                    .next_after(slot.unwrap_or(now))
                    .filter(|next| *next > now)
                    .or_else(|| schedule.next_after(now))
            });
            diesel::update(programs::table.find(id))
                .set(programs::next_run_at.eq(next))
                .execute(conn)?;
            // A savepoint: a program whose defaults no longer validate must not stop the others.
            match conn.transaction(|conn| ops::run_program(conn, &name, None)) {
                Ok(task_id) => queued.push(task_id),
                Err(err) => tracing::warn!(program = %name, "scheduled run refused: {err}"),
            }
        }
        Ok(queued)
    })
}
