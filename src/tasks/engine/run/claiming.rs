//! When the loop claims, how much, and what it does with what a claim got: keep every
//! executor thread busy and the local queue about [`LOCAL_QUEUE_WORK`] deep, move the cursor
//! through the plain queue, and find out when to look again once the queue is drained.

use std::time::{Duration, Instant};

use super::{Engine, LIMITED_RECHECK, LOCAL_QUEUE_WORK, MAX_LOCAL_QUEUE};
use crate::tasks::engine::store::{self, ClaimRequest, Claimed};

impl Engine {
    pub(super) fn local_queue_capacity(&self) -> usize {
        local_queue_capacity(self.config.concurrency, self.average_run)
    }

    pub(super) fn should_claim(&self) -> bool {
        !self.shutting_down
            && self.queue_may_have_work
            && self.claim_retry.ready()
            && (self.urgent
                || wants_more(
                    self.taken(),
                    self.config.concurrency,
                    self.local_queue_capacity(),
                ))
    }

    /// What the next claim asks for, and whether it is an urgent one (taken out of turn for a
    /// task queued above 0 while the local queue is full).
    pub(super) fn claim_request(&mut self) -> (ClaimRequest, bool) {
        let refill = wants_more(
            self.taken(),
            self.config.concurrency,
            self.local_queue_capacity(),
        );
        let urgent = std::mem::take(&mut self.urgent) && !refill;
        let limit = if urgent {
            // Just past the local queue: the claim takes the highest priorities first.
            self.config.concurrency
        } else {
            self.room().max(1)
        };
        // A limited program no other node runs: up to a local queue's worth of its tasks, of
        // which the executor starts at most its max_running at once. Its throughput is then
        // not one claim round trip per max_running tasks (8 programs x max_running 4 on one
        // node: 17-19k tasks/s -> 35k).
        let request = ClaimRequest::new(limit)
            .after(self.cursor)
            .looking_above(std::mem::take(&mut self.look_above))
            .holding(self.local_queue_capacity());
        (request, urgent)
    }

    /// Takes what a claim got: the tasks go to the executor; the cursor moves on.
    pub(super) fn claimed(
        &mut self,
        request: ClaimRequest,
        urgent: bool,
        claimed: anyhow::Result<Claimed>,
    ) {
        let (tasks, last) = match claimed {
            Ok(claimed) => {
                self.claim_retry.succeeded();
                claimed
            }
            Err(err) => {
                self.look_above |= request.look_above;
                let delay = self.claim_retry.failed();
                tracing::warn!("claiming tasks: {err:#}; trying again in {delay:?}");
                return;
            }
        };
        let (want, got) = (request.limit, tasks.len());
        tracing::debug!(want, got, "claimed");
        let mut limited = false;
        for task in tasks {
            limited |= task.limited;
            self.start(task);
        }
        if urgent {
            // Taken out of turn: where the queue's claims stand is unchanged.
            return;
        }
        if got == want {
            self.cursor = last;
            return;
        }
        // Short. Nothing at all after the cursor while something woke us: what was queued
        // sits before it (a transaction that committed late), so look from the beginning.
        if got == 0 && self.cursor.is_some() {
            self.cursor = None;
            return;
        }
        // Otherwise the queue is drained. The cursor stays where the claims got to: new tasks
        // queue after it (tasks a chain releases, say), and starting over from the beginning
        // would wade through the entries of every task claimed since the last vacuum. (The
        // fallback poll still starts from the beginning now and then.)
        self.cursor = last.or(self.cursor);
        self.queue_may_have_work = false;
        if limited {
            // A limited program's tasks took the slots there were: more of them are probably
            // waiting for the next slot to free. Its outcome claims again (above); asking the
            // queue what waits would cost a round trip per slot. A claim that finds none asks.
            self.limited_waiting = true;
            self.next_due = Some(Instant::now() + LIMITED_RECHECK);
            return;
        }
        self.find_next_due();
    }

    /// A retry waiting out its backoff, or tasks waiting for their program's limit: wake
    /// when one may be claimable.
    pub(super) fn find_next_due(&mut self) {
        match self.db.with(store::next_due) {
            Ok(next) => {
                self.limited_waiting = next.limited_waiting;
                // Due already but not claimable (locked by another transaction, or clocks
                // apart): look again in a second rather than spin.
                let backoff = next.due_at.map(|due| {
                    (due - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::from_secs(1))
                        .max(Duration::from_millis(20))
                });
                let limited = next.limited_waiting.then_some(LIMITED_RECHECK);
                self.next_due = [backoff, limited]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|wait| Instant::now() + wait);
            }
            Err(err) => tracing::warn!("looking for due tasks: {err:#}"),
        }
    }
}

/// How many claimed tasks may wait in the local queue: about `LOCAL_QUEUE_WORK` of work per
/// thread at the average run time seen so far (one per thread before anything ran).
pub(super) fn local_queue_capacity(concurrency: usize, average_run_seconds: Option<f64>) -> usize {
    match average_run_seconds {
        None => concurrency,
        Some(seconds) => {
            let fits = LOCAL_QUEUE_WORK.as_secs_f64() * concurrency as f64 / seconds.max(1e-7);
            (fits as usize).clamp(1, MAX_LOCAL_QUEUE)
        }
    }
}

/// Whether to claim now, holding `unfinished` attempts: never leave a thread idle; beyond
/// that, refill the local queue in batches (once it is half empty).
pub(super) fn wants_more(unfinished: usize, concurrency: usize, capacity: usize) -> bool {
    unfinished < concurrency || unfinished * 2 <= concurrency + capacity
}
