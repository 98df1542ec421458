//! Wakes the engine when a task is queued: one connection LISTENs on [`CHANNEL`] (a trigger
//! NOTIFYs on every queued task, from Rust or psql) and waits on its socket, so an idle node
//! costs nothing between notifications. On a lost connection it reconnects with backoff and
//! wakes the engine once, to catch up on what was queued meanwhile.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI32, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream};
use tokio::sync::{Notify, watch};
use tokio_postgres::{AsyncMessage, NoTls};

/// The LISTEN/NOTIFY channel (see the `task_engine` migration).
pub const CHANNEL: &str = "bookstore_tasks";

/// What the listener tells the engine loop: something was queued, and the highest priority
/// queued since it last asked (the notification's payload, migration `engine_v3`): claims
/// that moved past that level must look again from the start, and an urgent task should not
/// wait until a full local queue of lower ones has drained.
pub struct Wake {
    pub notify: Notify,
    highest: AtomicI32,
}

/// No priority heard of since the last [`Wake::take_highest`].
const NONE: i32 = i32::MIN;

impl Default for Wake {
    fn default() -> Wake {
        Wake {
            notify: Notify::new(),
            highest: AtomicI32::new(NONE),
        }
    }
}

impl Wake {
    fn queued(&self, payload: &str) {
        // An empty or unreadable payload (a task queued by hand, an older node): as urgent as
        // it gets, so nothing queued is ever passed over.
        let priority = payload.parse().unwrap_or(i32::MAX);
        self.highest.fetch_max(priority, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// The highest priority queued since the last call, if any was.
    pub fn take_highest(&self) -> Option<i32> {
        Some(self.highest.swap(NONE, Ordering::SeqCst)).filter(|&p| p != NONE)
    }
}

/// Runs until `stop` turns true.
pub async fn run(database_url: String, wake: Arc<Wake>, mut stop: watch::Receiver<bool>) {
    let mut backoff = FIRST_BACKOFF;
    while !*stop.borrow() {
        let connected_at = tokio::time::Instant::now();
        let listened = tokio::select! {
            result = listen(&database_url, &wake) => result,
            _ = stop.changed() => return,
        };
        match listened {
            Ok(()) => tracing::warn!("task listener: the server closed the connection"),
            Err(err) => tracing::warn!("task listener: {err}"),
        }
        // A connection that lived a while was fine: start the backoff over. One that ended at
        // once must not be retried in a tight loop.
        if connected_at.elapsed() > Duration::from_secs(10) {
            backoff = FIRST_BACKOFF;
        }
        tracing::info!("task listener: reconnecting in {backoff:?}");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// One connection's life: returns when it ends.
async fn listen(database_url: &str, wake: &Wake) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        tokio::select! {
            result = &mut subscribe, if !subscribed => {
                result?;
                subscribed = true;
                // Whatever was queued before we listened, at any priority.
                wake.queued("");
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(note))) => wake.queued(note.payload()),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            }
        }
    }
}
