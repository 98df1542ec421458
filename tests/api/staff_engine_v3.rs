//! Engine v3 on the staff pages, as staff see them: a program's priority and limits shown and
//! changed (bad values named at their field), the run form's advanced section (priority,
//! waiting for other tasks, a unique key whose second run lands on the first task), a task's
//! links and its workflow drawn, a batch's page, and the task list's new filters.

use bookstore::{
    config::Role,
    db::schema::{audit_events, tasks},
    ids::TaskId,
    tasks::{
        flow, ops,
        queueing::{self, RunOptions},
    },
};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_is_redirect_to, spawn_app, spawn_app_with, wait_until};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");

async fn staff_app() -> TestApp {
    let app = spawn_app().await; // no engine: queued tasks stay queued
    app.log_in_as(STAFF.0, STAFF.1).await;
    app
}

async fn enqueue(app: &TestApp, program: &'static str, options: RunOptions) -> TaskId {
    app.db(move |conn| {
        queueing::enqueue(conn, program, Some(&json!({})), &options)
            .unwrap()
            .id
    })
    .await
}

fn after(ids: &[TaskId]) -> RunOptions {
    RunOptions {
        after: ids.to_vec(),
        ..RunOptions::default()
    }
}

/// Task ids in a list page, in order.
fn listed(page: &str) -> Vec<TaskId> {
    page.split("<tr data-task-id=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap().parse().unwrap())
        .collect()
}

async fn task_count(app: &TestApp) -> i64 {
    app.db(|conn| tasks::table.count().get_result(conn).unwrap())
        .await
}

#[tokio::test]
async fn staff_see_and_change_a_programs_priority_and_limits() {
    let app = staff_app().await;
    let programs = app.page("/admin/programs").await;
    let import_row = programs
        .split("<tr>")
        .find(|row| row.contains("/admin/programs/import_catalog\""))
        .expect("import_catalog is listed");
    assert!(import_row.contains("one at a time"), "{import_row}");

    let page = app.page("/admin/programs/noop").await;
    assert!(page.contains("action=\"/admin/programs/noop/options\""));
    let saved = app
        .submit(
            "/admin/programs/noop",
            "/admin/programs/noop/options",
            &[
                ("priority", "5"),
                ("max_running", "4"),
                ("per_minute", "60"),
            ],
        )
        .await;
    assert_is_redirect_to(&saved, "/admin/programs/noop");
    let page = app.page("/admin/programs/noop").await;
    assert!(page.contains("Options of noop saved"), "{page}");
    assert!(page.contains("at most 4 at once") && page.contains("60 starts a minute"));
    let stored = app
        .db(|conn| ops::get_programs(conn).unwrap())
        .await
        .into_iter()
        .find(|p| p.name == "noop")
        .unwrap();
    assert_eq!(
        (stored.priority, stored.max_running, stored.per_minute),
        (5, Some(4), Some(60))
    );
    let recorded: Vec<String> = app
        .db(|conn| {
            audit_events::table
                .filter(audit_events::action.eq("program.options"))
                .select(audit_events::actor)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].contains("staff"), "{recorded:?}");

    // Empty limits remove them; bad values are named at their fields and nothing changes.
    let refused = app
        .submit(
            "/admin/programs/noop",
            "/admin/programs/noop/options",
            &[
                ("priority", "101"),
                ("max_running", "0"),
                ("per_minute", "often"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    for field in ["priority", "max_running", "per_minute"] {
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{field}: {page}"
        );
    }
    assert!(page.contains("value=\"often\""), "what was typed stays");
    let cleared = app
        .submit(
            "/admin/programs/noop",
            "/admin/programs/noop/options",
            &[("priority", "0"), ("max_running", ""), ("per_minute", "")],
        )
        .await;
    assert_is_redirect_to(&cleared, "/admin/programs/noop");
    let page = app.page("/admin/programs/noop").await;
    assert!(
        page.contains("running: no limit; starts: no limit"),
        "{page}"
    );
}

#[tokio::test]
async fn the_advanced_run_form_queues_with_priority_a_wait_and_a_unique_key() {
    let app = staff_app().await;
    let first = enqueue(&app, "noop", RunOptions::default()).await;
    let form = app.page("/admin/programs/hello_world/run").await;
    assert!(form.contains("<details class=\"advanced\""), "{form}");
    assert!(
        !form.contains("<details class=\"advanced\" open"),
        "closed until used"
    );

    let fields = |key: &'static str, wait: String| {
        vec![
            ("param_name", "Ada".to_owned()),
            ("priority", "7".to_owned()),
            ("unique_key", key.to_owned()),
            ("unique_for", "2".to_owned()),
            ("unique_for_unit", "hours".to_owned()),
            ("after", wait),
        ]
    };
    let run = |fields: Vec<(&'static str, String)>| {
        let app = app.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.submit(
                "/admin/programs/hello_world/run",
                "/admin/programs/hello_world/run",
                &pairs,
            )
            .await
        }
    };
    let queued = run(fields("order-42", format!("#{first}"))).await;
    assert_eq!(queued.status(), 303);
    let location = queued.headers()["location"].to_str().unwrap().to_owned();
    let id: TaskId = location.rsplit('/').next().unwrap().parse().unwrap();
    let (priority, key, status): (i32, Option<String>, String) = app
        .db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select((tasks::priority, tasks::unique_key, tasks::status))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        (priority, key.as_deref(), status.as_str()),
        (7, Some("order-42"), "pending")
    );
    let page = app.page(&location).await;
    assert!(
        page.contains(&format!("it starts once task #{first} has finished")),
        "{page}"
    );
    assert!(page.contains("<code>order-42</code>"));
    assert!(page.contains(&format!("href=\"/admin/tasks/{first}\"")));

    // The same key again: nothing new, and the page of the task that holds it says so.
    let before = task_count(&app).await;
    let again = run(fields("order-42", String::new())).await;
    assert_is_redirect_to(&again, &location);
    assert_eq!(task_count(&app).await, before);
    let page = app.page(&location).await;
    assert!(
        page.contains(&format!(
            "A task with key “order-42” is already queued: task #{id}"
        )),
        "{page}"
    );

    // Bad options are named at their fields; nothing is queued.
    let bad = vec![
        ("param_name", "Ada".to_owned()),
        ("priority", "500".to_owned()),
        ("unique_for", "5".to_owned()),
        ("unique_for_unit", "minutes".to_owned()),
        ("after", "12, twelve".to_owned()),
    ];
    let refused = run(bad).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("<details class=\"advanced\" open"));
    for field in ["priority", "unique_for", "after"] {
        assert!(
            page.contains(&format!("id=\"{field}-error\"")),
            "{field}: {page}"
        );
    }
    assert!(page.contains("“twelve” is not a task number"));
    // A task that does not exist is refused by run_program, at the same field.
    let refused = run(fields("order-43", "999999".into())).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"after-error\""), "{page}");
    assert!(page.contains("no task 999999"), "{page}");
    assert_eq!(task_count(&app).await, before);
}

#[tokio::test]
async fn a_task_page_lists_its_links_and_draws_its_workflow() {
    let app = staff_app().await;
    let a = enqueue(&app, "noop", RunOptions::default()).await;
    let b = enqueue(&app, "hello_world", after(&[a])).await;
    let c = enqueue(&app, "noop", after(&[b])).await;
    let page = app.page(&format!("/admin/tasks/{b}")).await;
    let section = |id: &str| {
        page.split(&format!("id=\"{id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .unwrap_or_else(|| panic!("no {id} in {page}"))
            .to_owned()
    };
    let waits_for = section("waits-for");
    assert!(waits_for.contains(&format!("href=\"/admin/tasks/{a}\"")));
    assert!(waits_for.contains("status-scheduled"), "{waits_for}");
    let waited_by = section("waited-for-by");
    assert!(waited_by.contains(&format!("href=\"/admin/tasks/{c}\"")));
    assert!(waited_by.contains("status-pending"));
    let workflow = section("workflow");
    assert!(workflow.contains("<svg"), "{workflow}");
    for id in [a, b, c] {
        assert!(workflow.contains(&format!("data-node=\"{id}\"")), "{id}");
    }
    assert_eq!(workflow.matches("class=\"workflow-edge").count(), 2);
    assert_eq!(workflow.matches("workflow-current").count(), 1);
    assert!(!workflow.contains("larger than shown"));

    // A plain task has no such sections.
    let plain = enqueue(&app, "noop", RunOptions::default()).await;
    let page = app.page(&format!("/admin/tasks/{plain}")).await;
    assert!(!page.contains("id=\"workflow\"") && !page.contains("id=\"waits-for\""));

    // A large workflow is cut, and the page says so.
    let fan = app
        .db(move |conn| {
            (0..65)
                .map(|_| {
                    let options = after(&[a]);
                    queueing::enqueue(conn, "noop", None, &options).unwrap().id
                })
                .last()
                .unwrap()
        })
        .await;
    let page = app.page(&format!("/admin/tasks/{fan}")).await;
    assert!(page.contains("larger than shown"), "{page}");
    assert_eq!(page.matches("data-node=").count(), 60);
}

#[actix_web::test]
async fn a_batch_page_shows_its_counts_members_and_callback() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let batch = app
        .db(|conn| {
            let params = vec![json!({}); 3];
            queueing::enqueue_batch(conn, "noop", &params, Some("hello_world"), None).unwrap()
        })
        .await;
    let callback = || async {
        let page = app.page(&format!("/admin/batches/{batch}")).await;
        page.split("class=\"batch-callback\"><a href=\"/admin/tasks/")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap().to_owned())
    };
    wait_until(60, "the batch's callback to be queued", || async {
        callback().await.is_some()
    })
    .await;
    let page = app.page(&format!("/admin/batches/{batch}")).await;
    let compact: String = page.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(compact.contains("3 finished, 0 failed of 3"), "{page}");
    assert!(compact.contains("<span class=\"stat-value\">0</span> still to end"));
    assert!(page.contains("(hello_world)"));
    let members = listed(&page);
    assert_eq!(members.len(), 3);

    let member = app.page(&format!("/admin/tasks/{}", members[0])).await;
    assert!(
        member.contains(&format!("href=\"/admin/batches/{batch}\"")),
        "{member}"
    );
    let callback_id = callback().await.unwrap();
    let called_back = app.page(&format!("/admin/tasks/{callback_id}")).await;
    assert!(called_back.contains(&format!(
        "The callback of <a href=\"/admin/batches/{batch}\""
    )));
}

#[tokio::test]
async fn a_large_batch_pages_its_members_and_counts_a_cancelled_one() {
    let app = staff_app().await;
    let batch = app
        .db(|conn| {
            let params = vec![json!({}); 55];
            queueing::enqueue_batch(conn, "noop", &params, None, None).unwrap()
        })
        .await;
    let first = app.page(&format!("/admin/batches/{batch}")).await;
    let shown = listed(&first);
    assert_eq!(shown.len(), 50);
    app.db(move |conn| ops::cancel_task(conn, shown[0]).unwrap())
        .await;
    let first = app.page(&format!("/admin/batches/{batch}")).await;
    let compact: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(compact.contains("0 finished, 1 failed of 55"), "{first}");
    assert!(compact.contains("none</dd>"), "no callback");
    let next = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = listed(&app.page(&next).await);
    assert_eq!(second.len(), 5);
    assert!(second.iter().all(|id| !listed(&first).contains(id)));
    assert_eq!(
        app.get(&format!("/admin/batches/{batch}?after=x"))
            .await
            .status(),
        400
    );
    assert_eq!(app.get("/admin/batches/999999").await.status(), 404);
}

#[tokio::test]
async fn the_task_list_filters_pending_tasks_batches_and_priorities() {
    let app = staff_app().await;
    let a = enqueue(&app, "noop", RunOptions::default()).await;
    let waiting = enqueue(&app, "noop", after(&[a])).await;
    let urgent = enqueue(
        &app,
        "noop",
        RunOptions {
            priority: Some(9),
            unique_key: Some("nightly".into()),
            ..RunOptions::default()
        },
    )
    .await;
    let batch = app
        .db(|conn| {
            let params: Vec<Value> = vec![json!({}); 2];
            queueing::enqueue_batch(conn, "noop", &params, None, None).unwrap()
        })
        .await;

    let all = app.page("/admin/tasks").await;
    assert!(all.contains("<option value=\"pending\""));
    assert!(
        all.contains("priority 9") && all.contains("<code>nightly</code>"),
        "{all}"
    );
    assert!(all.contains(&format!("href=\"/admin/batches/{batch}\"")));
    assert_eq!(
        listed(&app.page("/admin/tasks?status=pending").await),
        [waiting]
    );
    assert_eq!(listed(&app.page("/admin/tasks?priority=9").await), [urgent]);
    let members = listed(&app.page(&format!("/admin/tasks?batch={batch}")).await);
    assert_eq!(members.len(), 2);
    assert!(!members.contains(&a) && !members.contains(&urgent));
    let unread = app.page("/admin/tasks?batch=first&priority=1000").await;
    assert!(unread.contains("batch is a batch number like 12; that filter is ignored"));
    assert!(unread.contains("priority is a whole number from -100 to 100"));
    assert_eq!(
        listed(&unread).len(),
        5,
        "the unreadable filters are ignored"
    );
}

#[tokio::test]
async fn a_batch_whose_callback_could_not_be_queued_says_why_on_its_page() {
    let app = staff_app().await;
    let batch = app
        .db(|conn| {
            queueing::enqueue_batch(conn, "noop", &[json!({})], Some("hello_world"), None).unwrap()
        })
        .await;
    let member = app
        .db(move |conn| flow::batch_member_ids(conn, batch).unwrap()[0])
        .await;
    // The callback's program is disabled before the batch's one task ends (cancelled here).
    app.db(move |conn| {
        diesel::sql_query("UPDATE programs SET enabled = false WHERE name = 'hello_world'")
            .execute(conn)
            .unwrap();
        ops::cancel_task(conn, member).unwrap()
    })
    .await;

    let page = app.page(&format!("/admin/batches/{batch}")).await;
    let compact: String = page.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(compact.contains("0 finished, 1 failed of 1"), "{page}");
    assert!(
        compact.contains("not queued: program hello_world is disabled"),
        "{page}"
    );
}
