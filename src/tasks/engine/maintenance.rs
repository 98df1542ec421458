//! The loop's timed services, each one statement on its timer (River's maintenance
//! services): renewing the leases of what this node holds, rescuing the tasks of lost
//! workers, and firing program schedules. Their rules are the SQL functions `store` calls.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use crate::tasks::engine::{
    connection::LoopConnection,
    job::StopSignal,
    store::{self, AttemptKey},
};

/// What renewing the leases found out about the attempts this node holds.
#[derive(Debug, Default)]
pub(super) struct Leases {
    /// Someone asked to cancel these.
    pub cancel_requested: Vec<AttemptKey>,
    /// Rescued elsewhere: they must stop and write nothing.
    pub lost: Vec<AttemptKey>,
}

/// Renews the lease of every attempt held (telling the database which have started).
pub(super) fn renew_leases<'a>(
    db: &mut LoopConnection,
    worker: &str,
    held: &HashMap<AttemptKey, Arc<StopSignal>>,
    being_recorded: impl Iterator<Item = &'a AttemptKey>,
) -> anyhow::Result<Leases> {
    // Not the successes the writers are recording: they need no lease while it does (a failed
    // write puts them back, and the next heartbeat renews them), and the heartbeat's UPDATE
    // and a writer's, on two connections, would lock their rows in two orders (deadlocks,
    // each a second's wait for both). A heartbeat that finds them ended does not take them
    // for lost either.
    let being_recorded: HashSet<&AttemptKey> = being_recorded.collect();
    let attempts: Vec<(AttemptKey, bool)> = held
        .iter()
        .filter(|(key, _)| !being_recorded.contains(key))
        .map(|(key, signal)| (*key, signal.has_started()))
        .collect();
    let renewed = db.with(|conn| store::heartbeat(conn, worker, &attempts))?;
    let mut lost: Vec<AttemptKey> = attempts
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !renewed.held.contains(key))
        .collect();
    // Not lost: ended by this node (a transactional program recorded its own outcome and its
    // report is on its way).
    if !lost.is_empty()
        && let Ok(ended) = db.with(|conn| store::ended_by(conn, worker, &lost))
    {
        lost.retain(|key| !ended.contains(key));
    }
    Ok(Leases {
        cancel_requested: renewed.cancel_requested,
        lost,
    })
}

/// Re-queues (or ends) the tasks of workers whose leases ran out; true when it did any.
pub(super) fn rescue_lost_workers(db: &mut LoopConnection, lease: Duration) -> bool {
    match db.with(|conn| store::rescue_lost(conn, lease.as_secs_f64())) {
        Ok(0) => false,
        Ok(count) => {
            tracing::warn!(count, "rescued tasks of a lost worker");
            true
        }
        Err(err) => {
            tracing::warn!("checking leases: {err:#}");
            false
        }
    }
}

/// Queues a task for every due schedule; true when it did any.
pub(super) fn fire_schedules(db: &mut LoopConnection) -> bool {
    match db.with(store::fire_due_schedules) {
        Ok(queued) => !queued.is_empty(),
        Err(err) => {
            tracing::warn!("firing schedules: {err:#}");
            false
        }
    }
}
