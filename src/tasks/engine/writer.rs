//! The successes' own connections. On a busy node the loop's connection was the bottleneck:
//! one server process, so one core, recorded every success and claimed every task one
//! statement after the other, while the machine's other core idled. A writer records a batch
//! of successes (`task_finish`) on a connection and thread of its own while the loop claims on
//! its connection, so the statements, and their commits' WAL flushes, overlap. A node has two:
//! a workflow's successes also release and claim its next tasks in the writer's statement, and
//! one writer kept one server core busy while the other idled (chains of 10: 24k tasks/s with
//! one, 27-31k with two).
//!
//! One batch at a time per writer: the [`Completer`](super::completer::Completer) hands a free
//! one a batch, keeps it as in flight (reported outcomes, not yet written) and takes the reply
//! as an event of the loop. A failed batch comes back whole, to be written again after the
//! backoff (`task_finish` locks the tasks that wait for upstreams of other batches in id order
//! first, so two writers releasing them do not deadlock). The loop still writes
//! everything else itself. A limited program's slot does not wait for the writer: the loop's
//! claim names the successes not recorded yet, and their slots are free.
//!
//! The batch also says how many tasks its successes release the node may take: the writer's
//! statement claims those (`task_finish`), and the reply hands them to the loop.

use std::{
    panic::AssertUnwindSafe,
    sync::mpsc as std_mpsc,
    thread::{self, JoinHandle},
};

use tokio::sync::mpsc;

use super::{
    connection::LoopConnection,
    store::{self, Finished, Success},
};

/// Successes to record, and how many of the tasks they release to claim.
pub(super) struct Batch {
    pub successes: Vec<Success>,
    pub claim_max: usize,
}

/// A batch written, or not.
pub(super) struct Reply {
    /// Which writer wrote it (its index among the node's writers).
    pub writer: usize,
    pub batch: Vec<Success>,
    /// The attempts recorded (those still this node's) and the tasks claimed; an error
    /// writes and claims nothing.
    pub finished: anyhow::Result<Finished>,
}

pub(super) struct Writer {
    batches: Option<std_mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts `count` writers, each on its own thread and connection (`connect()`); their
    /// replies come on the returned channel.
    pub(super) fn start_many(
        count: usize,
        worker: &str,
        connect: impl Fn() -> LoopConnection,
    ) -> std::io::Result<(Vec<Writer>, mpsc::UnboundedReceiver<Reply>)> {
        let (replies, replies_rx) = mpsc::unbounded_channel();
        let writers = (0..count)
            .map(|index| Writer::start(index, worker.to_owned(), connect(), replies.clone()))
            .collect::<std::io::Result<_>>()?;
        Ok((writers, replies_rx))
    }

    /// Starts the thread of writer `index`; its replies go to `replies`.
    fn start(
        index: usize,
        worker: String,
        mut db: LoopConnection,
        replies: mpsc::UnboundedSender<Reply>,
    ) -> std::io::Result<Writer> {
        let (batches, to_write) = std_mpsc::channel::<Batch>();
        let thread = thread::Builder::new()
            .name(format!("task-outcomes-{index}"))
            .spawn(move || {
                // Ends when the loop drops its sender (or stops listening).
                for batch in to_write {
                    // A batch always comes back: one lost here would stay "running" and held
                    // (its leases renewed) for as long as the node lives.
                    let Batch {
                        successes,
                        claim_max,
                    } = batch;
                    let finished = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        db.with(|conn| {
                            store::finish_and_claim(conn, &worker, &successes, claim_max)
                        })
                    }))
                    .unwrap_or_else(|_| {
                        // The connection may be mid-statement: start a new one.
                        db.reset();
                        Err(anyhow::anyhow!("recording the successes panicked"))
                    });
                    let reply = Reply {
                        writer: index,
                        batch: successes,
                        finished,
                    };
                    if replies.send(reply).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Writer {
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    /// Hands a batch to the thread; gives its successes back if the thread is gone.
    pub(super) fn send(&self, batch: Batch) -> Result<(), Vec<Success>> {
        match &self.batches {
            Some(batches) => batches.send(batch).map_err(|returned| returned.0.successes),
            None => Err(batch.successes),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
