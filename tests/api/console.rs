//! The staff task console: finding tasks, acting on many at once, pausing a queue, running
//! again with changes, and what a task waiting to retry says.

use bookstore::ids::TaskId;
use bookstore::{
    audit::{self, Actor, AuditContext},
    config::{Config, Role},
    db::schema::tasks,
    tasks::ops,
};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, wait_until};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");

/// Queues as the staff member "boss" would (a task queued with no named actor counts as psql).
async fn queue(app: &TestApp, program: &'static str, params: Value) -> TaskId {
    app.db(move |conn| {
        conn.transaction(|conn| {
            let boss = AuditContext::new(Actor::Staff("boss".into()), None);
            audit::act_as(conn, &boss)?;
            ops::run_program(conn, program, Some(&params))
        })
        .unwrap()
    })
    .await
}

async fn status(app: &TestApp, id: TaskId) -> String {
    app.task_status(id).await
}

/// Task ids in a list page, in order.
fn listed(page: &str) -> Vec<TaskId> {
    page.split("<tr data-task-id=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn staff_find_tasks_by_id_parameters_text_and_who_queued_them() {
    let app = spawn_app().await; // no engine: everything stays queued
    app.log_in_as(STAFF.0, STAFF.1).await;
    let slow = queue(&app, "flaky", json!({"failure_percent": 30})).await;
    let sure = queue(
        &app,
        "flaky",
        json!({"failure_percent": 0, "fail_first": 2}),
    )
    .await;
    let ada = queue(&app, "hello_world", json!({"name": "Ada Lovelace"})).await;
    let (ok, out, err) = app.psql("SELECT run_program('noop', NULL)");
    assert!(ok, "{err}");
    let from_psql: TaskId = out.parse().unwrap();

    assert_eq!(
        listed(&app.page(&format!("/admin/tasks?q=%23{sure}")).await),
        [sure]
    );
    let contains = app
        .page("/admin/tasks?q=%7B%22failure_percent%22%3A+30%7D")
        .await;
    assert_eq!(listed(&contains), [slow], "jsonb containment");
    assert_eq!(
        listed(&app.page("/admin/tasks?q=lovelace").await),
        [ada],
        "text"
    );
    assert_eq!(
        listed(&app.page("/admin/tasks?queued_by=psql").await),
        [from_psql]
    );
    assert_eq!(
        listed(&app.page("/admin/tasks?queued_by=boss").await).len(),
        3
    );
    assert_eq!(
        listed(&app.page("/admin/tasks?program=flaky&sort=attempts").await).len(),
        2
    );
    let bad = app.page("/admin/tasks?status=done").await;
    assert!(bad.contains("status must be one of"), "{bad}");
    assert_eq!(
        listed(&bad).len(),
        4,
        "the bad filter is ignored, the rest applies"
    );

    // Past the last page: said so, not "no tasks yet".
    let past = app.page("/admin/tasks?page=999").await;
    assert!(
        past.contains("There is no page 999: the 4 tasks fill 1 page."),
        "{past}"
    );
    assert!(!past.contains("No tasks yet"));

    // The API takes the same query and refuses what it cannot read.
    let api = app
        .client
        .get(format!("{}/api/v1/tasks?queued_by=psql", app.address))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(api["total"], 1);
    let refused = app
        .client
        .get(format!("{}/api/v1/tasks?from=yesterday", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn bulk_actions_say_how_many_they_touch_and_touch_only_those() {
    let app = spawn_app().await; // no engine
    app.log_in_as(STAFF.0, STAFF.1).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(queue(&app, "noop", json!({})).await);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);

    // Two ticked: the confirmation counts them, and nothing happens before "yes".
    let confirm = app
        .page(&format!("/admin/tasks/bulk?action=cancel&id={a}&id={b}"))
        .await;
    assert!(confirm.contains("Cancel 2 tasks?"), "{confirm}");
    assert_eq!(status(&app, a).await, "scheduled");
    let done = app
        .submit(
            &format!("/admin/tasks/bulk?action=cancel&id={a}&id={b}"),
            "/admin/tasks/bulk",
            &[
                ("action", "cancel"),
                ("id", &a.to_string()),
                ("id", &b.to_string()),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert!(app.page("/admin/tasks").await.contains("2 tasks cancelled"));
    assert_eq!(
        (
            status(&app, a).await,
            status(&app, b).await,
            status(&app, c).await
        ),
        ("cancelled".into(), "cancelled".into(), "scheduled".into())
    );

    // Everything matching a filter: retry the cancelled ones.
    let confirm = app
        .page("/admin/tasks/bulk?action=retry&scope=matching&status=cancelled")
        .await;
    assert!(confirm.contains("Retry 2 tasks?"), "{confirm}");
    app.submit(
        "/admin/tasks/bulk?action=retry&scope=matching&status=cancelled",
        "/admin/tasks/bulk",
        &[
            ("action", "retry"),
            ("scope", "matching"),
            ("status", "cancelled"),
        ],
    )
    .await;
    assert_eq!(status(&app, a).await, "scheduled");

    // Delete applies to ended tasks only: these are all queued.
    let nothing = app
        .page(&format!("/admin/tasks/bulk?action=delete&id={c}"))
        .await;
    assert!(nothing.contains("nothing would change"), "{nothing}");

    // The same through the API, with a token-less staff session (CSRF header required).
    let token = crate::helpers::csrf_token_in(&app.page("/admin/tasks").await);
    let api = |body: Value| {
        app.client
            .post(format!("{}/api/v1/tasks/bulk", app.address))
            .header("Origin", app.address.clone())
            .header("X-CSRF-Token", token.clone())
            .json(&body)
            .send()
    };
    let cancelled: Value = api(json!({"action": "cancel", "filter": {"program": "noop"}}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (cancelled["named"].clone(), cancelled["changed"].clone()),
        (json!(3), json!(3))
    );
    let deleted: Value = api(json!({"action": "delete", "ids": [a, b, c]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["changed"], 3);
    let left: i64 = app
        .db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(left, 0);
    let bad = api(json!({"action": "explode", "ids": [1]})).await.unwrap();
    assert_eq!(bad.status(), 400);

    // A task gone meanwhile (deleted above) is skipped, not an error for the others.
    let d = queue(&app, "noop", json!({})).await;
    let partly: Value = api(json!({"action": "cancel", "ids": [a, d]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (partly["named"].clone(), partly["changed"].clone()),
        (json!(2), json!(1))
    );

    // "Everything matching" does what was confirmed: a task queued after the confirmation is
    // not touched by the yes.
    let confirm = app
        .page("/admin/tasks/bulk?action=delete&scope=matching&program=noop")
        .await;
    let up_to = confirm
        .split("name=\"up_to\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let late = queue(&app, "noop", json!({})).await;
    app.submit(
        "/admin/tasks",
        "/admin/tasks/bulk",
        &[
            ("action", "cancel"),
            ("scope", "matching"),
            ("program", "noop"),
            ("up_to", &up_to),
        ],
    )
    .await;
    assert_eq!(
        status(&app, late).await,
        "scheduled",
        "queued after the confirmation"
    );

    // A day the database cannot hold is a 400, not a 500.
    let far = app
        .client
        .get(format!("{}/api/v1/tasks?from=-5000-01-01", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(far.status(), 400);
}

fn engine(config: &mut Config) {
    config.role = Role::All;
    config.task_retry_base_ms = 20;
    config.task_lease_seconds = 3;
    config.task_grace_seconds = 5;
}

#[actix_web::test]
async fn a_paused_program_holds_its_tasks_until_it_is_resumed() {
    let app = spawn_app_with(engine).await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let paused = app
        .submit("/admin/programs", "/admin/programs/noop/pause", &[])
        .await;
    assert_eq!(paused.status(), 303);
    assert!(app.page("/admin/programs").await.contains("noop is paused"));

    let held = queue(&app, "noop", json!({})).await;
    let other = queue(&app, "hello_world", json!({})).await;
    wait_until(30, "the other program's task to finish", || async {
        status(&app, other).await == "finished"
    })
    .await;
    assert_eq!(
        status(&app, held).await,
        "scheduled",
        "the paused queue waits"
    );

    app.submit("/admin/programs", "/admin/programs/noop/resume", &[])
        .await;
    wait_until(30, "the held task to run after resuming", || async {
        status(&app, held).await == "finished"
    })
    .await;
}

#[actix_web::test]
async fn a_task_waiting_to_retry_says_when_and_runs_again_with_changes() {
    let app = spawn_app_with(|config| {
        engine(config);
        // Long enough to see the wait on the page.
        config.task_retry_base_ms = 600_000;
    })
    .await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let id = queue(
        &app,
        "flaky",
        json!({"failure_percent": 0, "fail_first": 1}),
    )
    .await;
    wait_until(30, "the first attempt to fail", || async {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select((tasks::status, tasks::attempt))
                .first::<(String, i32)>(conn)
                .unwrap()
        })
        .await
            == ("scheduled".to_owned(), 1)
    })
    .await;

    let page = app.page(&format!("/admin/tasks/{id}")).await;
    assert!(page.contains("retrying: attempt 2 of 3 at "), "{page}");
    assert!(page.contains("(in "));
    assert!(page.contains("<h2>Attempts</h2>") && page.contains("failing on purpose"));
    assert!(page.contains(&format!("/admin/programs/flaky/run?from_task={id}")));

    // "Run again with changes": the form comes filled with this task's parameters.
    let form = app
        .page(&format!("/admin/programs/flaky/run?from_task={id}"))
        .await;
    assert!(
        form.contains("id=\"param_fail_first\" name=\"param_fail_first\" value=\"1\""),
        "{form}"
    );
    assert!(form.contains(">Failure percent"), "readable labels");
}

#[tokio::test]
async fn rules_the_schema_cannot_say_are_checked_before_queueing() {
    let app = spawn_app().await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let count = || async {
        app.db(|conn| tasks::table.count().get_result::<i64>(conn).unwrap())
            .await
    };

    let backwards = app
        .submit(
            "/admin/programs/sales_report/run",
            "/admin/programs/sales_report/run",
            &[
                ("param_from", "2026-02-10"),
                ("param_to", "2026-02-01"),
                ("param_per", "book"),
            ],
        )
        .await;
    assert_eq!(backwards.status(), 422);
    let page = backwards.text().await.unwrap();
    assert!(
        page.contains("The start date 2026-02-10 is after the end date 2026-02-01."),
        "{page}"
    );

    let missing = app
        .submit(
            "/admin/programs/import_catalog/run",
            "/admin/programs/import_catalog/run",
            &[("param_path", "no-such-file.csv")],
        )
        .await;
    assert_eq!(missing.status(), 422);
    let page = missing.text().await.unwrap();
    assert!(
        page.contains("Nothing was queued") && page.contains("id=\"param_path-error\""),
        "{page}"
    );
    assert_eq!(count().await, 0, "nothing was queued");

    // The API refuses the same, with the field named.
    let token = crate::helpers::csrf_token_in(&app.page("/admin/tasks").await);
    let refused = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .header("Origin", app.address.clone())
        .header("X-CSRF-Token", token)
        .json(&json!({"program": "sales_report", "parameters": {"from": "2026-02-10", "to": "2026-02-01"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["fields"]["from"]
            .as_str()
            .unwrap()
            .contains("is after the end date")
    );
    assert_eq!(count().await, 0);
}
