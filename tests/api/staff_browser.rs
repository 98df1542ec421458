//! The staff console in headless Chromium: the "queued" banner follows its task.

use bookstore::config::Role;
use fantoccini::Client;
use serde_json::Value;

use crate::{
    browser::{browser, click, css, fill, log_in},
    helpers::{spawn_app_with, wait_until},
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
    let id: i64 = id.parse().unwrap();
    app.db(move |conn| bookstore::tasks::ops::cancel_task(conn, id).unwrap())
        .await;
    client.close().await.unwrap();
}
