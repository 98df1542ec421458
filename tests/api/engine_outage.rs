//! The task engine across a database outage longer than the lease: two worker nodes, tasks
//! finishing while PostgreSQL is down, and a restart. The story the issue told (tasks run
//! three times, outcomes lost) must not happen: no task runs more than twice, none is lost,
//! and one that completed is not run again.

use bookstore::ids::TaskId;
use std::time::Duration;

use bookstore::{
    config::{Config, Role},
    db::{
        cluster::EmbeddedCluster,
        schema::{programs, tasks},
    },
    tasks::ops,
};
use diesel::{Connection, PgConnection, prelude::*};
use serde_json::json;

use crate::helpers::{private_cluster, spawn_worker, wait_until};

/// How long the database is away: the fault itself, not a wait for something to happen. Longer
/// than the lease (3 s) and than the long programs still running (2 s), so they complete while
/// their outcomes cannot be written.
const OUTAGE: Duration = Duration::from_secs(8);

fn worker_settings(config: &mut Config) {
    config.role = Role::Worker;
    config.task_concurrency = 4;
    config.task_lease_seconds = 3;
    config.task_heartbeat_seconds = 1;
    config.task_retry_base_ms = 50;
    config.task_grace_seconds = 10;
}

/// (id, program, status, attempt) of every task but the scheduled built-ins.
fn task_rows(url: &str) -> Vec<(TaskId, String, String, i32)> {
    let mut conn = PgConnection::establish(url).unwrap();
    tasks::table
        .inner_join(programs::table)
        .filter(programs::name.eq_any(["hello_world", "demo_long"]))
        .order(tasks::id)
        .select((tasks::id, programs::name, tasks::status, tasks::attempt))
        .load(&mut conn)
        .unwrap()
}

#[actix_web::test]
async fn an_outage_longer_than_the_lease_loses_nothing_and_reruns_nothing_that_completed() {
    bookstore::telemetry::init_for_tests();
    let (options, mut cluster, url) = private_cluster("engine_outage", false);
    // Quick tasks that end before the outage, and long ones that are running when it starts
    // and complete while the database is away.
    let (quick, long) = {
        let mut conn = PgConnection::establish(&url).unwrap();
        let quick: Vec<TaskId> = (0..10)
            .map(|_| ops::run_program(&mut conn, "hello_world", None).unwrap())
            .collect();
        let long: Vec<TaskId> = (0..12)
            .map(|_| {
                ops::run_program(
                    &mut conn,
                    "demo_long",
                    Some(&json!({"seconds": 2, "steps": 1})),
                )
                .unwrap()
            })
            .collect();
        (quick, long)
    };
    let (stop_a, node_a) = spawn_worker(&url, worker_settings);
    let (stop_b, node_b) = spawn_worker(&url, worker_settings);

    // Arrange: the quick ones done, eight long ones running on the two nodes.
    wait_until(
        60,
        "the quick tasks to finish and 8 long ones to run",
        || async {
            let rows = task_rows(&url);
            let quick_done = rows
                .iter()
                .filter(|r| r.1 == "hello_world" && r.2 == "finished")
                .count();
            let running = rows
                .iter()
                .filter(|r| r.1 == "demo_long" && r.2 == "running")
                .count();
            // Each node holds its four running plus a few claimed in its local queue.
            quick_done == quick.len() && running >= 8
        },
    )
    .await;
    let running_at_outage: Vec<TaskId> = task_rows(&url)
        .into_iter()
        .filter(|r| r.2 == "running")
        .map(|r| r.0)
        .collect();

    // Act: PostgreSQL goes away for longer than the lease; the running programs complete
    // meanwhile (their outcomes cannot be written). Then it comes back.
    cluster.stop().unwrap();
    tokio::time::sleep(OUTAGE).await;
    let _restarted = EmbeddedCluster::start(&options).unwrap();

    // Assert: every task ends, each finished, none more than twice, and those that completed
    // during the outage were recorded, not run again.
    wait_until(180, "every task to finish after the outage", || async {
        PgConnection::establish(&url).is_ok() && task_rows(&url).iter().all(|r| r.2 == "finished")
    })
    .await;
    let rows = task_rows(&url);
    assert_eq!(rows.len(), quick.len() + long.len(), "no task is lost");
    for (id, program, _, attempt) in &rows {
        assert!(*attempt <= 2, "task {id} ({program}) ran {attempt} times");
        if quick.contains(id) || running_at_outage.contains(id) {
            assert_eq!(
                *attempt, 1,
                "task {id} completed (before or during the outage) and must not run again"
            );
        }
    }

    stop_a.stop();
    stop_b.stop();
    node_a.await.unwrap().unwrap();
    node_b.await.unwrap().unwrap();
}
