//! The successes' own connection. On a busy node the loop's connection was the bottleneck:
//! one server process, so one core, recorded every success and claimed every task one
//! statement after the other, while the machine's other core idled. The writer records a
//! batch of successes (`task_finish`) on a connection and thread of its own while the loop
//! claims on its connection, so the two statements, and their commits' WAL flushes, overlap.
//!
//! One batch at a time: the [`Completer`](super::completer::Completer) hands it one, keeps it
//! as in flight (a reported outcome, not yet written) and takes the reply as an event of the
//! loop. A failed batch comes back whole, to be written again after the backoff. The loop
//! still writes everything else itself. A limited program's slot does not wait for the
//! writer: the loop's claim names the successes not recorded yet, and their slots are free.

use std::{
    collections::HashSet,
    panic::AssertUnwindSafe,
    sync::mpsc as std_mpsc,
    thread::{self, JoinHandle},
};

use tokio::sync::mpsc;

use super::{
    connection::LoopConnection,
    store::{self, AttemptKey, Success},
};

/// A batch written, or not.
pub(super) struct Reply {
    pub batch: Vec<Success>,
    /// The attempts recorded (those still this node's); an error writes nothing.
    pub recorded: anyhow::Result<HashSet<AttemptKey>>,
}

pub(super) struct Writer {
    batches: Option<std_mpsc::Sender<Vec<Success>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread; replies come on the returned channel.
    pub(super) fn start(
        worker: String,
        mut db: LoopConnection,
    ) -> std::io::Result<(Writer, mpsc::UnboundedReceiver<Reply>)> {
        let (batches, to_write) = std_mpsc::channel::<Vec<Success>>();
        let (replies, replies_rx) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("task-outcomes".into())
            .spawn(move || {
                // Ends when the loop drops its sender (or stops listening).
                for batch in to_write {
                    // A batch always comes back: one lost here would stay "running" and held
                    // (its leases renewed) for as long as the node lives.
                    let recorded = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        db.with(|conn| store::finish(conn, &worker, &batch))
                    }))
                    .unwrap_or_else(|_| {
                        // The connection may be mid-statement: start a new one.
                        db.reset();
                        Err(anyhow::anyhow!("recording the successes panicked"))
                    });
                    if replies.send(Reply { batch, recorded }).is_err() {
                        return;
                    }
                }
            })?;
        Ok((
            Writer {
                batches: Some(batches),
                thread: Some(thread),
            },
            replies_rx,
        ))
    }

    /// Hands a batch to the thread; gives it back if the thread is gone.
    pub(super) fn send(&self, batch: Vec<Success>) -> Result<(), Vec<Success>> {
        match &self.batches {
            Some(batches) => batches.send(batch).map_err(|returned| returned.0),
            None => Err(batch),
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
