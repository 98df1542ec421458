//! The engine's orderly stop: no more claims, what never started goes back at once, running
//! programs get the grace period to finish, then are told to stop and re-queued without
//! spending an attempt; outcomes are written while the database lets us.

use std::time::{Duration, Instant};

use super::{Engine, FINAL_WRITE_TRIES};
use crate::tasks::engine::{
    job::{Outcome, StopReason},
    store::AttemptKey,
};

impl Engine {
    /// Stops claiming; puts back what never started; lets running programs finish within the
    /// grace period, then stops them and re-queues what is left; records what it can.
    pub(super) async fn shut_down(&mut self, heartbeat: &mut tokio::time::Interval) {
        self.shutting_down = true;
        for job in self.executor.take_queued() {
            job.signal.stop(StopReason::Shutdown);
            if self.held.contains_key(&job.task.key) {
                self.completer.push(job.task.key, Outcome::Interrupted);
            }
        }
        let grace_end = Instant::now() + self.config.grace;
        self.drain(heartbeat, grace_end).await;
        if self.unfinished() > 0 {
            tracing::warn!(
                count = self.unfinished(),
                "grace period over: stopping and re-queueing running tasks"
            );
            for signal in self.held.values() {
                signal.stop(StopReason::Shutdown);
            }
            // Cooperative programs notice within a moment and report in as interrupted.
            self.drain(heartbeat, Instant::now() + Duration::from_secs(1))
                .await;
            // Reports that came in at the last moment are outcomes, not interruptions.
            while let Ok(report) = self.reports.try_recv() {
                self.take(report);
            }
            let abandoned: Vec<AttemptKey> = self
                .held
                .keys()
                .filter(|key| !self.completer.has(key))
                .copied()
                .collect();
            for key in abandoned {
                self.completer.push(key, Outcome::Interrupted);
            }
        }
        let give_up = Instant::now() + FINAL_WRITE_TRIES;
        while !self.completer.is_empty() && Instant::now() < give_up {
            self.take_replies();
            self.write_outcomes();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.completer.is_empty() {
            tracing::error!(
                count = self.completer.len(),
                "stopping with task outcomes not recorded: their leases will run out and they will run again"
            );
        }
        self.executor.close();
    }

    /// Takes reports and writes outcomes until nothing runs or `until`.
    async fn drain(&mut self, heartbeat: &mut tokio::time::Interval, until: Instant) {
        loop {
            self.turn();
            if self.unfinished() == 0 || Instant::now() >= until {
                return;
            }
            tokio::select! {
                Some(report) = self.reports.recv() => self.take(report),
                _ = heartbeat.tick() => self.renew_leases(),
                () = tokio::time::sleep(Duration::from_millis(50)) => self.watch(),
            }
        }
    }
}
