//! The local queue: claimed tasks waiting for an executor thread, highest priority first
//! (then in the order they were claimed). A high-priority task claimed while the queue holds
//! many low ones starts next, so the local queue never inverts the claim's priority order.
//! (A channel would keep arrival order; a heap under a mutex is cheap at our rates.)
//!
//! A limited program's tasks start at most its `max_running` at once: a node that alone runs
//! a limited program may hold more of its tasks than that (`ClaimRequest::hold`), and the
//! ones beyond it wait aside until one of the program's running tasks ends.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap},
    sync::{Condvar, Mutex},
};

use crate::tasks::engine::{job::Job, store::ClaimedTask};

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
    /// Jobs of limited programs that run their `max_running` here already, by program: one
    /// goes back to the heap each time one of the program's tasks ends.
    aside: HashMap<String, BinaryHeap<Entry>>,
    /// How many of each limited program's tasks run here now.
    running: HashMap<String, usize>,
    next_seq: u64,
    closed: bool,
}

impl State {
    /// The next job a thread may start (a limited program's beyond its `max_running` are set
    /// aside on the way), counted as running.
    fn next(&mut self) -> Option<Job> {
        while let Some(entry) = self.heap.pop() {
            let task = &entry.job.task;
            if let Some(max) = task.max_running {
                let running = self.running.entry(task.program_name.clone()).or_default();
                if *running >= max.max(1) {
                    let program = task.program_name.clone();
                    self.aside.entry(program).or_default().push(entry);
                    continue;
                }
                *running += 1;
            }
            return Some(entry.job);
        }
        None
    }
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
            if let Some(job) = state.next() {
                return Some(job);
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

    /// A job [`pop`](Self::pop) gave out is done with (it ran, or never started): a job of
    /// its program set aside may start now.
    pub(super) fn finished(&self, task: &ClaimedTask) {
        if task.max_running.is_none() {
            return;
        }
        let mut state = self.lock();
        if let Some(running) = state.running.get_mut(&task.program_name) {
            *running = running.saturating_sub(1);
        }
        let Some(entry) = state
            .aside
            .get_mut(&task.program_name)
            .and_then(BinaryHeap::pop)
        else {
            return;
        };
        state.heap.push(entry);
        drop(state);
        self.available.notify_one();
    }

    /// How many jobs wait for one of their program's running tasks to end.
    pub(super) fn set_aside(&self) -> usize {
        self.lock().aside.values().map(BinaryHeap::len).sum()
    }

    /// Takes every job no thread has started.
    pub(super) fn drain(&self) -> Vec<Job> {
        let mut state = self.lock();
        let aside: Vec<Entry> = std::mem::take(&mut state.aside)
            .into_values()
            .flatten()
            .collect();
        state.heap.extend(aside);
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
