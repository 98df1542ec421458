//! The engine's loop. It owns one database connection for its bookkeeping and, for every
//! attempt this node holds (waiting in the local queue, running, or with an outcome not yet
//! written), the attempt's stop signal. Each turn it takes the executor's reports, hands the
//! outcomes to the [`Completer`] and claims more tasks when the local queue runs low; timers
//! run the [`maintenance`] services (leases, rescues, schedules) and the timeout watchdog.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, watch},
    time::MissedTickBehavior,
};

use crate::{
    db::PgPool,
    tasks::{
        Registry,
        engine::{
            EngineConfig,
            completer::Completer,
            connection::{LoopConnection, Retry},
            executor::Executor,
            job::{ExecutorContext, Job, Outcome, Report, StopReason, StopSignal},
            listener, maintenance,
            store::{self, AttemptKey, QueueCursor},
            writer::{self, Writer},
        },
    },
};

mod claiming;
mod gathering;
mod shutdown;

/// The local queue holds about this much work per executor thread, judged by how long
/// programs have been taking: a backlog of quick tasks is claimed hundreds at a time, while
/// slow tasks are claimed a few at a time, leaving the rest to other nodes.
const LOCAL_QUEUE_WORK: Duration = Duration::from_millis(20);
/// Most tasks waiting in the local queue.
const MAX_LOCAL_QUEUE: usize = 1000;
/// How often the watchdog looks for programs past their timeout.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(250);
/// How often program schedules are checked.
const SCHEDULE_INTERVAL: Duration = Duration::from_secs(1);
/// While a limited program's due tasks wait for a slot, how often to look again (a slot
/// freed on this node wakes the loop at once; one freed on another node is seen this late).
const LIMITED_RECHECK: Duration = Duration::from_millis(100);
/// How long the loop may run without letting the listener (on the same thread) in.
const YIELD_EVERY: Duration = Duration::from_millis(2);
/// How many writers record successes side by side. Two: a workflow's successes also release
/// and claim its next tasks (`task_finish`), all on the writer's connection, so one writer was
/// one server core busy while the other idled.
const WRITERS: usize = 2;
/// At shutdown, how long to keep trying to record outcomes after the grace period.
const FINAL_WRITE_TRIES: Duration = Duration::from_secs(5);

pub(super) struct Engine {
    config: EngineConfig,
    executor: Executor,
    reports: mpsc::UnboundedReceiver<Report>,
    db: LoopConnection,
    /// Every attempt this node holds, with its stop signal.
    held: HashMap<AttemptKey, Arc<StopSignal>>,
    /// Outcomes reported and not yet written (kept while the database is away).
    completer: Completer,
    /// Record successes, each on its own connection, while the loop claims.
    writers: Vec<Writer>,
    written: mpsc::UnboundedReceiver<writer::Reply>,
    claim_retry: Retry,
    /// Where the last claim stopped (`None`: the start of the queue).
    cursor: Option<QueueCursor>,
    /// False once a claim from the start of the queue found nothing; a notification, the
    /// fallback poll or a due retry sets it again.
    queue_may_have_work: bool,
    /// When the earliest task waiting out a backoff becomes due.
    next_due: Option<Instant>,
    /// The last look at the queue found due tasks held back by their program's limit: an
    /// outcome written here may have freed a slot.
    limited_waiting: bool,
    /// A task with a priority above 0 was queued: claim a few now, even with a full local
    /// queue (the local queue puts it before the lower ones it holds).
    urgent: bool,
    /// A task was queued above the cursor's level: the next claim looks there too.
    look_above: bool,
    /// Seconds a program has been taking (moving average).
    average_run: Option<f64>,
    shutting_down: bool,
}

enum Event {
    Stop,
    Report(Report),
    Written(writer::Reply),
    Wake,
    Poll,
    Heartbeat,
    Rescue,
    Schedules,
    Watchdog,
    Timer,
}

impl Engine {
    pub(super) fn new(
        pool: PgPool,
        registry: Arc<Registry>,
        config: EngineConfig,
    ) -> anyhow::Result<Engine> {
        let (report_tx, reports) = mpsc::unbounded_channel();
        let executor = Executor::start(
            config.concurrency,
            Arc::new(ExecutorContext {
                pool,
                registry,
                worker_id: config.worker_id.clone(),
                settings: Arc::new(config.programs.clone()),
            }),
            report_tx,
        )?;
        // The loop's connection and the writers': alike, each on its own thread.
        let connection =
            || LoopConnection::new(config.database_url.clone(), config.statements, config.lease);
        let (writers, written) = Writer::start_many(WRITERS, &config.worker_id, connection)?;
        Ok(Engine {
            db: connection(),
            writers,
            written,
            completer: Completer::new(config.worker_id.clone(), config.retry_base),
            config,
            executor,
            reports,
            held: HashMap::new(),
            claim_retry: Retry::default(),
            cursor: None,
            queue_may_have_work: true,
            next_due: None,
            limited_waiting: false,
            urgent: false,
            look_above: false,
            average_run: None,
            shutting_down: false,
        })
    }

    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let config = self.config.clone();
        tracing::info!(worker = %config.worker_id, concurrency = config.concurrency, "task engine started");
        let wake = Arc::new(listener::Wake::default());
        let (listener_stop, listener_stop_rx) = watch::channel(false);
        let listener = actix_rt::spawn(listener::run(
            config.listen_url.clone(),
            wake.clone(),
            listener_stop_rx,
        ));
        let ticker = |period: Duration| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        };
        let mut heartbeat = ticker(config.heartbeat_interval);
        let mut rescue = ticker(config.lease / 2);
        let mut schedules = ticker(SCHEDULE_INTERVAL);
        let mut watchdog = ticker(WATCHDOG_INTERVAL);
        let mut poll = ticker(config.poll_interval);

        let mut last_yield = Instant::now();
        loop {
            self.turn();
            // The listener runs on this thread too: while reports keep every select ready,
            // this loop would not yield to it (for up to tokio's budget of 128 polls, measured
            // as a third of a second), and a queued urgent task would go unheard. Yielding
            // every turn halved the no-op rate; every couple of milliseconds costs nothing.
            if last_yield.elapsed() >= YIELD_EVERY {
                tokio::task::yield_now().await;
                last_yield = Instant::now();
            }
            let timer = self.next_timer();
            let event = tokio::select! {
                biased;
                _ = stop.changed() => Event::Stop,
                _ = heartbeat.tick() => Event::Heartbeat,
                _ = watchdog.tick() => Event::Watchdog,
                _ = rescue.tick() => Event::Rescue,
                _ = schedules.tick() => Event::Schedules,
                _ = poll.tick() => Event::Poll,
                // Before the reports: while a backlog runs they never stop coming, and a
                // queued task (an urgent one above all) must not wait for them to.
                () = wake.notify.notified() => Event::Wake,
                Some(reply) = self.written.recv() => Event::Written(reply),
                Some(report) = self.reports.recv() => Event::Report(report),
                () = sleep_until(timer) => Event::Timer,
            };
            match event {
                Event::Stop => break,
                Event::Report(report) => self.take(report),
                Event::Written(reply) => self.take_written(reply),
                Event::Wake => {
                    self.queue_may_have_work = true;
                    if let Some(priority) = wake.take_highest() {
                        self.heard_of(priority);
                    }
                }
                // The fallback poll also claims from the start once: tasks that sit before the
                // cursor (a resumed program's, a late commit's) wait at most one poll interval,
                // even while new work keeps the claims full.
                Event::Poll => {
                    self.cursor = None;
                    self.queue_may_have_work = true;
                }
                Event::Heartbeat => self.renew_leases(),
                Event::Rescue => {
                    if maintenance::rescue_lost_workers(&mut self.db, config.lease) {
                        self.queue_may_have_work = true;
                    }
                }
                Event::Schedules => {
                    if maintenance::fire_schedules(&mut self.db) {
                        self.queue_may_have_work = true;
                    }
                }
                Event::Watchdog => self.watch(),
                // The next turn deals with whatever came due.
                Event::Timer => {}
            }
        }

        self.shut_down(&mut heartbeat).await;
        let _ = listener_stop.send(true);
        let _ = listener.await;
        tracing::info!(worker = %config.worker_id, "task engine stopped");
    }

    /// A task of `priority` was queued: claims that moved below its level start again from
    /// the top; above 0 it is urgent (claimed even with a full local queue).
    fn heard_of(&mut self, priority: i32) {
        if self.cursor.is_some_and(|cursor| priority > cursor.priority) {
            self.look_above = true;
        }
        self.urgent |= priority > 0;
    }

    /// One turn: take every report that is in, hand the outcomes to be written (unless
    /// gathering them), claim if the local queue runs low.
    fn turn(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            self.take(report);
        }
        self.take_replies();
        if self.next_due.is_some_and(|due| Instant::now() >= due) {
            self.next_due = None;
            self.queue_may_have_work = true;
        }
        if self.gather_until().is_some() {
            // Bound by limited programs: the outcomes wait for the rest (see `gathering`).
            return;
        }
        if self.limited_waiting && self.completer.ready() {
            // An attempt that ended holds no slot: a limited program may have room now.
            self.queue_may_have_work = true;
        }
        self.write_outcomes();
        if !self.should_claim() {
            return;
        }
        let (request, urgent) = self.claim_request();
        // Those not recorded yet are still "running" in the database; their slots are free.
        let ended = self.completer.ended();
        let worker = &self.config.worker_id;
        let claimed = self
            .db
            .with(|conn| store::claim(conn, worker, request, &ended));
        self.claimed(request, urgent, claimed);
    }

    /// The earliest of: a due retry of a task, a retry of a failed statement, the end of a
    /// gathering of outcomes.
    fn next_timer(&self) -> Option<Instant> {
        let write = self.completer.next_try();
        let claim = self
            .queue_may_have_work
            .then(|| self.claim_retry.not_before())
            .flatten();
        // A time already passed was dealt with by this turn; waking for it again would spin.
        let now = Instant::now();
        [self.next_due, write, claim, self.gather_until()]
            .into_iter()
            .flatten()
            .filter(|at| *at > now)
            .min()
    }

    fn take(&mut self, report: Report) {
        if let Some(ran) = report.ran_for {
            let seconds = ran.as_secs_f64();
            self.average_run = Some(match self.average_run {
                Some(average) => average * 0.9 + seconds * 0.1,
                None => seconds,
            });
        }
        let Some(signal) = self.held.get(&report.key) else {
            return;
        };
        match report.outcome {
            Outcome::Recorded => {
                self.held.remove(&report.key);
                // Written in the attempt's own transaction: its slot is free now, so a
                // limited program's next task need not wait for the recheck.
                if self.limited_waiting {
                    self.queue_may_have_work = true;
                }
            }
            Outcome::Lost => {
                self.held.remove(&report.key);
            }
            _ if signal.reason() == Some(StopReason::Lost) => {
                tracing::warn!(
                    task = %report.key.task_id,
                    attempt = report.key.attempt,
                    "the attempt lost its lease before it ended; its outcome is dropped"
                );
                self.held.remove(&report.key);
            }
            outcome => self.completer.push(report.key, outcome),
        }
    }

    /// Attempts in the local queue or running (not those only waiting for their outcome to
    /// be written, nor a limited program's held beyond its max_running: however many of
    /// those wait, they must not keep the node from claiming work for its idle threads).
    fn unfinished(&self) -> usize {
        self.held
            .len()
            .saturating_sub(self.completer.len())
            .saturating_sub(self.executor.set_aside())
    }

    /// The unfinished attempts and the room kept for the tasks the writers may claim: what
    /// the node has taken on, as its claims see it.
    fn taken(&self) -> usize {
        self.unfinished() + self.completer.claiming()
    }

    /// How many more tasks the node takes: enough to keep every thread busy and the local
    /// queue full.
    fn room(&self) -> usize {
        (self.config.concurrency + self.local_queue_capacity()).saturating_sub(self.taken())
    }

    /// A task this node claimed: held, and in the local queue.
    fn start(&mut self, task: store::ClaimedTask) {
        let signal = Arc::new(StopSignal::default());
        self.held.insert(task.key, signal.clone());
        self.executor.submit(Job { task, signal });
    }

    /// Writes the outcomes that are in: the successes go to a writer, which records them on
    /// its connection while the loop claims on this one (at shutdown the loop records them
    /// itself), the rest on this connection. The attempts they settle are no longer held.
    fn write_outcomes(&mut self) {
        let writers: &[Writer] = if self.shutting_down {
            &[]
        } else {
            &self.writers
        };
        let room = self.room();
        for key in self.completer.write(&mut self.db, writers, room) {
            self.held.remove(&key);
        }
    }

    /// Every reply of the writers that is in.
    fn take_replies(&mut self) {
        while let Ok(reply) = self.written.try_recv() {
            self.take_written(reply);
        }
    }

    /// A writer's reply: the attempts it settled are no longer held; the tasks it claimed
    /// start (or, once the node is stopping, go back to the queue).
    fn take_written(&mut self, reply: writer::Reply) {
        let written = self.completer.written(reply);
        for key in written.settled {
            self.held.remove(&key);
        }
        for task in written.claimed {
            if self.shutting_down {
                self.held.insert(task.key, Arc::new(StopSignal::default()));
                self.completer.push(task.key, Outcome::Interrupted);
            } else {
                self.start(task);
            }
        }
    }

    /// Renews the leases of everything held; passes cancel requests on; stops attempts that
    /// were rescued meanwhile (and drops their unwritten outcomes).
    fn renew_leases(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let leases = match maintenance::renew_leases(
            &mut self.db,
            &self.config.worker_id,
            &self.held,
            self.completer.in_flight(),
        ) {
            Ok(leases) => leases,
            Err(err) => {
                tracing::warn!("renewing task leases: {err:#}");
                return;
            }
        };
        self.completer.database_is_back();
        for key in &leases.cancel_requested {
            if let Some(signal) = self.held.get(key) {
                signal.stop(StopReason::Cancelled);
            }
        }
        if leases.lost.is_empty() {
            return;
        }
        tracing::warn!(
            count = leases.lost.len(),
            "attempts lost their lease (rescued elsewhere): stopping them"
        );
        for key in &leases.lost {
            if let Some(signal) = self.held.get(key) {
                signal.stop(StopReason::Lost);
            }
        }
        // Those whose executor has reported already: nothing more will come for them.
        for key in self.completer.forget(&leases.lost) {
            self.held.remove(&key);
        }
    }

    fn watch(&mut self) {
        for report in self.executor.watch() {
            self.take(report);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
