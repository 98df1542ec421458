//! The staff console in headless Chromium: the "queued" banner follows its task, the task
//! list works on a phone (cards, 44 px tick boxes, a skip link to the list), and the run
//! form's advanced section opens and queues a task that waits (its page keeps polling).

use bookstore::config::Role;
use fantoccini::{
    Client,
    actions::{InputSource, KeyAction, KeyActions},
};
use serde_json::{Value, json};

use crate::{
    browser::{browser, click, css, fill, log_in, screenshot, sideways_overflow},
    helpers::{spawn_app, spawn_app_with, wait_until},
};

async fn run_script(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

#[actix_web::test]
async fn the_queued_banner_follows_its_task_once_it_runs() {
    let app = spawn_app_with(|config| config.role = Role::All).await;
    let client = browser(1280).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;
    client
        .goto(&format!("{}/admin/programs/demo_long/run", app.address))
        .await
        .unwrap();
    fill(&client, "#param_seconds", "60").await;
    fill(&client, "#param_steps", "600").await;
    click(
        &client,
        "form[action='/admin/programs/demo_long/run'] button",
    )
    .await;
    let banner = css(&client, "[data-flash-task]").await;
    let id = banner.attr("data-flash-task").await.unwrap().unwrap();

    // (badge, banner) as the page shows them.
    let shown = || async {
        let value = run_script(
            &client,
            "var badge = document.querySelector('.task-status-badge'); \
             var flash = document.querySelector('[data-flash-task] .flash-text'); \
             return [badge ? badge.textContent.trim() : '', flash ? flash.textContent : ''];",
        )
        .await;
        (
            value[0].as_str().unwrap_or_default().to_owned(),
            value[1].as_str().unwrap_or_default().to_owned(),
        )
    };
    wait_until(30, "the page to show the task running", || async {
        shown().await.0 == "running"
    })
    .await;
    wait_until(10, "the banner to follow the task", || async {
        shown().await.1 == format!("Task #{id} is running.")
    })
    .await;
    let (badge, banner) = shown().await;
    assert!(
        badge == "running" && !banner.contains("queued"),
        "{badge} / {banner}"
    );
    let id: bookstore::ids::TaskId = id.parse().unwrap();
    app.db(move |conn| bookstore::tasks::ops::cancel_task(conn, id).unwrap())
        .await;
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_task_list_fits_a_phone_with_big_tick_boxes_and_a_skip_link() {
    let app = spawn_app().await; // no engine: the tasks stay queued
    for name in ["first", "second", "third"] {
        let params = json!({ "name": name });
        app.db(move |conn| {
            bookstore::tasks::ops::run_program(conn, "hello_world", Some(&params)).unwrap()
        })
        .await;
    }
    let client = browser(390).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;
    client
        .goto(&format!("{}/admin/tasks", app.address))
        .await
        .unwrap();
    css(&client, "tr[data-task-id]").await;
    run_script(
        &client,
        "document.querySelector('tr[data-task-id]').scrollIntoView();",
    )
    .await;
    screenshot(&client, "console-tasks-cards-390px").await;

    let overflow = sideways_overflow(&client).await;
    assert!(
        overflow <= 0.0,
        "the task list scrolls sideways by {overflow} px"
    );
    let status = run_script(
        &client,
        "var r = document.querySelector('tr[data-task-id] .task-status .status').getBoundingClientRect(); \
         return [r.left, r.right, r.width, window.innerWidth];",
    )
    .await;
    let (left, right, width, window) = (
        status[0].as_f64().unwrap(),
        status[1].as_f64().unwrap(),
        status[2].as_f64().unwrap(),
        status[3].as_f64().unwrap(),
    );
    assert!(
        width > 0.0 && left >= 0.0 && right <= window,
        "the status is on screen: {status}"
    );
    let target = run_script(
        &client,
        "var box = document.querySelector('tr[data-task-id] input[name=id]'); \
         var r = (box.closest('label') || box).getBoundingClientRect(); \
         return [r.width, r.height];",
    )
    .await;
    assert!(
        target[0].as_f64().unwrap() >= 44.0 && target[1].as_f64().unwrap() >= 44.0,
        "a tick box's tap target is 44 x 44 px at least: {target}"
    );

    // A keyboard user opening the page: the first Tab reaches the skip link. (Opened afresh:
    // Chromium starts sequential focus navigation from where the page was scrolled to.)
    client
        .goto(&format!("{}/admin/tasks", app.address))
        .await
        .unwrap();
    css(&client, "tr[data-task-id]").await;
    let tab = char::from(fantoccini::key::Key::Tab);
    client
        .perform_actions(
            KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: tab })
                .then(KeyAction::Up { value: tab }),
        )
        .await
        .unwrap();
    let first = client.active_element().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "Skip to the task list");
    let target = first.attr("href").await.unwrap().unwrap_or_default();
    let target = target.rsplit('#').next().unwrap().to_owned();
    let listed = run_script(
        &client,
        &format!(
            "var list = document.getElementById('{target}'); \
             return list !== null && list.querySelector('tr[data-task-id]') !== null;"
        ),
    )
    .await;
    assert_eq!(listed, json!(true), "the skip link leads to the list");
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_run_forms_advanced_section_opens_and_queues_a_task_that_waits() {
    let app = spawn_app().await; // no engine: the tasks stay where they are
    let first = app
        .db(|conn| bookstore::tasks::ops::run_program(conn, "noop", None).unwrap())
        .await;
    let client = browser(1280).await;
    log_in(&client, &app, "staff", "staff-runs-tasks").await;
    let run_form = format!("{}/admin/programs/hello_world/run", app.address);
    client.goto(&run_form).await.unwrap();
    let priority = css(&client, "#priority").await;
    assert!(!priority.is_displayed().await.unwrap(), "closed at first");
    click(&client, "details.advanced summary").await;
    assert!(priority.is_displayed().await.unwrap(), "open once clicked");
    fill(&client, "#priority", "7").await;
    fill(&client, "#unique_key", "browser-1").await;
    fill(&client, "#after", &first.to_string()).await;
    screenshot(&client, "console-run-advanced-1280px").await;
    click(
        &client,
        "form[action='/admin/programs/hello_world/run'] button",
    )
    .await;
    let banner = css(&client, "[data-flash-task]").await;
    let id = banner.attr("data-flash-task").await.unwrap().unwrap();
    assert_eq!(
        css(&client, ".task-priority").await.text().await.unwrap(),
        "7"
    );
    // It waits: the banner says so, and the page keeps polling instead of reloading.
    run_script(&client, "document.body.setAttribute('data-mark', 'kept');").await;
    wait_until(20, "two polls of the waiting task", || async {
        let seen = run_script(
            &client,
            "return [document.body.getAttribute('data-mark'), performance.getEntriesByType('resource') \
               .filter(function (e) { return e.name.indexOf('/api/v1/tasks/') >= 0; }).length];",
        )
        .await;
        seen[0] == json!("kept") && seen[1].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let text = css(&client, "[data-flash-task] .flash-text").await;
    assert_eq!(
        text.text().await.unwrap(),
        format!("Task #{id} is waiting for other tasks.")
    );
    css(&client, "#workflow svg").await;
    screenshot(&client, "console-task-workflow-1280px").await;

    // The same key again lands on the same task, saying so.
    client.goto(&run_form).await.unwrap();
    click(&client, "details.advanced summary").await;
    fill(&client, "#unique_key", "browser-1").await;
    click(
        &client,
        "form[action='/admin/programs/hello_world/run'] button",
    )
    .await;
    css(&client, ".task-summary").await;
    let flash = css(&client, ".flash-info .flash-text").await;
    assert_eq!(
        flash.text().await.unwrap(),
        format!(
            "A task with key “browser-1” is already queued: task #{id}. Nothing new was queued."
        )
    );
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&format!("/admin/tasks/{id}"))
    );
    client.close().await.unwrap();
}
