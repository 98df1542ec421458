//! The archive: tasks that ended a moment ago move from `tasks_live` (the engine's partition
//! of `tasks`) to `tasks_archive`, so that the engine's table and its indexes stay the size of
//! the queue however many ended tasks are kept (migration `tasks_archive` says why). Readers
//! never notice: both are `tasks`. Every node runs this; the SQL function lets one node at a
//! time move rows, the others' calls return at once.

use std::time::Duration;

use actix_web::web;
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Integer, Interval},
};

use crate::db::PgPool;

/// How often a node looks for tasks to move.
const INTERVAL: Duration = Duration::from_secs(1);
/// Rows moved by one statement: large enough that a busy queue's endings are moved in a
/// few statements a second, small enough that one statement's locks are held briefly.
const BATCH: i32 = 5_000;
/// Statements per look, so one look ends even if tasks end faster than they are moved.
const BATCHES_PER_LOOK: usize = 20;
/// How long a task stays live after it ended: the engine's and the staff's actions on a
/// task that just ended (its dependents, its batch, a retry) find it where they left it.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(QueryableByName)]
struct Moved {
    #[diesel(sql_type = Integer)]
    moved: i32,
}

/// Moves up to `max_rows` tasks that ended more than `settle` ago into the archive; how many
/// it moved (0 when another node is moving them now).
pub fn archive_ended(
    conn: &mut PgConnection,
    max_rows: i32,
    settle: Duration,
) -> QueryResult<usize> {
    let settle = diesel::pg::data_types::PgInterval::from_microseconds(
        i64::try_from(settle.as_micros()).unwrap_or(i64::MAX),
    );
    Ok(sql_query("SELECT task_archive($1, $2) AS moved")
        .bind::<Integer, _>(max_rows)
        .bind::<Interval, _>(settle)
        .get_result::<Moved>(conn)?
        .moved as usize)
}

/// Runs until the future is dropped: each second, moves what ended since (in batches).
pub async fn run(pool: PgPool) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let pool = pool.clone();
        let moved = web::block(move || -> anyhow::Result<usize> {
            let mut conn = pool.get()?;
            let mut total = 0;
            for _ in 0..BATCHES_PER_LOOK {
                let moved = archive_ended(&mut conn, BATCH, SETTLE)?;
                total += moved;
                if moved < BATCH as usize {
                    break;
                }
            }
            Ok(total)
        })
        .await;
        match moved {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!("archiving ended tasks: {err:#}"),
            Err(err) => tracing::warn!("archiving ended tasks: {err}"),
        }
    }
}
