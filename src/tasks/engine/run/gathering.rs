//! When the loop holds outcomes back a moment before claiming. A node bound by limited
//! programs has every slot it could get running; each slot frees when its attempt reports,
//! and a claim refills the free ones. Claiming as soon as the first outcomes came in, a claim
//! refilled about 20 of 8 x 4 slots: the rest reported while it was under way and went in the
//! next one, so the slots split into two groups taking turns, each claim paying its fixed
//! cost for part of the slots. Gathering until every attempt has reported (or
//! [`GATHER_AT_MOST`]) refills them all in one.

use std::time::{Duration, Instant};

use super::Engine;

/// Longest an outcome waits for the others before it is written anyway (a slow program
/// among the quick ones must not hold their slots).
pub(super) const GATHER_AT_MOST: Duration = Duration::from_millis(1);

impl Engine {
    /// Until when to hold the outcomes that are in (None: write them now).
    ///
    /// Only while the node is bound by limited programs and nothing else asks for the
    /// connection: not at shutdown (which writes what it has), not once a wake, the poll, a
    /// due retry or an urgent task wants a claim (that claim writes them in the same round
    /// trip), so the plain path never waits here.
    pub(super) fn gather_until(&self) -> Option<Instant> {
        let limited_bound = self.limited_waiting
            && !self.shutting_down
            && !self.queue_may_have_work
            && !self.urgent
            && !self.look_above;
        gather_until(
            limited_bound,
            self.unfinished(),
            self.completer.waiting_since(),
            Instant::now(),
        )
    }
}

/// The rule: while `limited_bound`, hold outcomes that came in since `first_in` until none of
/// the node's `unreported` attempts (in its local queue or running) is left to report, for at
/// most [`GATHER_AT_MOST`].
pub(super) fn gather_until(
    limited_bound: bool,
    unreported: usize,
    first_in: Option<Instant>,
    now: Instant,
) -> Option<Instant> {
    if !limited_bound || unreported == 0 {
        return None;
    }
    let until = first_in? + GATHER_AT_MOST;
    (now < until).then_some(until)
}
