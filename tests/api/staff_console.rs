//! The staff console as staff use it: finding tasks by program, schedules in words, bulk
//! confirmations that read right, a sales report's form ready to run, and the book list kept
//! where it was after hiding a book.

use bookstore::ids::TaskId;
use bookstore::{
    audit::{self, Actor, AuditContext},
    db::schema::books,
    tasks::ops,
};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_is_redirect_to, spawn_app};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");

async fn staff_app() -> TestApp {
    let app = spawn_app().await; // no engine: queued tasks stay queued
    app.log_in_as(STAFF.0, STAFF.1).await;
    app
}

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

/// Task ids in a list page, in order.
fn listed(page: &str) -> Vec<TaskId> {
    page.split("<tr data-task-id=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap().parse().unwrap())
        .collect()
}

async fn api_total(app: &TestApp, query: &str) -> Value {
    let body: Value = app
        .get(&format!("/api/v1/tasks?{query}"))
        .await
        .json()
        .await
        .unwrap();
    body["total"].clone()
}

#[tokio::test]
async fn the_task_search_finds_tasks_by_their_programs_name() {
    let app = staff_app().await;
    let hello = queue(&app, "hello_world", json!({"name": "Ada"})).await;
    let sales = queue(
        &app,
        "sales_report",
        json!({"from": "2026-11-01", "to": "2026-11-30"}),
    )
    .await;
    queue(&app, "noop", json!({})).await;

    assert_eq!(
        listed(&app.page("/admin/tasks?q=hello_world").await),
        [hello]
    );
    assert_eq!(listed(&app.page("/admin/tasks?q=sales").await), [sales]);
    assert_eq!(listed(&app.page("/admin/tasks?q=SALES_rep").await), [sales]);
    assert_eq!(api_total(&app, "q=hello_world").await, json!(1));
    assert_eq!(api_total(&app, "q=sales").await, json!(1));
    // "_" is a character here, not a wildcard.
    assert_eq!(api_total(&app, "q=sales_").await, json!(1));
    assert_eq!(api_total(&app, "q=hello_x").await, json!(0));
}

#[tokio::test]
async fn schedules_read_in_plain_words_and_can_be_typed_that_way() {
    let app = staff_app().await;
    let page = app.page("/admin/programs").await;
    assert!(page.contains("value=\"daily at 03:00\""), "{page}");
    assert!(page.contains("value=\"every 15 minutes\""));
    assert!(!page.contains("0 3 * * *"), "no cron line shown");

    let saved = app
        .submit(
            "/admin/programs",
            "/admin/programs/noop/settings",
            &[("schedule", "hourly at :05"), ("enabled", "1")],
        )
        .await;
    assert_is_redirect_to(&saved, "/admin/programs");
    let page = app.page("/admin/programs").await;
    assert!(page.contains("Settings of noop saved."), "{page}");
    assert!(page.contains("value=\"hourly at :05\""));
}

/// The confirmation's explanation, as one line of text.
async fn explanation(app: &TestApp, query: &str) -> String {
    let page = app.page(&format!("/admin/tasks/bulk?{query}")).await;
    let paragraph = page
        .split("<p class=\"bulk-summary\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in {page}"))
        .split("</p>")
        .next()
        .unwrap();
    paragraph.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn bulk_confirmations_say_plainly_what_happens_to_how_many() {
    let app = staff_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(queue(&app, "noop", json!({})).await);
    }
    let (ended, queued) = (&ids[..3], &ids[3..]);
    for id in ended {
        let id = *id;
        app.db(move |conn| ops::cancel_task(conn, id).unwrap())
            .await;
    }
    let retry = |picked: &[TaskId]| {
        let mut query = "action=retry".to_owned();
        for id in picked {
            query.push_str(&format!("&id={id}"));
        }
        query
    };

    assert_eq!(
        explanation(&app, &retry(&ended[..1])).await,
        "The task you chose is failed or cancelled: it will be queued again."
    );
    assert_eq!(
        explanation(&app, &retry(&[ended[0], queued[0], queued[1]])).await,
        "1 of the 3 tasks you chose is failed or cancelled: it will be queued again. \
         The other 2 are left as they are."
    );
    assert_eq!(
        explanation(&app, &retry(&[ended[0], ended[1], queued[0]])).await,
        "2 of the 3 tasks you chose are failed or cancelled: they will be queued again. \
         The other one is left as it is."
    );
    assert_eq!(
        explanation(&app, &retry(ended)).await,
        "All 3 tasks you chose are failed or cancelled: they will be queued again."
    );
    assert_eq!(
        explanation(&app, "action=retry&scope=matching&status=cancelled").await,
        "All 3 tasks matching the filters are failed or cancelled: they will be queued again."
    );
    assert_eq!(
        explanation(&app, &retry(&queued[..1])).await,
        "The task you chose is not failed or cancelled: nothing would change."
    );
    assert_eq!(
        explanation(&app, &retry(queued)).await,
        "None of the 2 tasks you chose is failed or cancelled: nothing would change."
    );
}

#[tokio::test]
async fn the_sales_report_form_starts_with_the_last_30_days_and_explains_reversed_dates() {
    let app = staff_app().await;
    let before = Utc::now().date_naive();
    let form = app.page("/admin/programs/sales_report/run").await;
    let after = Utc::now().date_naive();
    let value_of = |name: &str| {
        form.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {form}"))
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let (from, to) = (value_of("param_from"), value_of("param_to"));
    assert!(
        [before, after].iter().any(|today| {
            (from.as_str(), to.as_str())
                == (
                    (*today - Duration::days(30)).to_string().as_str(),
                    today.to_string().as_str(),
                )
        }),
        "from {from} to {to}"
    );

    let backwards = app
        .submit(
            "/admin/programs/sales_report/run",
            "/admin/programs/sales_report/run",
            &[
                ("param_from", "2026-12-31"),
                ("param_to", "2026-01-01"),
                ("param_per", "book"),
            ],
        )
        .await;
    assert_eq!(backwards.status(), 422);
    let page = backwards.text().await.unwrap();
    assert!(
        page.contains("The start date 2026-12-31 is after the end date 2026-01-01."),
        "{page}"
    );
    assert!(!page.contains("is after to"), "{page}");
    assert!(!page.contains("From The start"), "{page}");
}

/// The hidden fields of the first hide form on a books page.
fn hide_form_fields(page: &str) -> (i64, Vec<(String, String)>) {
    let form = page
        .split("<form method=\"post\" action=\"/admin/books/")
        .nth(1)
        .expect("a hide form");
    let id = form.split('/').next().unwrap().parse().unwrap();
    let form = form.split("</form>").next().unwrap();
    let fields = form
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|input| {
            let name = input.split('"').next().unwrap().to_owned();
            let value = input
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            (name, value)
        })
        .filter(|(name, _)| name != "csrf_token")
        .collect();
    (id, fields)
}

#[tokio::test]
async fn hiding_a_book_keeps_the_search_and_the_page() {
    let app = staff_app().await;
    for (list, back) in [
        ("/admin/books?q=harry+potter", "/admin/books?q=harry+potter"),
        ("/admin/books?page=2", "/admin/books?page=2"),
        ("/admin/books?q=the&page=2", "/admin/books?q=the&page=2"),
    ] {
        let page = app.page(list).await;
        let (id, fields) = hide_form_fields(&page);
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let hidden = app
            .submit(list, &format!("/admin/books/{id}/hide"), &fields)
            .await;
        assert_is_redirect_to(&hidden, back);
        let after = app.page(back).await;
        assert!(after.contains("is hidden"), "{after}");
        // The undo goes back to the same list too.
        let undone = app
            .submit(back, &format!("/admin/books/{id}/unhide"), &fields)
            .await;
        assert_is_redirect_to(&undone, back);
    }

    // Whatever is posted, the way back is the book list: never another site.
    let id: i64 = app
        .db(|conn| books::table.select(books::id).first(conn).unwrap())
        .await;
    for (q, page) in [
        ("//evil.example", "2"),
        ("x", "https://evil.example"),
        ("", "-3"),
    ] {
        let hidden = app
            .submit(
                "/admin/books",
                &format!("/admin/books/{id}/hide"),
                &[("q", q), ("page", page), ("back", "https://evil.example")],
            )
            .await;
        let location = hidden.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/admin/books"), "{location}");
        assert!(!location.contains("evil.example/") && !location.contains("://"));
    }
}
