//! The pool of threads on its own: programs that need no database, and a pool whose
//! database cannot be reached (r2d2 opens connections only when asked).

use std::path::PathBuf;

use diesel::r2d2::{ConnectionManager, Pool};
use serde_json::json;

use super::*;
use crate::ids::TaskId;
use crate::tasks::{
    Registry,
    engine::store::{ClaimedTask, FunctionKind},
    program::{ProgramFn, ProgramFunction, ProgramSettings, TaskError, TaskOutput},
};

fn function(name: &'static str, run: ProgramFn) -> ProgramFunction {
    ProgramFunction {
        name,
        description: "",
        params: Vec::new(),
        timeout: Duration::from_secs(30),
        max_attempts: 1,
        default_schedule: None,
        default_max_running: None,
        run,
    }
}

fn executor(threads: usize) -> (Executor, mpsc::UnboundedReceiver<Report>) {
    let unreachable = ConnectionManager::new("host=/nonexistent dbname=none connect_timeout=1");
    let pool = Pool::builder()
        .max_size(1)
        .connection_timeout(Duration::from_millis(200))
        .build_unchecked(unreachable);
    let registry = Registry::new(vec![
        function(
            "greet",
            ProgramFn::Plain(|ctx| {
                Ok(TaskOutput::Text(format!(
                    "hello from attempt {}",
                    ctx.attempt()
                )))
            }),
        ),
        function("explode", ProgramFn::Plain(|_| panic!("on purpose"))),
        function(
            "later",
            ProgramFn::Plain(|_| Err(TaskError::Snooze(Duration::from_secs(90)))),
        ),
        function(
            "plain_db",
            ProgramFn::Plain(|ctx| {
                ctx.conn()?;
                Ok(TaskOutput::Text("unreachable".into()))
            }),
        ),
        function(
            "transactional_db",
            ProgramFn::Transactional(|_, _| Ok(TaskOutput::Text("unreachable".into()))),
        ),
    ]);
    let context = Arc::new(ExecutorContext {
        pool,
        registry: Arc::new(registry),
        worker_id: "test-worker".into(),
        settings: Arc::new(ProgramSettings {
            import_dir: PathBuf::from("/nonexistent"),
            import_max_bytes: 0,
            mail: crate::mail::Mailer::from_config(&crate::config::Config::default()),
            backups: crate::backup::BackupSettings::from(&crate::config::Config::default()),
        }),
    });
    let (reports_tx, reports) = mpsc::unbounded_channel();
    (
        Executor::start(threads, context, reports_tx).unwrap(),
        reports,
    )
}

fn job(id: i64, function_name: &str) -> (Job, Arc<StopSignal>) {
    job_with_priority(id, function_name, 0)
}

fn job_with_priority(id: i64, function_name: &str, priority: i32) -> (Job, Arc<StopSignal>) {
    let signal = Arc::new(StopSignal::default());
    let job = Job {
        task: ClaimedTask {
            key: AttemptKey {
                task_id: TaskId(id),
                attempt: 1,
            },
            program_name: function_name.into(),
            function_name: function_name.into(),
            function_kind: FunctionKind::Rust,
            parameters: Some(json!({})),
            timeout_seconds: 30,
            priority,
            limited: false,
            has_dependents: false,
            max_running: None,
        },
        signal: signal.clone(),
    };
    (job, signal)
}

fn next(reports: &mut mpsc::UnboundedReceiver<Report>) -> Report {
    reports.blocking_recv().expect("a report")
}

#[test]
fn a_plain_program_succeeds_and_a_panic_is_a_retryable_failure() {
    let (executor, mut reports) = executor(1);
    let (greet, greet_signal) = job(1, "greet");
    executor.submit(greet);
    executor.submit(job(2, "explode").0);

    let report = next(&mut reports);
    assert_eq!(report.key.task_id, TaskId(1));
    assert!(greet_signal.has_started());
    match report.outcome {
        Outcome::Done(success) => assert_eq!(success.result, "hello from attempt 1"),
        other => panic!("{other:?}"),
    }
    match next(&mut reports).outcome {
        Outcome::Failed { error, retryable } => {
            assert_eq!(error, "the program panicked: on purpose");
            assert!(retryable);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_attempt_stopped_while_it_waited_never_starts() {
    let (executor, mut reports) = executor(1);
    let mut signals = Vec::new();
    for (id, reason) in [
        (1, StopReason::Cancelled),
        (2, StopReason::Shutdown),
        (3, StopReason::Lost),
    ] {
        let (job, signal) = job(id, "greet");
        signal.stop(reason);
        signals.push(signal);
        executor.submit(job);
    }
    let outcomes: Vec<String> = (0..3)
        .map(|_| {
            let report = next(&mut reports);
            assert!(report.ran_for.is_none(), "it never ran");
            format!("{:?}", report.outcome)
        })
        .collect();
    assert_eq!(outcomes, ["Cancelled", "Interrupted", "Lost"]);
    assert!(signals.iter().all(|signal| !signal.has_started()));
}

#[test]
fn a_lost_database_is_the_infrastructures_failure_given_back_only_when_transactional() {
    let (executor, mut reports) = executor(1);
    executor.submit(job(1, "plain_db").0);
    executor.submit(job(2, "transactional_db").0);

    match next(&mut reports).outcome {
        Outcome::Failed { error, retryable } => {
            assert!(
                error.starts_with("the database connection was lost: "),
                "{error}"
            );
            assert!(retryable, "a plain program is retried by its policy");
        }
        other => panic!("{other:?}"),
    }
    match next(&mut reports).outcome {
        Outcome::ConnectionLost { error } => {
            assert!(error.contains("no database connection"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_local_queue_hands_out_the_highest_priority_first_then_in_claim_order() {
    let queue = super::local_queue::LocalQueue::default();
    for (id, priority) in [(1, 0), (2, 0), (3, -5), (4, 0)] {
        queue.push(job_with_priority(id, "noop", priority).0);
    }
    // A high-priority task claimed while the queue is full of low ones goes first.
    queue.push(job_with_priority(5, "noop", 10).0);
    let first = queue.pop().expect("a job");
    assert_eq!(first.task.key.task_id, TaskId(5));
    let rest: Vec<i64> = queue.drain().iter().map(|j| j.task.key.task_id.0).collect();
    assert_eq!(rest, vec![1, 2, 4, 3]);
    queue.close();
    assert!(queue.pop().is_none(), "closed and empty: the threads end");
}

#[test]
fn a_limited_program_held_beyond_its_max_running_starts_no_more_than_that_at_once() {
    let queue = super::local_queue::LocalQueue::default();
    let limited = |id: i64, priority: i32| {
        let (mut job, _) = job_with_priority(id, "report", priority);
        job.task.limited = true;
        job.task.max_running = Some(2);
        job
    };
    for id in 1..=4 {
        queue.push(limited(id, 0));
    }
    queue.push(job_with_priority(5, "noop", -1).0);
    // Two of the program's run; the next goes to the plain task, the others wait aside.
    let first = queue.pop().expect("a job");
    let second = queue.pop().expect("a job");
    assert_eq!(
        [first.task.key.task_id.0, second.task.key.task_id.0],
        [1, 2]
    );
    assert_eq!(queue.pop().expect("a job").task.key.task_id, TaskId(5));
    assert_eq!(
        queue.set_aside(),
        2,
        "the engine does not count them as local work"
    );
    // One of the two ends: the next of its program may start, in claim order.
    queue.finished(&first.task);
    assert_eq!(queue.pop().expect("a job").task.key.task_id, TaskId(3));
    assert_eq!(queue.set_aside(), 1);
    // A job put aside is still the queue's: a shutdown takes it back.
    let rest: Vec<i64> = queue.drain().iter().map(|j| j.task.key.task_id.0).collect();
    assert_eq!(rest, vec![4]);
}

#[test]
fn a_program_asking_to_snooze_is_neither_a_success_nor_a_failure() {
    let (executor, mut reports) = executor(1);
    executor.submit(job(7, "later").0);
    match next(&mut reports).outcome {
        Outcome::Snoozed { wait } => assert_eq!(wait, Duration::from_secs(90)),
        other => panic!("{other:?}"),
    }
}
