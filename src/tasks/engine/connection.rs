//! The engine loop's own database connection, and the backoff between tries of a statement
//! that failed. One connection does all the loop's bookkeeping (claims, outcomes, leases,
//! rescues, schedules); programs use the pool. Any error drops it: it may be broken, and a
//! new one is cheap next to an outage.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, QueryResult, connection::SimpleConnection};

use crate::db::Statements;

/// Backoff between tries of a statement that failed because the database is away.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) struct LoopConnection {
    url: String,
    statements: Statements,
    /// A statement stuck this long (behind a lock, on a hung server) is cancelled.
    statement_limit: Duration,
    conn: Option<PgConnection>,
}

impl LoopConnection {
    /// `lease` bounds how long one statement may take: a statement stuck behind a lock (a
    /// transaction left open in psql) or on a hung server must not freeze the loop past a
    /// lease, or its heartbeats would stop and other nodes would rescue everything it holds.
    pub(super) fn new(url: String, statements: Statements, lease: Duration) -> LoopConnection {
        LoopConnection {
            url,
            statements,
            statement_limit: (lease / 3).max(Duration::from_secs(1)),
            conn: None,
        }
    }

    /// Runs a statement, opening the connection if needed.
    pub(super) fn with<T>(
        &mut self,
        work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let url = crate::db::with_connect_timeout(&self.url, 5);
                let mut conn = PgConnection::establish(&url)?;
                self.statements.apply(&mut conn);
                // Through a transaction pooler a session setting would land on some other
                // client, so only on a direct connection.
                if self.statements == Statements::Prepared {
                    let limit = self.statement_limit.as_millis();
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {limit}; SET lock_timeout = {limit}"
                    ))?;
                }
                self.conn.insert(conn)
            }
        };
        work(conn).map_err(|err| {
            self.conn = None;
            err.into()
        })
    }

    /// Drops the connection (the next statement opens a new one).
    pub(super) fn reset(&mut self) {
        self.conn = None;
    }
}

/// Backoff for a statement that failed.
#[derive(Default)]
pub(super) struct Retry {
    not_before: Option<Instant>,
    delay: Duration,
}

impl Retry {
    pub(super) fn ready(&self) -> bool {
        self.not_before.is_none_or(|at| Instant::now() >= at)
    }

    /// When the next try may be, while backing off.
    pub(super) fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    pub(super) fn failed(&mut self) -> Duration {
        self.delay = (self.delay * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        self.not_before = Some(Instant::now() + self.delay);
        self.delay
    }

    pub(super) fn succeeded(&mut self) {
        *self = Retry::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100_ms_up_to_5_s_and_resets_on_success() {
        let mut retry = Retry::default();
        assert!(retry.ready());
        let delays: Vec<Duration> = (0..8).map(|_| retry.failed()).collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[5], Duration::from_millis(3200));
        assert_eq!(delays[6], MAX_BACKOFF);
        assert_eq!(delays[7], MAX_BACKOFF);
        assert!(!retry.ready(), "waits out its delay");
        retry.succeeded();
        assert!(retry.ready() && retry.not_before().is_none());
    }
}
