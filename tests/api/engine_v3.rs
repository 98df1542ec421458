//! Engine v3's rules on their own, against a real database and no engine running: priorities
//! in the claim, unique keys under a crowd, limits across claimers, tasks that wait for
//! others, batches whose last two members end at once, snooze. (The engine running them end
//! to end is `engine_flows`.)

use std::sync::{Arc, Barrier};

use bookstore::{
    db::schema::{task_batches, tasks},
    ids::TaskId,
    tasks::{
        engine::store::{self, AttemptKey, ClaimRequest, ClaimedTask, Success},
        ops,
        queueing::{self, ProgramOptions, RunOptions},
        status::TaskStatus,
    },
};
use chrono::Utc;
use diesel::{Connection, PgConnection, prelude::*};

use crate::{engine_store::success, helpers::fresh_database};

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).expect("connecting")
}

fn run(conn: &mut PgConnection, program: &str, options: RunOptions) -> TaskId {
    queueing::enqueue(conn, program, None, &options).unwrap().id
}

fn with_priority(priority: i32) -> RunOptions {
    RunOptions {
        priority: Some(priority),
        ..RunOptions::default()
    }
}

fn after(ids: &[TaskId]) -> RunOptions {
    RunOptions {
        after: ids.to_vec(),
        ..RunOptions::default()
    }
}

fn ids(claimed: &[ClaimedTask]) -> Vec<TaskId> {
    claimed.iter().map(|t| t.key.task_id).collect()
}

fn status(conn: &mut PgConnection, id: TaskId) -> (TaskStatus, Option<String>) {
    tasks::table
        .filter(tasks::id.eq(id))
        .select((tasks::status, tasks::result))
        .first(conn)
        .unwrap()
}

fn finish(conn: &mut PgConnection, worker: &str, keys: &[AttemptKey]) {
    let done: Vec<Success> = keys
        .iter()
        .map(|&key| Success {
            key,
            result: format!("result of {}", key.task_id),
            result_table: None,
            started_at: Utc::now(),
            ended_at: Utc::now(),
            limited: false,
            has_dependents: false,
        })
        .collect();
    assert_eq!(
        store::finish(conn, worker, &done).unwrap().len(),
        keys.len()
    );
}

fn options(max_running: Option<i32>, per_minute: Option<i32>) -> ProgramOptions {
    ProgramOptions {
        priority: 0,
        max_running,
        per_minute,
    }
}

#[test]
fn the_claim_takes_higher_priorities_first_and_a_cursor_continues_at_its_level() {
    let mut conn = connect(&fresh_database());
    let low: Vec<TaskId> = (0..4)
        .map(|_| run(&mut conn, "noop", with_priority(-5)))
        .collect();
    let plain: Vec<TaskId> = (0..4)
        .map(|_| run(&mut conn, "noop", RunOptions::default()))
        .collect();

    let (first, cursor) = store::claim(&mut conn, "a", ClaimRequest::new(2), &[]).unwrap();
    assert_eq!(
        ids(&first),
        plain[..2],
        "priority 0 before -5, in queue order"
    );
    let cursor = cursor.expect("where the claim stopped");
    assert_eq!(cursor.priority, 0);

    // Queued after the claim moved on: a claim from the cursor continues at its level and
    // below (it looks above only when the engine heard of a task queued there).
    let urgent = run(&mut conn, "noop", with_priority(10));
    let (next, cursor) = store::claim(
        &mut conn,
        "a",
        ClaimRequest::new(3).after(Some(cursor)),
        &[],
    )
    .unwrap();
    assert_eq!(ids(&next), vec![plain[2], plain[3], low[0]]);
    // Told of it (look_above), the claim takes it first, then goes on from the cursor.
    let (told, _) = store::claim(
        &mut conn,
        "a",
        ClaimRequest::new(2).after(cursor).looking_above(true),
        &[],
    )
    .unwrap();
    assert_eq!(ids(&told), vec![urgent, low[1]], "the highest first");
    assert_eq!(told[0].priority, 10);
}

#[test]
fn fifty_concurrent_calls_with_one_unique_key_queue_one_task() {
    let url = fresh_database();
    let start = Arc::new(Barrier::new(50));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                start.wait();
                queueing::enqueue(
                    &mut conn,
                    "noop",
                    None,
                    &RunOptions {
                        unique_key: Some("order-42".into()),
                        ..RunOptions::default()
                    },
                )
                .unwrap()
            })
        })
        .collect();
    let answers: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    let first = answers[0].id;
    assert!(
        answers.iter().all(|a| a.id == first),
        "every caller got the same task"
    );
    assert_eq!(
        answers.iter().filter(|a| !a.existed).count(),
        1,
        "one queued it"
    );

    let mut conn = connect(&url);
    let count: i64 = tasks::table
        .filter(tasks::unique_key.eq("order-42"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(count, 1);

    // Once it has ended the key is free again; with unique_for it stays taken for that long.
    let (claimed, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    finish(&mut conn, "a", &[claimed[0].key]);
    let keyed = |key: &str, unique_for| RunOptions {
        unique_key: Some(key.into()),
        unique_for,
        ..RunOptions::default()
    };
    let again = queueing::enqueue(&mut conn, "noop", None, &keyed("order-42", None)).unwrap();
    assert!(
        !again.existed && again.id != first,
        "a new task once the first ended"
    );

    let held = keyed("daily", Some(chrono::Duration::hours(1)));
    let daily = queueing::enqueue(&mut conn, "noop", None, &held)
        .unwrap()
        .id;
    let (claimed, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    let daily_key = claimed.iter().find(|t| t.key.task_id == daily).unwrap().key;
    finish(&mut conn, "a", &[daily_key]);
    let within = queueing::enqueue(&mut conn, "noop", None, &held).unwrap();
    assert_eq!(
        (within.id, within.existed),
        (daily, true),
        "ended within the hour: the same"
    );
}

#[test]
fn max_running_holds_across_claimers_and_a_slot_frees_when_a_task_ends() {
    let mut conn = connect(&fresh_database());
    queueing::set_program_options(&mut conn, "noop", options(Some(2), None)).unwrap();
    let queued: Vec<TaskId> = (0..5)
        .map(|_| run(&mut conn, "noop", RunOptions::default()))
        .collect();

    let (a, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&a), queued[..2], "two at most, in queue order");
    let (b, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert!(b.is_empty(), "the other node finds no slot");
    let next = store::next_due(&mut conn).unwrap();
    assert!(
        next.limited_waiting,
        "the engine is told work waits for a slot"
    );

    finish(&mut conn, "a", &[a[0].key]);
    let (b, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&b), vec![queued[2]], "one slot freed, one task");

    // No limit: the rest at once.
    queueing::set_program_options(&mut conn, "noop", options(None, None)).unwrap();
    let (rest, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&rest), queued[3..]);
}

#[test]
fn an_attempt_that_ended_frees_its_slot_for_its_node_before_its_outcome_is_recorded() {
    let mut conn = connect(&fresh_database());
    queueing::set_program_options(&mut conn, "noop", options(Some(2), None)).unwrap();
    let queued: Vec<TaskId> = (0..4)
        .map(|_| run(&mut conn, "noop", RunOptions::default()))
        .collect();
    let (a, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&a), queued[..2]);

    // Node a's first attempt returned; the writer has not recorded it yet. A claim that says
    // so gets that slot (the program runs two, not three).
    let ended = a[0].key;
    let wrong_attempt = AttemptKey {
        attempt: ended.attempt + 1,
        ..ended
    };
    let (none, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[wrong_attempt]).unwrap();
    assert!(none.is_empty(), "an attempt is matched by its number too");
    let (next, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[ended]).unwrap();
    assert_eq!(
        ids(&next),
        vec![queued[2]],
        "the ended attempt's slot, once"
    );

    // Node b knows nothing of it: the row still says running, so b finds no slot.
    let (b, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert!(b.is_empty(), "another node counts the unrecorded attempt");

    // Recorded: the slot is not handed out a second time.
    finish(&mut conn, "a", &[ended]);
    let (again, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[ended]).unwrap();
    assert!(again.is_empty(), "two running: {:?}", ids(&again));
    let (b, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert!(b.is_empty());
}

#[test]
fn a_node_alone_on_a_limited_program_holds_more_of_its_tasks_and_others_wait_for_the_limit() {
    let mut conn = connect(&fresh_database());
    queueing::set_program_options(&mut conn, "noop", options(Some(2), None)).unwrap();
    let queued: Vec<TaskId> = (0..12)
        .map(|_| run(&mut conn, "noop", RunOptions::default()))
        .collect();

    // Node a runs the program alone: it may hold more than two (its executor starts two at
    // once, each task's max_running says so).
    let holding = ClaimRequest::new(10).holding(100);
    let (a, _) = store::claim(&mut conn, "a", holding, &[]).unwrap();
    assert_eq!(
        ids(&a),
        queued[..10],
        "a local queue's worth, in queue order"
    );
    assert!(a.iter().all(|t| t.limited && t.max_running == Some(2)));
    // While a holds two or more, node b gets none, however much it would hold.
    let (b, _) = store::claim(&mut conn, "b", holding, &[]).unwrap();
    assert!(b.is_empty(), "{:?}", ids(&b));

    // a is down to one: b gets the other slot, and from then on a holds no more than the
    // limit allows either (two nodes: nobody holds ahead).
    let done: Vec<AttemptKey> = a[..9].iter().map(|t| t.key).collect();
    finish(&mut conn, "a", &done);
    let (b, _) = store::claim(&mut conn, "b", holding, &[]).unwrap();
    assert_eq!(ids(&b), vec![queued[10]]);
    let (a_again, _) = store::claim(&mut conn, "a", holding, &[]).unwrap();
    assert!(a_again.is_empty(), "a and b hold two: {:?}", ids(&a_again));

    // A per-minute program is never held ahead (its starts are counted when claimed).
    finish(&mut conn, "a", &[a[9].key]);
    finish(&mut conn, "b", &[b[0].key]);
    queueing::set_program_options(&mut conn, "noop", options(Some(2), Some(100))).unwrap();
    let (rated, _) = store::claim(&mut conn, "a", holding, &[]).unwrap();
    assert_eq!(
        ids(&rated),
        vec![queued[11]],
        "what was left, within the limit"
    );
    let more: Vec<TaskId> = (0..3)
        .map(|_| run(&mut conn, "noop", RunOptions::default()))
        .collect();
    let (rated, _) = store::claim(&mut conn, "a", holding, &[]).unwrap();
    assert_eq!(ids(&rated), more[..1], "two running at most");
}

#[test]
fn per_minute_counts_starts_in_the_last_sixty_seconds() {
    let mut conn = connect(&fresh_database());
    queueing::set_program_options(&mut conn, "noop", options(None, Some(3))).unwrap();
    for _ in 0..8 {
        run(&mut conn, "noop", RunOptions::default());
    }
    let (first, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    finish(
        &mut conn,
        "a",
        &first.iter().map(|t| t.key).collect::<Vec<_>>(),
    );
    assert_eq!(first.len(), 3);
    let (none, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert!(
        none.is_empty(),
        "three started this minute, though none runs now"
    );

    // A minute on, the window holds none of them.
    diesel::sql_query(
        "UPDATE task_rate_starts SET started_at = started_at - interval '61 seconds'",
    )
    .execute(&mut conn)
    .unwrap();
    let (next, _) = store::claim(&mut conn, "b", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(next.len(), 3);
}

#[test]
fn a_task_waits_for_its_upstream_and_a_failure_cancels_everything_downstream() {
    let mut conn = connect(&fresh_database());
    let a = run(&mut conn, "noop", RunOptions::default());
    let b = run(&mut conn, "noop", after(&[a]));
    let c = run(&mut conn, "noop", after(&[b]));
    let d = run(&mut conn, "noop", after(&[a, c]));
    assert_eq!(status(&mut conn, b).0, TaskStatus::Pending);

    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(
        ids(&claimed),
        vec![a],
        "only the task that waits for nothing"
    );
    finish(&mut conn, "w", &[claimed[0].key]);
    assert_eq!(status(&mut conn, b).0, TaskStatus::Scheduled);
    assert_eq!(
        status(&mut conn, d).0,
        TaskStatus::Pending,
        "still waits for c"
    );

    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&claimed), vec![b]);
    let upstream = bookstore::tasks::flow::upstream(&mut conn, b).unwrap();
    assert_eq!(upstream.len(), 1);
    assert_eq!(
        upstream[0].result.as_deref(),
        Some(format!("result of {a}").as_str())
    );

    store::fail(&mut conn, "w", claimed[0].key, "boom", false, 10).unwrap();
    let (c_status, c_result) = status(&mut conn, c);
    assert_eq!(c_status, TaskStatus::Cancelled);
    assert_eq!(
        c_result.as_deref(),
        Some(
            format!("Cancelled before it started: task {b}, which it waits for, failed.").as_str()
        )
    );
    let (d_status, d_result) = status(&mut conn, d);
    assert_eq!(d_status, TaskStatus::Cancelled, "transitively");
    assert!(d_result.unwrap().contains(&format!("task {c}")));
    let started: Option<chrono::DateTime<Utc>> = tasks::table
        .filter(tasks::id.eq(d))
        .select(tasks::start_time)
        .first(&mut conn)
        .unwrap();
    assert!(started.is_none(), "it never started");
}

/// Records `key`'s success, letting the statement claim up to `room` of what it releases.
fn finish_claiming(
    conn: &mut PgConnection,
    worker: &str,
    key: AttemptKey,
    room: usize,
) -> Vec<TaskId> {
    let finished = store::finish_and_claim(conn, worker, &[success(key)], room).unwrap();
    assert!(finished.recorded.contains(&key), "the success is recorded");
    ids(&finished.claimed)
}

fn worker_of(conn: &mut PgConnection, id: TaskId) -> Option<String> {
    tasks::table
        .filter(tasks::id.eq(id))
        .select(tasks::worker_id)
        .first(conn)
        .unwrap()
}

#[test]
fn a_finish_claims_what_it_releases_within_its_room_and_never_below_a_waiting_priority() {
    let mut conn = connect(&fresh_database());
    diesel::sql_query(
        "SELECT register_program('noop_paused', 'noop'), register_program('noop_limited', 'noop')",
    )
    .execute(&mut conn)
    .unwrap();
    queueing::set_program_options(&mut conn, "noop_limited", options(Some(4), None)).unwrap();
    let x = run(&mut conn, "noop", with_priority(1));
    let a = run(&mut conn, "noop", RunOptions::default());
    let waiting = run(&mut conn, "noop", RunOptions::default());
    // Three wait for a alone; one (of a low priority) also for x; one's program is paused;
    // one is limited.
    let first = run(&mut conn, "noop", after(&[a]));
    let second = run(
        &mut conn,
        "noop",
        RunOptions {
            priority: Some(3),
            ..after(&[a])
        },
    );
    let third = run(&mut conn, "noop", after(&[a]));
    let low = run(
        &mut conn,
        "noop",
        RunOptions {
            priority: Some(-2),
            ..after(&[a, x])
        },
    );
    let paused = run(&mut conn, "noop_paused", after(&[a]));
    let limited = run(&mut conn, "noop_limited", after(&[a]));
    diesel::sql_query("UPDATE programs SET paused = true WHERE name = 'noop_paused'")
        .execute(&mut conn)
        .unwrap();

    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(2), &[]).unwrap();
    assert_eq!(ids(&claimed), vec![x, a], "`waiting` (0) stays queued");

    let taken = finish_claiming(&mut conn, "w", claimed[1].key, 2);
    assert_eq!(
        taken,
        vec![second, first],
        "two (the room), the highest priority first, then in queue order; at `waiting`'s \
         level a workflow's next task may go before it"
    );
    for id in [second, first] {
        assert_eq!(status(&mut conn, id).0, TaskStatus::Running);
        assert_eq!(worker_of(&mut conn, id).as_deref(), Some("w"));
    }
    assert_eq!(
        status(&mut conn, third).0,
        TaskStatus::Scheduled,
        "no room left: queued"
    );
    assert_eq!(
        status(&mut conn, low).0,
        TaskStatus::Pending,
        "still waits for x"
    );
    assert_eq!(
        status(&mut conn, paused).0,
        TaskStatus::Scheduled,
        "a paused program's task waits in the queue"
    );
    assert_eq!(
        status(&mut conn, limited).0,
        TaskStatus::Scheduled,
        "a limited program's task is claimed through its limit"
    );

    // `low` (-2) is released whole, but `waiting` and `third` (0) wait in the queue above it.
    let taken = finish_claiming(&mut conn, "w", claimed[0].key, 5);
    assert!(taken.is_empty(), "claimed {taken:?}");
    assert_eq!(status(&mut conn, low).0, TaskStatus::Scheduled);
    assert_eq!(status(&mut conn, waiting).0, TaskStatus::Scheduled);
}

#[test]
fn waiting_for_a_task_that_does_not_exist_or_for_itself_is_refused() {
    let mut conn = connect(&fresh_database());
    let a = run(&mut conn, "noop", RunOptions::default());
    // The only cycle one could try: a task waiting for the id it is about to get.
    let own_id = TaskId(a.0 + 1);
    let refused = queueing::enqueue(&mut conn, "noop", None, &after(&[own_id])).unwrap_err();
    assert_eq!(refused.code(), "unknown_upstream");
    assert_eq!(
        refused.to_string(),
        format!("cannot wait for task {own_id}: there is no such task")
    );
    let count: i64 = tasks::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 1, "nothing was queued");
}

#[test]
fn a_batch_whose_last_two_members_end_at_once_on_two_nodes_calls_back_once() {
    let url = fresh_database();
    let mut conn = connect(&url);
    let params = vec![serde_json::json!({}); 4];
    let batch =
        queueing::enqueue_batch(&mut conn, "noop", &params, Some("hello_world"), None).unwrap();
    let (first, _) = store::claim(&mut conn, "a", ClaimRequest::new(2), &[]).unwrap();
    finish(
        &mut conn,
        "a",
        &first.iter().map(|t| t.key).collect::<Vec<_>>(),
    );
    let (last_two, _) = store::claim(&mut conn, "a", ClaimRequest::new(2), &[]).unwrap();
    assert_eq!(last_two.len(), 2);

    // Each node finishes one of the last two, at the same moment.
    let start = Arc::new(Barrier::new(2));
    let nodes: Vec<_> = last_two
        .iter()
        .map(|task| {
            let (url, start, key) = (url.clone(), start.clone(), task.key);
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                start.wait();
                finish(&mut conn, "a", &[key]);
            })
        })
        .collect();
    for node in nodes {
        node.join().unwrap();
    }

    let (finished, callback): (i32, Option<i64>) = task_batches::table
        .find(batch)
        .select((task_batches::finished, task_batches::callback_task_id))
        .first(&mut conn)
        .unwrap();
    assert_eq!(finished, 4);
    let callback = TaskId(callback.expect("the callback was queued"));
    let callbacks: i64 = tasks::table
        .inner_join(bookstore::db::schema::programs::table)
        .filter(bookstore::db::schema::programs::name.eq("hello_world"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(callbacks, 1, "exactly one callback");
    let counts = bookstore::tasks::flow::batch_of_callback(&mut conn, callback)
        .unwrap()
        .unwrap();
    assert_eq!((counts.size, counts.finished, counts.failed), (4, 4, 0));
}

#[test]
fn a_snooze_puts_the_task_back_without_spending_an_attempt() {
    let mut conn = connect(&fresh_database());
    let id = run(&mut conn, "noop", RunOptions::default());
    let attempts_of = |conn: &mut PgConnection| -> (i32, i32) {
        tasks::table
            .filter(tasks::id.eq(id))
            .select((tasks::attempt, tasks::max_attempts))
            .first(conn)
            .unwrap()
    };
    let before = attempts_of(&mut conn);
    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(1), &[]).unwrap();
    assert_eq!(claimed[0].key.attempt, 1);
    let wait = std::time::Duration::from_millis(200);
    let now = store::snooze(&mut conn, "w", claimed[0].key, wait).unwrap();
    assert_eq!(now, Some(TaskStatus::Scheduled));
    assert_eq!(
        attempts_of(&mut conn),
        before,
        "the attempt count is as before"
    );
    let (early, _) = store::claim(&mut conn, "w", ClaimRequest::new(1), &[]).unwrap();
    assert!(early.is_empty(), "not before its time");
    // Its time comes.
    diesel::sql_query("UPDATE tasks SET run_after = now()")
        .execute(&mut conn)
        .unwrap();
    let (again, _) = store::claim(&mut conn, "w", ClaimRequest::new(1), &[]).unwrap();
    assert_eq!(again[0].key.attempt, 1, "the next run is attempt 1 again");
}

#[test]
fn many_tasks_queue_in_one_call_and_one_bad_element_refuses_them_all() {
    let mut conn = connect(&fresh_database());
    let params: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"name": format!("reader {i}")}))
        .collect();
    let queued = queueing::enqueue_many(&mut conn, "hello_world", &params, Some(3)).unwrap();
    assert_eq!(queued.len(), 100);
    assert!(
        queued.windows(2).all(|w| w[0] < w[1]),
        "ids in the order given"
    );

    let mut bad = params.clone();
    bad[41] = serde_json::json!({"name": 7});
    let refused = queueing::enqueue_many(&mut conn, "hello_world", &bad, None).unwrap_err();
    assert_eq!(refused.code(), "invalid_parameters");
    assert!(
        refused.to_string().starts_with("task 42 of 100:"),
        "{refused}"
    );
    let count: i64 = tasks::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 100, "none of the refused call's tasks");
    let _ = ops::get_programs(&mut conn).unwrap();
}

#[test]
fn plain_work_that_fills_every_claim_does_not_starve_a_limited_program() {
    let mut conn = connect(&fresh_database());
    queueing::set_program_options(&mut conn, "noop", options(Some(1), None)).unwrap();
    for _ in 0..5 {
        run(&mut conn, "hello_world", RunOptions::default());
    }
    let limited = run(&mut conn, "noop", RunOptions::default());
    let (claimed, _) = store::claim(&mut conn, "a", ClaimRequest::new(2), &[]).unwrap();
    assert!(
        ids(&claimed).contains(&limited),
        "the limited program's task is in a full claim"
    );
}

#[test]
fn a_batch_whose_callback_cannot_be_queued_still_records_its_members_ends() {
    let mut conn = connect(&fresh_database());
    let bad = queueing::enqueue_batch(
        &mut conn,
        "noop",
        &[serde_json::json!({})],
        Some("hello_world"),
        Some(&serde_json::json!({"name": 7})),
    )
    .unwrap_err();
    assert_eq!(
        bad.code(),
        "invalid_parameters",
        "checked when the batch is queued"
    );

    let batch = queueing::enqueue_batch(
        &mut conn,
        "noop",
        &[serde_json::json!({})],
        Some("hello_world"),
        None,
    )
    .unwrap();
    // The callback's program is disabled before the batch ends.
    diesel::sql_query("UPDATE programs SET enabled = false WHERE name = 'hello_world'")
        .execute(&mut conn)
        .unwrap();
    let (claimed, _) = store::claim(&mut conn, "a", ClaimRequest::new(10), &[]).unwrap();
    finish(&mut conn, "a", &[claimed[0].key]);
    let (callback, error): (Option<i64>, Option<String>) = task_batches::table
        .find(batch)
        .select((task_batches::callback_task_id, task_batches::callback_error))
        .first(&mut conn)
        .unwrap();
    assert_eq!(callback, None);
    assert_eq!(error.as_deref(), Some("program hello_world is disabled"));
}

#[test]
fn retrying_a_dependent_cancelled_by_its_failed_upstream_makes_it_wait_again() {
    let mut conn = connect(&fresh_database());
    let a = run(&mut conn, "noop", RunOptions::default());
    let b = run(&mut conn, "noop", after(&[a]));
    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(10), &[]).unwrap();
    store::fail(&mut conn, "w", claimed[0].key, "boom", false, 10).unwrap();
    assert_eq!(status(&mut conn, b).0, TaskStatus::Cancelled);

    let retry = |conn: &mut PgConnection, id: TaskId| {
        diesel::sql_query(format!("SELECT retry_task({id})"))
            .execute(conn)
            .unwrap();
    };
    retry(&mut conn, b);
    assert_eq!(
        status(&mut conn, b).0,
        TaskStatus::Pending,
        "it waits for a again"
    );
    retry(&mut conn, a);
    let (claimed, _) = store::claim(&mut conn, "w", ClaimRequest::new(10), &[]).unwrap();
    assert_eq!(ids(&claimed), vec![a], "only the upstream runs first");
    finish(&mut conn, "w", &[claimed[0].key]);
    assert_eq!(status(&mut conn, b).0, TaskStatus::Scheduled);
}
