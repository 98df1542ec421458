//! The outcome writer: outcomes the executor reported, written in as few statements as it
//! can (every success of a batch in one `task_finish`, the rest one by one). On a running node
//! the successes go to a free [`Writer`], each on a connection of its own, while the loop
//! claims on its connection; the claim is told which successes are not recorded yet
//! ([`Completer::ended`]): their attempts have ended, so they hold no slot of a limited
//! program. A writer may also claim tasks its successes release: the completer keeps room for
//! them while it writes ([`Completer::claiming`]). While the database is away the outcomes are
//! kept and tried again with backoff, so a task that completed is not run again.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use crate::tasks::{
    engine::{
        connection::{LoopConnection, Retry},
        job::Outcome,
        store::{self, AttemptKey, ClaimedTask, Success},
        writer::{Batch, Reply, Writer},
    },
    status::TaskStatus,
};

pub(super) struct Completer {
    worker: String,
    retry_base_ms: i64,
    /// Outcomes reported and not yet written.
    unwritten: Vec<(AttemptKey, Outcome)>,
    /// When the first of them came in (stale once `unwritten` is empty).
    first_in: Option<Instant>,
    /// The batches the writers are recording (reported, not yet written).
    in_flight: Vec<InFlight>,
    retry: Retry,
}

/// A batch a writer is recording.
struct InFlight {
    /// Which writer.
    writer: usize,
    keys: Vec<AttemptKey>,
    /// Those of them claimed through a program's limit.
    limited: Vec<AttemptKey>,
    /// How many of the tasks its successes release the writer may claim (room the node keeps
    /// for them until its reply).
    claiming: usize,
}

/// A writer's reply taken: the attempts settled, the tasks it claimed.
pub(super) struct Written {
    pub settled: Vec<AttemptKey>,
    pub claimed: Vec<ClaimedTask>,
}

impl Completer {
    pub(super) fn new(worker: String, retry_base: Duration) -> Completer {
        Completer {
            worker,
            retry_base_ms: retry_base.as_millis().min(i64::MAX as u128) as i64,
            unwritten: Vec::new(),
            first_in: None,
            in_flight: Vec::new(),
            retry: Retry::default(),
        }
    }

    pub(super) fn push(&mut self, key: AttemptKey, outcome: Outcome) {
        if self.unwritten.is_empty() {
            self.first_in = Some(Instant::now());
        }
        self.unwritten.push((key, outcome));
    }

    /// When the oldest outcome not yet written came in (None when nothing waits).
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        self.first_in.filter(|_| !self.unwritten.is_empty())
    }

    pub(super) fn len(&self) -> usize {
        self.unwritten.len() + self.in_flight.iter().map(|b| b.keys.len()).sum::<usize>()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.unwritten.is_empty() && self.in_flight.is_empty()
    }

    pub(super) fn has(&self, key: &AttemptKey) -> bool {
        self.unwritten.iter().any(|(k, _)| k == key)
            || self.in_flight.iter().any(|b| b.keys.contains(key))
    }

    /// How many tasks the writers may claim with the batches they are recording.
    pub(super) fn claiming(&self) -> usize {
        self.in_flight.iter().map(|b| b.claiming).sum()
    }

    /// The successes the writers are recording now.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = &AttemptKey> {
        self.in_flight.iter().flat_map(|b| &b.keys)
    }

    /// The successes of limited programs' tasks reported and not yet recorded (with the
    /// writer, or waiting for it): their attempts have ended, so the claim does not count
    /// them against their program's limit.
    pub(super) fn ended(&self) -> Vec<AttemptKey> {
        let waiting = self
            .unwritten
            .iter()
            .filter_map(|(key, outcome)| match outcome {
                Outcome::Done(success) if success.limited => Some(*key),
                _ => None,
            });
        self.in_flight
            .iter()
            .flat_map(|b| b.limited.iter().copied())
            .chain(waiting)
            .collect()
    }

    /// Whether [`Completer::write`] would write something now.
    pub(super) fn ready(&self) -> bool {
        !self.unwritten.is_empty() && self.retry.ready()
    }

    /// When to try again after a failed write (None when nothing waits).
    pub(super) fn next_try(&self) -> Option<Instant> {
        if self.unwritten.is_empty() {
            None
        } else {
            self.retry.not_before()
        }
    }

    /// The database answers again: write what waited for it at once.
    pub(super) fn database_is_back(&mut self) {
        self.retry.succeeded();
    }

    /// Drops the outcomes of attempts this node lost (rescued elsewhere); returns their keys.
    /// (Those in flight are settled by their writer's reply: the database refuses them.)
    pub(super) fn forget(&mut self, lost: &[AttemptKey]) -> Vec<AttemptKey> {
        let mut forgotten = Vec::new();
        self.unwritten.retain(|(key, _)| {
            let lost_here = lost.contains(key);
            if lost_here {
                forgotten.push(*key);
            }
            !lost_here
        });
        forgotten
    }

    /// Writes the outcomes that are in, unless backing off; returns the attempts now settled
    /// (written, or no longer this node's: the database refuses those anyway). With a
    /// `writers`, the successes go to one that is free (when none is, they wait for a
    /// reply), which may claim up to `room` of the tasks they release; without any (at
    /// shutdown) the loop records them too, and claims nothing.
    pub(super) fn write(
        &mut self,
        db: &mut LoopConnection,
        writers: &[Writer],
        room: usize,
    ) -> Vec<AttemptKey> {
        let mut settled = Vec::new();
        if !self.ready() {
            return settled;
        }
        let worker = self.worker.clone();
        let mut successes = Vec::new();
        let mut interrupted = Vec::new();
        let mut others = Vec::new();
        for (key, outcome) in std::mem::take(&mut self.unwritten) {
            match outcome {
                Outcome::Done(success) => successes.push(success),
                Outcome::Interrupted => interrupted.push(key),
                outcome => others.push((key, outcome)),
            }
        }
        let mut failure = None;
        if !writers.is_empty() && !successes.is_empty() {
            successes = self.hand_over(writers, successes, room);
        }
        if !successes.is_empty() {
            let started = Instant::now();
            let result = db.with(|conn| store::finish(conn, &worker, &successes));
            tracing::debug!(count = successes.len(), took = ?started.elapsed(), "recorded successes");
            match result {
                Ok(recorded) => settled.append(&mut settle(&successes, &recorded)),
                Err(err) => {
                    failure = Some(err);
                    self.unwritten
                        .extend(successes.into_iter().map(|s| (s.key, Outcome::Done(s))));
                }
            }
        }
        if !interrupted.is_empty() && failure.is_none() {
            match db.with(|conn| store::requeue_interrupted(conn, &worker, &interrupted)) {
                Ok(_) => settled.append(&mut interrupted),
                Err(err) => failure = Some(err),
            }
        }
        self.unwritten.extend(
            interrupted
                .into_iter()
                .map(|key| (key, Outcome::Interrupted)),
        );
        for (key, outcome) in others {
            if failure.is_some() {
                self.unwritten.push((key, outcome));
                continue;
            }
            match db.with(|conn| self.write_one(conn, key, &outcome)) {
                Ok(()) => settled.push(key),
                Err(err) => {
                    failure = Some(err);
                    self.unwritten.push((key, outcome));
                }
            }
        }
        match failure {
            None => self.retry.succeeded(),
            Some(err) => {
                let delay = self.retry.failed();
                tracing::warn!(
                    outcomes = self.unwritten.len(),
                    "recording task outcomes: {err:#}; keeping them and trying again in {delay:?}"
                );
            }
        }
        settled
    }

    /// Gives `successes` to a writer that is free, to claim up to `room` of the tasks they
    /// release (no more than one per success that has dependents: room kept for more would
    /// keep the loop from claiming); returns those no writer took.
    fn hand_over(
        &mut self,
        writers: &[Writer],
        successes: Vec<Success>,
        room: usize,
    ) -> Vec<Success> {
        let free =
            (0..writers.len()).find(|index| self.in_flight.iter().all(|b| b.writer != *index));
        let Some(index) = free else {
            self.unwritten
                .extend(successes.into_iter().map(|s| (s.key, Outcome::Done(s))));
            return Vec::new();
        };
        let keys: Vec<AttemptKey> = successes.iter().map(|success| success.key).collect();
        let limited: Vec<AttemptKey> = successes
            .iter()
            .filter(|success| success.limited)
            .map(|success| success.key)
            .collect();
        let releasing = successes.iter().filter(|s| s.has_dependents).count();
        let claim_max = room.min(releasing);
        match writers[index].send(Batch {
            successes,
            claim_max,
        }) {
            Ok(()) => {
                self.in_flight.push(InFlight {
                    writer: index,
                    keys,
                    limited,
                    claiming: claim_max,
                });
                Vec::new()
            }
            // The writer's thread is gone: the loop writes them.
            Err(successes) => successes,
        }
    }

    /// A writer's reply: the attempts it settled and the tasks it claimed (none when its
    /// statement failed: the batch waits out the backoff, as the loop's own writes do).
    pub(super) fn written(&mut self, reply: Reply) -> Written {
        self.in_flight.retain(|b| b.writer != reply.writer);
        match reply.finished {
            Ok(finished) => {
                self.retry.succeeded();
                Written {
                    settled: settle(&reply.batch, &finished.recorded),
                    claimed: finished.claimed,
                }
            }
            Err(err) => {
                let delay = self.retry.failed();
                let count = reply.batch.len();
                self.unwritten.extend(
                    reply
                        .batch
                        .into_iter()
                        .map(|success| (success.key, Outcome::Done(success))),
                );
                tracing::warn!(
                    outcomes = count,
                    "recording task successes: {err:#}; keeping them and trying again in {delay:?}"
                );
                Written {
                    settled: Vec::new(),
                    claimed: Vec::new(),
                }
            }
        }
    }

    /// A failure, a lost connection or a cancellation (successes and interruptions go in
    /// batches).
    fn write_one(
        &self,
        conn: &mut diesel::PgConnection,
        key: AttemptKey,
        outcome: &Outcome,
    ) -> diesel::QueryResult<()> {
        let (worker, retry_base_ms) = (self.worker.as_str(), self.retry_base_ms);
        match outcome {
            Outcome::Failed { error, retryable } => {
                let status = store::fail(conn, worker, key, error, *retryable, retry_base_ms)?;
                log_ended(key, status, "task attempt failed", error);
            }
            Outcome::ConnectionLost { error } => {
                let status = store::connection_lost(conn, worker, key, error, retry_base_ms)?;
                log_ended(
                    key,
                    status,
                    "task attempt lost its database connection",
                    error,
                );
            }
            Outcome::Cancelled => {
                store::cancelled(conn, worker, key)?;
            }
            Outcome::Snoozed { wait } => {
                store::snooze(conn, worker, key, *wait)?;
            }
            // Written in batches, or nothing to write.
            Outcome::Done(_) | Outcome::Recorded | Outcome::Interrupted | Outcome::Lost => {}
        }
        Ok(())
    }
}

/// Every success of a batch written is settled: recorded, or no longer this node's.
fn settle(batch: &[Success], recorded: &HashSet<AttemptKey>) -> Vec<AttemptKey> {
    for success in batch {
        if !recorded.contains(&success.key) {
            tracing::warn!(
                task = %success.key.task_id,
                attempt = success.key.attempt,
                "finished, but the attempt is no longer this node's: not recorded"
            );
        }
    }
    batch.iter().map(|success| success.key).collect()
}

fn log_ended(key: AttemptKey, status: Option<TaskStatus>, what: &str, error: &str) {
    tracing::warn!(
        task = %key.task_id,
        attempt = key.attempt,
        status = status.map_or("not held", TaskStatus::as_str),
        "{what}: {error}"
    );
}
