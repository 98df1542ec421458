//! The archive: tasks that ended a moment ago move from `tasks_live` (the engine's partition
//! of `tasks`) to `tasks_archive`, so that the engine's table and its indexes stay the size of
//! the queue however many ended tasks are kept (migration `tasks_archive` says why). Readers
//! never notice: both are `tasks`. Every node runs this; the SQL function lets one node at a
//! time move rows, the others' calls return at once.
//!
//! The live partition is also vacuumed from here when its dead rows pile up: each task leaves
//! three dead versions behind, and autovacuum looks at a database once a minute, by which time
//! a busy queue has left millions.

use std::time::{Duration, Instant};

use actix_web::web;
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error},
    sql_query,
    sql_types::{BigInt, Bool, Integer, Interval},
};

use crate::db::PgPool;

/// How often a node looks for tasks to move.
const INTERVAL: Duration = Duration::from_secs(1);
/// Rows moved by one statement: large enough that a busy queue's endings are moved in a
/// few statements a second, small enough that one statement's locks are held briefly.
const BATCH: i32 = 5_000;
/// Statements per look, so one look ends even if tasks end faster than they are moved.
const BATCHES_PER_LOOK: usize = 20;
/// How long a task stays live after it ended: the engine's and the staff's actions on a task
/// that just ended (its dependents, its batch, a retry) find it where they left it.
const SETTLE: Duration = Duration::from_secs(5);
/// How often the tasks still holding a unique key are looked at (they wait for their
/// `unique_for`, often hours; walking past them every second would cost more than it gains).
const KEYS_EVERY: Duration = Duration::from_secs(60);
/// The live partition is vacuumed when its dead rows are more than this many plus a fifth of
/// its live ones (autovacuum's own rule, asked every second instead of every minute).
const VACUUM_BASE: i64 = 20_000;
/// A failure that repeats is logged this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(QueryableByName)]
struct Moved {
    #[diesel(sql_type = Integer)]
    moved: i32,
}

/// Moves up to `max_rows` tasks that ended more than `settle` ago into the archive; how many
/// it moved (0 when another node is moving them now). `holding_keys`: look at the tasks that
/// still hold a unique key instead, moving those whose `unique_for` is over.
pub fn archive_ended(
    conn: &mut PgConnection,
    max_rows: i32,
    settle: Duration,
    holding_keys: bool,
) -> QueryResult<usize> {
    let settle = diesel::pg::data_types::PgInterval::from_microseconds(
        i64::try_from(settle.as_micros()).unwrap_or(i64::MAX),
    );
    Ok(sql_query("SELECT task_archive($1, $2, $3) AS moved")
        .bind::<Integer, _>(max_rows)
        .bind::<Interval, _>(settle)
        .bind::<Bool, _>(holding_keys)
        .get_result::<Moved>(conn)?
        .moved as usize)
}

/// Runs `write` in a savepoint, and again (up to five times) when it met a task the archive
/// moved at that moment: PostgreSQL refuses to update or lock a row another transaction moved
/// to another partition (a serialization failure), and a fresh statement finds it where it
/// is now.
pub fn retry_when_moved<T>(
    conn: &mut PgConnection,
    mut write: impl FnMut(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    for _ in 0..5 {
        match conn.transaction(&mut write) {
            Err(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => continue,
            done => return done,
        }
    }
    conn.transaction(write)
}

#[derive(QueryableByName)]
struct DeadRows {
    #[diesel(sql_type = BigInt)]
    dead: i64,
    #[diesel(sql_type = BigInt)]
    live: i64,
}

/// Vacuums `tasks_live` if its dead rows call for it; true when it did. `SKIP_LOCKED`: when
/// another node or autovacuum is at it already, nothing is done.
pub fn vacuum_live_if_due(conn: &mut PgConnection) -> QueryResult<bool> {
    let rows = sql_query(
        "SELECT n_dead_tup AS dead, n_live_tup AS live FROM pg_stat_user_tables \
          WHERE relid = 'tasks_live'::regclass",
    )
    .get_result::<DeadRows>(conn)?;
    if rows.dead <= VACUUM_BASE + rows.live / 5 {
        return Ok(false);
    }
    sql_query("VACUUM (SKIP_LOCKED) tasks_live").execute(conn)?;
    Ok(true)
}

/// One look: moves what ended since the last (in batches), and the tasks whose key is let go
/// when `holding_keys`.
fn look(conn: &mut PgConnection, holding_keys: bool) -> QueryResult<usize> {
    let mut total = 0;
    for _ in 0..BATCHES_PER_LOOK {
        let moved = archive_ended(conn, BATCH, SETTLE, false)?;
        total += moved;
        if moved < BATCH as usize {
            break;
        }
    }
    if holding_keys {
        total += archive_ended(conn, BATCH, SETTLE, true)?;
    }
    Ok(total)
}

/// Runs until the future is dropped: each second, one [`look`]; beside it, the vacuum of the
/// live partition when due. Apart, because a vacuum of a large `tasks_live` takes many
/// seconds, and moves that waited for it left ended tasks to pile up there meanwhile (at
/// 32,000 tasks a second the partition grew by about 350 MiB a minute).
pub async fn run(pool: PgPool) {
    let mut keys_looked_at = Instant::now();
    let moves = each_second(pool.clone(), "archiving ended tasks", move || {
        let holding_keys = keys_looked_at.elapsed() >= KEYS_EVERY;
        if holding_keys {
            keys_looked_at = Instant::now();
        }
        move |conn: &mut PgConnection| look(conn, holding_keys)
    });
    let vacuum = each_second(pool, "vacuuming tasks_live", || vacuum_live_if_due);
    tokio::join!(moves, vacuum);
}

/// Each second, the work `next` gives, on a pooled connection off the async threads. A
/// failure that repeats (the database away, no right to vacuum) is logged once in
/// [`WARN_EVERY`], not every second.
async fn each_second<T, Work>(pool: PgPool, what: &'static str, mut next: impl FnMut() -> Work)
where
    T: Send + 'static,
    Work: FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
{
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned_at: Option<Instant> = None;
    loop {
        ticks.tick().await;
        let work = next();
        let pool = pool.clone();
        let done = web::block(move || -> anyhow::Result<T> { Ok(work(&mut *pool.get()?)?) }).await;
        let failed = match done {
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => format!("{err:#}"),
            Err(err) => err.to_string(),
        };
        if warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            warned_at = Some(Instant::now());
            tracing::warn!("{what}: {failed}");
        }
    }
}
