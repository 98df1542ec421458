//! The engine's statements (`tasks::engine::store`) on their own, against a real database:
//! the rules of claim, heartbeat, finish, fail, rescue and a lost connection, each as the SQL
//! functions apply them, without an engine running.

use bookstore::ids::TaskId;
use bookstore::{
    db::schema::tasks,
    tasks::{
        engine::store::{self, AttemptKey, ClaimRequest, ClaimedTask, Success},
        ops,
        status::TaskStatus,
    },
};
use chrono::Utc;
use diesel::{Connection, PgConnection, prelude::*};
use serde_json::Value;

use crate::helpers::fresh_database;

fn connect() -> PgConnection {
    PgConnection::establish(&fresh_database()).expect("connecting")
}

fn queue(conn: &mut PgConnection, program: &str, count: usize) -> Vec<TaskId> {
    (0..count)
        .map(|_| ops::run_program(conn, program, None).unwrap())
        .collect()
}

fn claim(conn: &mut PgConnection, worker: &str, limit: usize) -> Vec<ClaimedTask> {
    store::claim(conn, worker, ClaimRequest::new(limit), &[])
        .unwrap()
        .0
}

/// (status, attempt, max_attempts, waiting, history) of one task.
fn state(conn: &mut PgConnection, id: TaskId) -> (TaskStatus, i32, i32, bool, Value) {
    tasks::table
        .filter(tasks::id.eq(id))
        .select((
            tasks::status,
            tasks::attempt,
            tasks::max_attempts,
            tasks::waiting,
            tasks::attempts,
        ))
        .first(conn)
        .unwrap()
}

/// Every running task's lease ran out a minute ago.
fn leases_run_out(conn: &mut PgConnection) {
    diesel::sql_query(
        "UPDATE tasks SET heartbeat_at = now() - interval '1 minute' WHERE status = 'running'",
    )
    .execute(conn)
    .unwrap();
}

/// A success of `key` (result "done").
pub(crate) fn success(key: AttemptKey) -> Success {
    Success {
        key,
        result: "done".into(),
        result_table: None,
        started_at: Utc::now(),
        ended_at: Utc::now(),
        limited: false,
        has_dependents: false,
    }
}

#[test]
fn a_claim_takes_the_queue_in_order_and_only_the_holder_may_finish() {
    let mut conn = connect();
    let ids = queue(&mut conn, "noop", 3);

    let claimed = claim(&mut conn, "a", 2);
    assert_eq!(
        claimed.iter().map(|t| t.key.task_id).collect::<Vec<_>>(),
        ids[..2],
        "oldest first, no more than asked"
    );
    assert!(
        state(&mut conn, ids[0]).3,
        "claimed attempts start out waiting"
    );
    assert_eq!(
        claim(&mut conn, "b", 5).len(),
        1,
        "the rest for another worker"
    );

    let key = claimed[0].key;
    let stale = AttemptKey {
        attempt: key.attempt + 1,
        ..key
    };
    let by_other = store::finish(&mut conn, "b", &[success(key)]).unwrap();
    let by_stale = store::finish(&mut conn, "a", &[success(stale)]).unwrap();
    assert!(
        by_other.is_empty() && by_stale.is_empty(),
        "not theirs to finish"
    );
    let recorded = store::finish(&mut conn, "a", &[success(key)]).unwrap();
    assert!(recorded.contains(&key));
    assert_eq!(state(&mut conn, key.task_id).0, TaskStatus::Finished);
}

#[test]
fn a_heartbeat_renews_what_is_held_and_records_which_attempts_started() {
    let mut conn = connect();
    queue(&mut conn, "noop", 2);
    let claimed = claim(&mut conn, "a", 2);
    let (first, second) = (claimed[0].key, claimed[1].key);

    let renewed = store::heartbeat(&mut conn, "a", &[(first, true), (second, false)]).unwrap();
    assert_eq!(renewed.held.len(), 2);
    assert!(!state(&mut conn, first.task_id).3, "started");
    assert!(
        state(&mut conn, second.task_id).3,
        "still in the local queue"
    );

    let elsewhere = store::heartbeat(&mut conn, "b", &[(first, true)]).unwrap();
    assert!(elsewhere.held.is_empty(), "another worker renews nothing");
}

#[test]
fn a_rescue_gives_back_the_attempts_that_could_have_had_no_effect() {
    let mut conn = connect();
    // Plain programs with one attempt: one started, one waiting. A transactional program
    // (prune_tasks) that started.
    let plain = queue(&mut conn, "noop", 2);
    let transactional = queue(&mut conn, "prune_tasks", 1)[0];
    let claimed = claim(&mut conn, "dead", 3);
    let keys: Vec<(AttemptKey, bool)> = claimed
        .iter()
        .map(|t| (t.key, t.key.task_id != plain[1]))
        .collect();
    store::heartbeat(&mut conn, "dead", &keys).unwrap();
    leases_run_out(&mut conn);

    // A short lease: nothing is rescued within one lease of the server's start.
    assert_eq!(store::rescue_lost(&mut conn, 0.5).unwrap(), 3);

    let (status, attempt, max, _, history) = state(&mut conn, plain[0]);
    assert_eq!(
        (status, attempt, max),
        (TaskStatus::Error, 1, 1),
        "it started: spent"
    );
    assert_eq!(history[0]["refunded"], Value::Bool(false));
    let (status, _, max, waiting, history) = state(&mut conn, plain[1]);
    assert_eq!((status, max, waiting), (TaskStatus::Scheduled, 2, false));
    assert!(
        history[0]["error"]
            .as_str()
            .unwrap()
            .ends_with("before the attempt started; not counted")
    );
    let (status, _, max, _, history) = state(&mut conn, transactional);
    assert_eq!((status, max), (TaskStatus::Scheduled, 4));
    assert!(
        history[0]["error"]
            .as_str()
            .unwrap()
            .contains("its transaction rolled back")
    );
}

#[test]
fn a_lost_connection_is_given_back_five_times_then_counts_as_a_failure() {
    let mut conn = connect();
    let id = queue(&mut conn, "prune_tasks", 1)[0];
    for round in 1..=5 {
        let key = claim(&mut conn, "a", 1)[0].key;
        let status = store::connection_lost(&mut conn, "a", key, "server closed", 0).unwrap();
        assert_eq!(status, Some(TaskStatus::Scheduled), "round {round}");
        assert_eq!(state(&mut conn, id).2, 3 + round, "an attempt given back");
    }
    let key = claim(&mut conn, "a", 1)[0].key;
    assert_eq!(
        key.attempt, 6,
        "the attempt number keeps growing: it fences old runs"
    );
    let status = store::connection_lost(&mut conn, "a", key, "server closed", 0).unwrap();
    // 6 attempts of 8 allowed now: a failure, retried.
    assert_eq!(status, Some(TaskStatus::Scheduled));
    let (_, _, max, _, history) = state(&mut conn, id);
    assert_eq!(max, 8, "no more give-backs");
    assert_eq!(
        history[5]["error"],
        "the database connection was lost: server closed"
    );
    let stale = store::connection_lost(&mut conn, "a", key, "late", 0).unwrap();
    assert_eq!(stale, None, "an attempt no longer held changes nothing");
}

#[test]
fn a_failure_is_retried_with_backoff_until_the_attempts_are_spent() {
    let mut conn = connect();
    let id = queue(&mut conn, "hello_world", 1)[0];
    for attempt in 1..=3 {
        let key = claim(&mut conn, "a", 1)[0].key;
        assert_eq!(key.attempt, attempt);
        let status = store::fail(&mut conn, "a", key, "boom", true, 0).unwrap();
        let expected = if attempt < 3 {
            TaskStatus::Scheduled
        } else {
            TaskStatus::Error
        };
        assert_eq!(status, Some(expected));
    }
    let result: Option<String> = tasks::table
        .filter(tasks::id.eq(id))
        .select(tasks::result)
        .first(&mut conn)
        .unwrap();
    assert!(result.unwrap().starts_with("Failed after 3 attempts:"));
}
