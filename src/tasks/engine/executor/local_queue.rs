//! The local queue: claimed tasks waiting for an executor thread, highest priority first
//! (then in the order they were claimed). A high-priority task claimed while the queue holds
//! many low ones starts next, so the local queue never inverts the claim's priority order.
//! (A channel would keep arrival order; a heap under a mutex is cheap at our rates.)

use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    sync::{Condvar, Mutex},
};

use crate::tasks::engine::job::Job;

struct Entry {
    priority: i32,
    /// Arrival number: among equal priorities, the earlier one first.
    seq: u64,
    job: Job,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// The heap's greatest comes out first: higher priority, then lower arrival number.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
    closed: bool,
}

#[derive(Default)]
pub(super) struct LocalQueue {
    state: Mutex<State>,
    available: Condvar,
}

impl LocalQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn push(&self, job: Job) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.heap.push(Entry {
            priority: job.task.priority,
            seq,
            job,
        });
        drop(state);
        self.available.notify_one();
    }

    /// The next job, waiting for one; `None` once the queue is closed and empty.
    pub(super) fn pop(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(entry) = state.heap.pop() {
                return Some(entry.job);
            }
            if state.closed {
                return None;
            }
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes every job no thread has started.
    pub(super) fn drain(&self) -> Vec<Job> {
        let mut state = self.lock();
        let mut entries = std::mem::take(&mut state.heap).into_sorted_vec();
        entries.reverse();
        entries.into_iter().map(|entry| entry.job).collect()
    }

    /// No more jobs: threads end once the queue is empty.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.available.notify_all();
    }
}
