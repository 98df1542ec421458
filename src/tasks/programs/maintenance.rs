//! Clean-ups that run on a schedule. Both are transactional: the deletions and the task's
//! outcome commit together, so a clean-up happens exactly once.

use std::time::Duration;

use diesel::prelude::*;

use crate::{
    db::schema::tasks,
    domain::accounts::sessions::{self, SessionPolicy},
    tasks::{
        TaskOutput,
        program::{ParamSpec, ProgramFn, ProgramFunction},
    },
};

pub fn purge_expired_sessions(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "purge_expired_sessions",
        description: "Deletes sessions past their lifetime, and idle ones when idle_minutes is given \
                      (each node also purges by its configured idle timeout).",
        params: vec![
            ParamSpec::int("idle_minutes", "Also delete sessions unused this long.")
                .range(1, 525_600),
        ],
        timeout,
        max_attempts: 3,
        default_schedule: Some("every 15 minutes"),
        run: ProgramFn::Transactional(|ctx, conn| {
            let deleted = match ctx.int("idle_minutes") {
                Some(minutes) => {
                    let idle = Duration::from_secs(minutes as u64 * 60);
                    let policy = SessionPolicy {
                        // The lifetime is in each row's expires_at; purge_expired checks both.
                        lifetime: idle,
                        idle_timeout: idle,
                    };
                    sessions::purge_expired(conn, &policy)?
                }
                None => sessions::purge_past_lifetime(conn)?,
            };
            Ok(TaskOutput::Text(format!(
                "Deleted {deleted} expired session{}.",
                plural(deleted)
            )))
        }),
    }
}

pub fn prune_tasks(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "prune_tasks",
        description: "Deletes ended tasks (finished, error, cancelled) older than a given age.",
        params: vec![
            ParamSpec::int(
                "older_than_days",
                "Age of the tasks to delete, by end time.",
            )
            .default(30)
            .range(1, 3650),
        ],
        timeout,
        max_attempts: 3,
        default_schedule: Some("0 3 * * *"),
        run: ProgramFn::Transactional(|ctx, conn| {
            let days = ctx.int("older_than_days").unwrap_or(30);
            let cutoff = chrono::Utc::now() - chrono::Duration::days(days);
            let deleted = diesel::delete(
                tasks::table
                    .filter(tasks::status.eq_any(["finished", "error", "cancelled"]))
                    .filter(tasks::end_time.lt(cutoff))
                    .filter(tasks::id.ne(ctx.task_id())),
            )
            .execute(conn)?;
            Ok(TaskOutput::Text(format!(
                "Deleted {deleted} task{} that ended more than {days} days ago.",
                plural(deleted)
            )))
        }),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
