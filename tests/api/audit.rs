//! The audit log: who queued, cancelled, registered, edited, and the security events, from the
//! pages, the API, psql and the command line, shown on /admin/audit.

use bookstore::db::schema::{audit_events, tasks};
use diesel::prelude::*;

use crate::helpers::{TestApp, spawn_app};

const STAFF: (&str, &str) = ("staff", "staff-runs-tasks");
const ALICE: (&str, &str) = ("alice", "alice-reads-books");

/// (actor, action, subject) of every event, oldest first.
async fn events(app: &TestApp) -> Vec<(String, String, String)> {
    app.db(|conn| {
        audit_events::table
            .order(audit_events::id)
            .select((
                audit_events::actor,
                audit_events::action,
                audit_events::subject,
            ))
            .load(conn)
            .unwrap()
    })
    .await
}

fn has(events: &[(String, String, String)], actor: &str, action: &str, subject: &str) -> bool {
    events
        .iter()
        .any(|(a, b, c)| a == actor && b == action && c == subject)
}

#[tokio::test]
async fn every_way_of_queueing_a_task_says_who_did_it() {
    let app = spawn_app().await;
    app.log_in_as(STAFF.0, STAFF.1).await;

    // A staff member on the run form...
    let queued = app
        .submit("/admin/programs/noop/run", "/admin/programs/noop/run", &[])
        .await;
    assert_eq!(queued.status(), 303);
    // ...a script with an API token...
    let token = app.create_api_token("nightly").await;
    let script = app.another_browser();
    let response = script
        .client
        .post(format!("{}/api/v1/tasks", script.address))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "program": "noop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let by_token: i64 = response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let cancelled = script
        .client
        .post(format!("{}/api/v1/tasks/{by_token}/cancel", script.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    // ...and a DBA in psql.
    let (ok, out, err) = app.psql("SELECT run_program('noop', NULL)");
    assert!(ok, "{err}");
    let by_psql: i64 = out.trim().parse().unwrap();

    let events = events(&app).await;
    let queued_by = |id: i64| {
        app.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::queued_by)
                .first::<Option<String>>(conn)
                .unwrap()
        })
    };
    assert_eq!(
        queued_by(by_token).await.as_deref(),
        Some("token nightly (staff)")
    );
    let psql_actor = queued_by(by_psql).await.unwrap();
    assert!(psql_actor.starts_with("psql "), "{psql_actor}");
    assert!(
        events
            .iter()
            .any(|(actor, action, _)| actor == "staff staff" && action == "task.queued")
    );
    assert!(has(
        &events,
        "token nightly (staff)",
        "task.queued",
        &format!("task {by_token}")
    ));
    assert!(has(
        &events,
        "token nightly (staff)",
        "task.cancelled",
        &format!("task {by_token}")
    ));
    assert!(has(
        &events,
        &psql_actor,
        "task.queued",
        &format!("task {by_psql}")
    ));
    assert!(has(
        &events,
        "staff staff",
        "token.created",
        "token nightly"
    ));

    // The log page shows them, and filters by action and by who.
    let page = app.page("/admin/audit?action=task.cancelled").await;
    assert!(page.contains("token nightly (staff)"), "{page}");
    assert!(!page.contains("token.created</code>"));
    let mine = app.page("/admin/audit?actor=psql").await;
    assert!(mine.contains(&format!("task {by_psql}")));
    assert!(!mine.contains(&format!("task {by_token}<")));
}

#[tokio::test]
async fn log_ins_refusals_and_forged_forms_leave_a_trace() {
    let app = spawn_app().await;

    // A guess from elsewhere (another address, so alice's own log-in is not slowed down).
    let guesser = app.browser_at([127, 0, 0, 9]);
    let wrong = guesser.log_in("mallory", "not a password").await;
    assert_eq!(wrong.status(), 401);
    app.log_in_as(ALICE.0, ALICE.1).await;
    assert_eq!(app.get("/admin").await.status(), 403);
    // A form posted from another site.
    let forged = app
        .client
        .post(format!("{}/cart/items", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("book_id", "1"), ("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // A reset link posted from another site: refused, and its token stays out of the log.
    let token = "ab".repeat(32);
    let reset = app
        .client
        .post(format!("{}/password-reset/{token}", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 403);
    // A script with a token that does not work.
    let bogus = app
        .another_browser()
        .client
        .get(format!("{}/api/v1/programs", app.address))
        .bearer_auth("bks_not_a_real_token")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.status(), 401);

    let events = events(&app).await;
    assert!(
        events
            .iter()
            .all(|(_, _, subject)| !subject.contains(&token)),
        "no reset token in the audit log: {events:?}"
    );
    assert!(has(
        &events,
        "visitor",
        "csrf.refused",
        "POST /password-reset/{…}"
    ));
    assert!(has(
        &events,
        "visitor",
        "token.refused",
        "GET /api/v1/programs"
    ));
    assert!(
        has(&events, "visitor", "login.failed", "login mallory"),
        "{events:?}"
    );
    assert!(has(
        &events,
        "customer alice",
        "login.succeeded",
        "login alice"
    ));
    assert!(has(
        &events,
        "customer alice",
        "access.refused",
        "GET /admin"
    ));
    assert!(
        events
            .iter()
            .any(|(_, action, subject)| action == "csrf.refused" && subject == "POST /cart/items")
    );

    // Staff read them, security events first in their minds: highlighted.
    let staff = app.another_browser();
    staff.log_in_as(STAFF.0, STAFF.1).await;
    let page = staff.page("/admin/audit").await;
    assert!(page.contains("<tr class=\"security\">"), "{page}");
    assert!(page.contains("login.failed"));
    // Customers cannot read the log.
    assert_eq!(app.get("/admin/audit").await.status(), 403);
}

#[tokio::test]
async fn catalog_and_program_changes_are_recorded_and_bad_filters_are_explained() {
    let app = spawn_app().await;
    app.log_in_as(STAFF.0, STAFF.1).await;
    let id: i64 = app
        .db(|conn| {
            bookstore::db::schema::books::table
                .select(bookstore::db::schema::books::id)
                .first(conn)
                .unwrap()
        })
        .await;
    app.submit("/admin/books", &format!("/admin/books/{id}/hide"), &[])
        .await;
    app.submit(
        "/admin/programs",
        "/admin/programs/noop/settings",
        &[("schedule", "every 5 minutes")],
    )
    .await;
    let (ok, _, err) = app.psql("SELECT register_program('noop_again', 'noop')");
    assert!(ok, "{err}");

    let events = events(&app).await;
    assert!(has(
        &events,
        "staff staff",
        "book.hidden",
        &format!("book {id}")
    ));
    assert!(has(
        &events,
        "staff staff",
        "program.scheduled",
        "program noop"
    ));
    assert!(
        has(&events, "staff staff", "program.disabled", "program noop"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(actor, action, subject)| actor.starts_with("psql ")
                && action == "program.registered"
                && subject == "program noop_again")
    );

    let page = app.page("/admin/audit?from=yesterday&action=nope").await;
    assert!(page.contains("“From” is a date like 2026-11-25; ignored."));
    assert!(page.contains("There is no action “nope”; ignored."));
    let future = app.page("/admin/audit?from=2999-01-01").await;
    assert!(future.contains("No events match these filters."));
}

#[tokio::test]
async fn events_past_their_keeping_are_purged_and_recent_ones_stay() {
    let app = spawn_app().await;
    app.log_in_as(STAFF.0, STAFF.1).await; // a recent event
    let purged = app
        .db(|conn| {
            diesel::sql_query(
                "INSERT INTO audit_events (at, actor, action, subject) \
                 VALUES (now() - interval '500 days', 'staff old', 'book.edited', 'book 1')",
            )
            .execute(conn)
            .unwrap();
            bookstore::audit::purge_older_than(conn, 400).unwrap()
        })
        .await;
    assert_eq!(purged, 1, "the 500-day-old event");
    let left = events(&app).await;
    assert!(
        has(&left, "staff staff", "login.succeeded", "login staff"),
        "{left:?}"
    );
    assert!(left.iter().all(|(actor, _, _)| actor != "staff old"));
}
