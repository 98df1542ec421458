//! The engine's loop. It owns one database connection for its bookkeeping and, for every
//! attempt this node holds (waiting in the local queue, running, or with an outcome not yet
//! written), the attempt's stop signal. Each turn it takes the executor's reports, writes the
//! outcomes in as few statements as it can, and claims more tasks when the local queue runs
//! low; timers renew leases, rescue tasks of lost workers, fire schedules and enforce timeouts.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use diesel::{Connection, PgConnection, QueryResult};
use tokio::{
    sync::{Notify, mpsc, watch},
    time::MissedTickBehavior,
};

use crate::{
    db::{PgPool, Statements},
    tasks::{
        Registry,
        engine::{
            EngineConfig,
            executor::{Executor, ExecutorContext, Job, Outcome, Report, StopReason, StopSignal},
            listener,
            store::{self, AttemptKey, QueueCursor},
        },
        status::TaskStatus,
    },
};

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
/// Backoff between tries of a statement that failed because the database is away.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At shutdown, how long to keep trying to record outcomes after the grace period.
const FINAL_WRITE_TRIES: Duration = Duration::from_secs(5);

pub(super) struct Engine {
    config: EngineConfig,
    executor: Executor,
    reports: mpsc::UnboundedReceiver<Report>,
    /// The loop's own connection; dropped on any error and opened again when next needed.
    conn: Option<PgConnection>,
    /// Every attempt this node holds, with its stop signal.
    held: HashMap<AttemptKey, Arc<StopSignal>>,
    /// Outcomes reported and not yet written (kept while the database is away).
    unwritten: Vec<(AttemptKey, Outcome)>,
    write_retry: Retry,
    claim_retry: Retry,
    /// Where the last claim stopped (`None`: the start of the queue).
    cursor: Option<QueueCursor>,
    /// False once a claim from the start of the queue found nothing; a notification, the
    /// fallback poll or a due retry sets it again.
    queue_may_have_work: bool,
    /// When the earliest task waiting out a backoff becomes due.
    next_due: Option<Instant>,
    /// Seconds a program has been taking (moving average).
    average_run: Option<f64>,
    shutting_down: bool,
}

/// Backoff for a statement that failed.
#[derive(Default)]
struct Retry {
    not_before: Option<Instant>,
    delay: Duration,
}

impl Retry {
    fn ready(&self) -> bool {
        self.not_before.is_none_or(|at| Instant::now() >= at)
    }

    fn failed(&mut self) -> Duration {
        self.delay = (self.delay * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
        self.not_before = Some(Instant::now() + self.delay);
        self.delay
    }

    fn succeeded(&mut self) {
        *self = Retry::default();
    }
}

enum Event {
    Stop,
    Report(Report),
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
        Ok(Engine {
            config,
            executor,
            reports,
            conn: None,
            held: HashMap::new(),
            unwritten: Vec::new(),
            write_retry: Retry::default(),
            claim_retry: Retry::default(),
            cursor: None,
            queue_may_have_work: true,
            next_due: None,
            average_run: None,
            shutting_down: false,
        })
    }

    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let config = self.config.clone();
        tracing::info!(worker = %config.worker_id, concurrency = config.concurrency, "task engine started");
        let wake = Arc::new(Notify::new());
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

        loop {
            self.turn();
            let timer = self.next_timer();
            let event = tokio::select! {
                biased;
                _ = stop.changed() => Event::Stop,
                _ = heartbeat.tick() => Event::Heartbeat,
                _ = watchdog.tick() => Event::Watchdog,
                _ = rescue.tick() => Event::Rescue,
                _ = schedules.tick() => Event::Schedules,
                _ = poll.tick() => Event::Poll,
                Some(report) = self.reports.recv() => Event::Report(report),
                () = wake.notified() => Event::Wake,
                () = sleep_until(timer) => Event::Timer,
            };
            match event {
                Event::Stop => break,
                Event::Report(report) => self.take(report),
                Event::Wake => self.queue_may_have_work = true,
                // The fallback poll also claims from the start once: tasks that sit before the
                // cursor (a resumed program's, a late commit's) wait at most one poll interval,
                // even while new work keeps the claims full.
                Event::Poll => {
                    self.cursor = None;
                    self.queue_may_have_work = true;
                }
                Event::Heartbeat => self.heartbeat(),
                Event::Rescue => self.rescue(),
                Event::Schedules => self.fire_schedules(),
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

    /// One turn: take every report that is in, write outcomes, claim if the queue runs low.
    fn turn(&mut self) {
        while let Ok(report) = self.reports.try_recv() {
            self.take(report);
        }
        if self.next_due.is_some_and(|due| Instant::now() >= due) {
            self.next_due = None;
            self.queue_may_have_work = true;
        }
        self.write_outcomes();
        if self.should_claim() {
            self.claim();
        }
    }

    /// The earliest of: a due retry of a task, a retry of a failed statement.
    fn next_timer(&self) -> Option<Instant> {
        let write = (!self.unwritten.is_empty())
            .then_some(self.write_retry.not_before)
            .flatten();
        let claim = self
            .queue_may_have_work
            .then_some(self.claim_retry.not_before)
            .flatten();
        // A time already passed was dealt with by this turn; waking for it again would spin.
        let now = Instant::now();
        [self.next_due, write, claim]
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
            Outcome::Recorded | Outcome::Lost => {
                self.held.remove(&report.key);
            }
            _ if signal.reason() == Some(StopReason::Lost) => {
                tracing::warn!(
                    task = report.key.task_id,
                    attempt = report.key.attempt,
                    "the attempt lost its lease before it ended; its outcome is dropped"
                );
                self.held.remove(&report.key);
            }
            outcome => self.unwritten.push((report.key, outcome)),
        }
    }

    /// Attempts in the local queue or running (not those only waiting for their outcome to
    /// be written).
    fn unfinished(&self) -> usize {
        self.held.len().saturating_sub(self.unwritten.len())
    }

    fn local_queue_capacity(&self) -> usize {
        let concurrency = self.config.concurrency;
        match self.average_run {
            None => concurrency,
            Some(seconds) => {
                let fits = LOCAL_QUEUE_WORK.as_secs_f64() * concurrency as f64 / seconds.max(1e-7);
                (fits as usize).clamp(1, MAX_LOCAL_QUEUE)
            }
        }
    }

    fn should_claim(&self) -> bool {
        let target = self.config.concurrency + self.local_queue_capacity();
        !self.shutting_down
            && self.queue_may_have_work
            && self.claim_retry.ready()
            // Never leave a thread idle; beyond that, refill the local queue in batches.
            && (self.unfinished() < self.config.concurrency || self.unfinished() * 2 <= target)
    }

    fn claim(&mut self) {
        let want = self.config.concurrency + self.local_queue_capacity() - self.unfinished();
        let (worker, cursor) = (self.config.worker_id.clone(), self.cursor);
        let claimed = self.with_conn(|conn| store::claim(conn, &worker, want, cursor));
        let (tasks, last) = match claimed {
            Ok(claimed) => {
                self.claim_retry.succeeded();
                claimed
            }
            Err(err) => {
                let delay = self.claim_retry.failed();
                tracing::warn!("claiming tasks: {err:#}; trying again in {delay:?}");
                return;
            }
        };
        let got = tasks.len();
        tracing::debug!(want, got, "claimed");
        for task in tasks {
            let signal = Arc::new(StopSignal::default());
            self.held.insert(task.key, signal.clone());
            self.executor.submit(Job { task, signal });
        }
        if got == want {
            self.cursor = last;
            return;
        }
        // Short: nothing more after the cursor. Tasks committed late may sit before it, so
        // the next claim starts from the beginning; from there, short means drained.
        let from_start = self.cursor.is_none();
        self.cursor = None;
        if from_start {
            self.queue_may_have_work = false;
            self.find_next_due();
        }
    }

    /// A retry waiting out its backoff: wake when it is due.
    fn find_next_due(&mut self) {
        match self.with_conn(store::next_due_at) {
            Ok(Some(due)) => {
                // Due already but not claimable (locked by another transaction, or clocks
                // apart): look again in a second rather than spin.
                let wait = (due - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::from_secs(1))
                    .max(Duration::from_millis(20));
                self.next_due = Some(Instant::now() + wait);
            }
            Ok(None) => self.next_due = None,
            Err(err) => tracing::warn!("looking for due tasks: {err:#}"),
        }
    }

    /// Writes the outcomes that are in: every success in one statement, the rest one by one.
    /// While the database is away they are kept and tried again with backoff; an outcome
    /// whose attempt this node no longer holds is dropped (the database refuses it anyway).
    fn write_outcomes(&mut self) {
        if self.unwritten.is_empty() || !self.write_retry.ready() {
            return;
        }
        let worker = self.config.worker_id.clone();
        let retry_base_ms = self.config.retry_base.as_millis().min(i64::MAX as u128) as i64;
        let mut pending = std::mem::take(&mut self.unwritten);
        let mut successes = Vec::new();
        let mut interrupted = Vec::new();
        let mut others = Vec::new();
        for (key, outcome) in pending.drain(..) {
            match outcome {
                Outcome::Done(success) => successes.push(success),
                Outcome::Interrupted => interrupted.push(key),
                outcome => others.push((key, outcome)),
            }
        }
        let mut failure = None;
        if !successes.is_empty() {
            let started = Instant::now();
            let written = self.with_conn(|conn| store::finish(conn, &worker, &successes));
            tracing::debug!(count = successes.len(), took = ?started.elapsed(), "recorded successes");
            match written {
                Ok(recorded) => {
                    for success in &successes {
                        if !recorded.contains(&success.key) {
                            tracing::warn!(
                                task = success.key.task_id,
                                attempt = success.key.attempt,
                                "finished, but the attempt is no longer this node's: not recorded"
                            );
                        }
                        self.held.remove(&success.key);
                    }
                }
                Err(err) => {
                    failure = Some(err);
                    self.unwritten
                        .extend(successes.into_iter().map(|s| (s.key, Outcome::Done(s))));
                }
            }
        }
        if !interrupted.is_empty() && failure.is_none() {
            match self.with_conn(|conn| store::requeue_interrupted(conn, &worker, &interrupted)) {
                Ok(_) => {
                    for key in &interrupted {
                        self.held.remove(key);
                    }
                }
                Err(err) => failure = Some(err),
            }
        }
        if failure.is_some() {
            self.unwritten.extend(
                interrupted
                    .into_iter()
                    .map(|key| (key, Outcome::Interrupted)),
            );
        }
        for (key, outcome) in others {
            if failure.is_some() {
                self.unwritten.push((key, outcome));
                continue;
            }
            let written = self.with_conn(|conn| match &outcome {
                Outcome::Failed { error, retryable } => {
                    store::fail(conn, &worker, key, error, *retryable, retry_base_ms).map(
                        |status| {
                            tracing::warn!(
                                task = key.task_id,
                                attempt = key.attempt,
                                status = status.map_or("not held", TaskStatus::as_str),
                                "task attempt failed: {error}"
                            );
                        },
                    )
                }
                Outcome::ConnectionLost { error } => {
                    store::connection_lost(conn, &worker, key, error, retry_base_ms).map(|status| {
                        tracing::warn!(
                            task = key.task_id,
                            attempt = key.attempt,
                            status = status.map_or("not held", TaskStatus::as_str),
                            "task attempt lost its database connection: {error}"
                        );
                    })
                }
                Outcome::Cancelled => store::cancelled(conn, &worker, key).map(drop),
                _ => Ok(()),
            });
            match written {
                Ok(()) => {
                    self.held.remove(&key);
                }
                Err(err) => {
                    failure = Some(err);
                    self.unwritten.push((key, outcome));
                }
            }
        }
        match failure {
            None => self.write_retry.succeeded(),
            Some(err) => {
                let delay = self.write_retry.failed();
                tracing::warn!(
                    outcomes = self.unwritten.len(),
                    "recording task outcomes: {err:#}; keeping them and trying again in {delay:?}"
                );
            }
        }
    }

    /// Renews the leases of everything held; passes cancel requests on; stops attempts that
    /// were rescued meanwhile (and drops their unwritten outcomes).
    fn heartbeat(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held: Vec<(AttemptKey, bool)> = self
            .held
            .iter()
            .map(|(key, signal)| (*key, signal.has_started()))
            .collect();
        let keys: Vec<AttemptKey> = held.iter().map(|(key, _)| *key).collect();
        let worker = self.config.worker_id.clone();
        let renewed = match self.with_conn(|conn| store::heartbeat(conn, &worker, &held)) {
            Ok(renewed) => {
                // The database answers again: write what waited for it at once.
                self.write_retry.succeeded();
                renewed
            }
            Err(err) => {
                tracing::warn!("renewing task leases: {err:#}");
                return;
            }
        };
        for key in &renewed.cancel_requested {
            if let Some(signal) = self.held.get(key) {
                signal.stop(StopReason::Cancelled);
            }
        }
        let mut lost: Vec<AttemptKey> = keys
            .into_iter()
            .filter(|key| !renewed.held.contains(key))
            .collect();
        if lost.is_empty() {
            return;
        }
        // Not lost: ended by this node (a transactional program recorded its own outcome and
        // its report is on its way).
        if let Ok(ended) = self.with_conn(|conn| store::ended_by(conn, &worker, &lost)) {
            lost.retain(|key| !ended.contains(key));
            if lost.is_empty() {
                return;
            }
        }
        tracing::warn!(
            count = lost.len(),
            "attempts lost their lease (rescued elsewhere): stopping them"
        );
        for key in &lost {
            if let Some(signal) = self.held.get(key) {
                signal.stop(StopReason::Lost);
            }
        }
        let mut reported = Vec::new();
        self.unwritten.retain(|(key, _)| {
            let lost_here = lost.contains(key);
            if lost_here {
                reported.push(*key);
            }
            !lost_here
        });
        for key in reported {
            // Their executor has reported already: nothing more will come for them.
            self.held.remove(&key);
        }
    }

    fn rescue(&mut self) {
        let lease = self.config.lease.as_secs_f64();
        match self.with_conn(|conn| store::rescue_lost(conn, lease)) {
            Ok(0) => {}
            Ok(count) => {
                tracing::warn!(count, "rescued tasks of a lost worker");
                self.queue_may_have_work = true;
            }
            Err(err) => tracing::warn!("checking leases: {err:#}"),
        }
    }

    fn fire_schedules(&mut self) {
        match self.with_conn(store::fire_due_schedules) {
            Ok(queued) if !queued.is_empty() => self.queue_may_have_work = true,
            Ok(_) => {}
            Err(err) => tracing::warn!("firing schedules: {err:#}"),
        }
    }

    fn watch(&mut self) {
        for report in self.executor.watch() {
            self.take(report);
        }
    }

    /// Stops claiming; puts back what never started; lets running programs finish within the
    /// grace period, then stops them and re-queues what is left; records what it can.
    async fn shut_down(&mut self, heartbeat: &mut tokio::time::Interval) {
        self.shutting_down = true;
        for job in self.executor.take_queued() {
            job.signal.stop(StopReason::Shutdown);
            if self.held.contains_key(&job.task.key) {
                self.unwritten.push((job.task.key, Outcome::Interrupted));
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
            let unwritten: Vec<AttemptKey> = self.unwritten.iter().map(|(key, _)| *key).collect();
            let abandoned: Vec<AttemptKey> = self
                .held
                .keys()
                .filter(|key| !unwritten.contains(key))
                .copied()
                .collect();
            for key in abandoned {
                self.unwritten.push((key, Outcome::Interrupted));
            }
        }
        let give_up = Instant::now() + FINAL_WRITE_TRIES;
        while !self.unwritten.is_empty() && Instant::now() < give_up {
            self.write_outcomes();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.unwritten.is_empty() {
            tracing::error!(
                count = self.unwritten.len(),
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
                _ = heartbeat.tick() => self.heartbeat(),
                () = tokio::time::sleep(Duration::from_millis(50)) => self.watch(),
            }
        }
    }

    /// Runs a bookkeeping statement on the loop's connection, opening it if needed. Any error
    /// drops the connection: it may be broken, and a new one is cheap next to an outage.
    fn with_conn<T>(
        &mut self,
        work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let url = crate::db::with_connect_timeout(&self.config.database_url, 5);
                let mut conn = PgConnection::establish(&url)?;
                self.config.statements.apply(&mut conn);
                if self.config.statements == Statements::Prepared {
                    // A statement stuck behind a lock (a transaction left open in psql) or on
                    // a hung server must not freeze the loop past a lease: its heartbeats
                    // would stop and other nodes would rescue everything it holds. (Through a
                    // transaction pooler a session setting would land on some other client.)
                    let limit = (self.config.lease / 3)
                        .max(Duration::from_secs(1))
                        .as_millis();
                    diesel::connection::SimpleConnection::batch_execute(
                        &mut conn,
                        &format!("SET statement_timeout = {limit}; SET lock_timeout = {limit}"),
                    )?;
                }
                self.conn.insert(conn)
            }
        };
        work(conn).map_err(|err| {
            self.conn = None;
            err.into()
        })
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
