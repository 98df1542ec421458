//! Clean-ups that run on a schedule. Both are transactional: the deletions and the task's
//! outcome commit together, so a clean-up happens exactly once.

use std::time::Duration;

use diesel::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{
    db::schema::tasks,
    domain::accounts::sessions::{self, SessionPolicy},
    tasks::{
        TaskOutput, archive,
        params::specs_of,
        program::{ProgramFn, ProgramFunction},
        status::TaskStatus,
    },
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PurgeParams {
    /// Also delete sessions unused this long.
    #[schemars(range(min = 1, max = 525_600))]
    idle_minutes: Option<u64>,
}

pub fn purge_expired_sessions(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "purge_expired_sessions",
        description: "Deletes sessions past their lifetime, and idle ones when idle_minutes is given \
                      (each node also purges by its configured idle timeout).",
        params: specs_of::<PurgeParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: Some("every 15 minutes"),
        default_max_running: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let PurgeParams { idle_minutes } = ctx.params()?;
            let deleted = match idle_minutes {
                Some(minutes) => {
                    let idle = Duration::from_secs(minutes * 60);
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

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PruneParams {
    /// Age of the tasks to delete, by end time.
    #[serde(default = "thirty")]
    #[schemars(range(min = 1, max = 3650))]
    older_than_days: i64,
}

fn thirty() -> i64 {
    30
}

pub fn prune_tasks(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "prune_tasks",
        description: "Deletes ended tasks (finished, error, cancelled) older than a given age.",
        params: specs_of::<PruneParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: Some("0 3 * * *"),
        default_max_running: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let PruneParams {
                older_than_days: days,
            } = ctx.params()?;
            let cutoff = chrono::Utc::now() - chrono::Duration::days(days);
            // From the archive, where every ended task goes within seconds (one still holding
            // a unique key goes when its unique_for is over, and is pruned the day after).
            let deleted = archive::retry_when_moved(conn, |conn| {
                diesel::delete(
                    tasks::table
                        .filter(tasks::archived.eq(true))
                        .filter(tasks::status.eq_any(TaskStatus::ENDED))
                        .filter(tasks::end_time.lt(cutoff))
                        .filter(tasks::id.ne(ctx.task_id())),
                )
                .execute(conn)
            })?;
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
