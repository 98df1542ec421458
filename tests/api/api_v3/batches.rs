//! `/api/v1/batches` and `/api/v1/programs/{name}/options`.

use bookstore::db::schema::{audit_events, programs, task_batches};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::{Script, refusal};

async fn batch(script: &Script, id: &Value) -> Value {
    let (status, batch) = script.get(&format!("/api/v1/batches/{id}")).await;
    assert_eq!(status, 200, "{batch}");
    batch
}

#[tokio::test]
async fn a_batch_shows_its_progress_and_queues_its_callback_once_all_have_ended() {
    let script = Script::start().await;
    let (status, created) = script
        .post(
            "/api/v1/batches",
            json!({
                "program": "noop",
                "parameters": [{}, {}, {}],
                "callback": {"program": "hello_world", "parameters": {"name": "batch"}},
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = &created["id"];
    assert_eq!(created["url"], format!("/api/v1/batches/{id}"));
    assert_eq!(
        (&created["size"], &created["pending"]),
        (&json!(3), &json!(3))
    );
    assert_eq!(created["callback"]["program"], "hello_world");
    assert_eq!(
        (&created["callback"]["task_id"], &created["ended"]),
        (&Value::Null, &json!(false))
    );
    let members: Vec<i64> = created["task_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    assert_eq!(members.len(), 3);
    assert_eq!(script.task(members[0]).await["batch_id"], *id);

    // Members that end (here: cancelled, which counts as failed) are counted.
    for member in &members[..2] {
        script
            .post(&format!("/api/v1/tasks/{member}/cancel"), json!({}))
            .await;
    }
    let progress = batch(&script, id).await;
    assert_eq!(
        (&progress["failed"], &progress["pending"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        progress["callback"]["task_id"],
        Value::Null,
        "not before the last one"
    );

    script
        .post(&format!("/api/v1/tasks/{}/cancel", members[2]), json!({}))
        .await;
    let ended = batch(&script, id).await;
    assert_eq!(
        (&ended["ended"], &ended["failed"], &ended["finished"]),
        (&json!(true), &json!(3), &json!(0))
    );
    assert!(ended["ended_at"].is_string());
    let callback = ended["callback"]["task_id"]
        .as_i64()
        .expect("the callback was queued");
    let task = script.task(callback).await;
    assert_eq!(
        (&task["program"], &task["parameters"]),
        (&json!("hello_world"), &json!({"name": "batch"}))
    );

    // Ending a member again changes nothing: one callback.
    script
        .post(&format!("/api/v1/tasks/{}/cancel", members[2]), json!({}))
        .await;
    assert_eq!(batch(&script, id).await["callback"]["task_id"], callback);
    assert_eq!(script.task_count().await, 4);

    // An empty batch is over at once.
    let (status, empty) = script
        .post(
            "/api/v1/batches",
            json!({"program": "noop", "parameters": [], "callback": {"program": "noop"}}),
        )
        .await;
    assert_eq!(
        (status, &empty["ended"], &empty["size"]),
        (201, &json!(true), &json!(0))
    );
    assert!(empty["callback"]["task_id"].is_i64(), "{empty}");
}

#[tokio::test]
async fn a_batch_with_a_bad_member_or_callback_is_refused_whole() {
    let script = Script::start().await;
    script
        .app
        .db(|conn| {
            diesel::update(programs::table.filter(programs::name.eq("demo_long")))
                .set(programs::enabled.eq(false))
                .execute(conn)
                .unwrap()
        })
        .await;
    let members = |bad_at: Option<usize>| {
        let mut list = vec![json!({"name": "ok"}); 4];
        if let Some(index) = bad_at {
            list[index] = json!({"name": 7});
        }
        list
    };
    let body = |callback: Value| json!({"program": "hello_world", "parameters": members(None), "callback": callback});
    let (status, error) = script
        .post(
            "/api/v1/batches",
            json!({"program": "hello_world", "parameters": members(Some(2))}),
        )
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (422, "invalid_parameters parameters")
    );
    assert_eq!(error["error"]["index"], 2);

    // The callback is queued by the engine when the batch ends, too late to refuse it then.
    let cases = [
        (
            json!({"program": "nope"}),
            404,
            "program_not_found callback.program",
        ),
        (
            json!({"program": "demo_long"}),
            409,
            "program_disabled callback.program",
        ),
        (
            json!({"program": "hello_world", "parameters": {"name": 7}}),
            422,
            "invalid_parameters callback.name",
        ),
        (
            json!({"program": "sales_report", "parameters": {"from": "2026-02-10", "to": "2026-02-01"}}),
            422,
            "invalid_parameters callback.from",
        ),
        (
            json!({"program": "noop", "when": "later"}),
            400,
            "invalid_json ",
        ),
    ];
    for (callback, status, expected) in cases {
        let (got, error) = script.post("/api/v1/batches", body(callback.clone())).await;
        assert_eq!(
            (got, refusal(&error)),
            (status, expected.to_owned()),
            "{callback}"
        );
    }
    let too_many = vec![json!({}); 10_001];
    let (status, error) = script
        .post(
            "/api/v1/batches",
            json!({"program": "noop", "parameters": too_many}),
        )
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (400, "too_many_tasks parameters")
    );
    let (status, error) = script
        .post(
            "/api/v1/batches",
            json!({"program": "noop", "parameters": {}}),
        )
        .await;
    assert_eq!((status, refusal(&error).as_str()), (400, "invalid_json "));

    assert_eq!(script.task_count().await, 0);
    let batches: i64 = script
        .app
        .db(|conn| task_batches::table.count().get_result(conn).unwrap())
        .await;
    assert_eq!(batches, 0, "no batch was left behind");
    for path in ["/api/v1/batches/424242", "/api/v1/batches/abc"] {
        let (status, error) = script.get(path).await;
        assert_eq!(
            (status, refusal(&error).as_str()),
            (404, "not_found "),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_programs_options_are_read_and_replaced_and_new_tasks_take_its_priority() {
    let script = Script::start().await;
    let (status, import) = script.get("/api/v1/programs/import_catalog/options").await;
    assert_eq!(
        (status, &import["max_running"]),
        (200, &json!(1)),
        "one import at a time"
    );
    let (_, noop) = script.get("/api/v1/programs/noop/options").await;
    let plain = json!({"program": "noop", "priority": 0, "max_running": null, "per_minute": null});
    assert_eq!(noop, plain);

    let (status, stored) = script
        .put(
            "/api/v1/programs/noop/options",
            json!({"priority": 5, "max_running": 2}),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let limited = json!({"program": "noop", "priority": 5, "max_running": 2, "per_minute": null});
    assert_eq!(stored, limited);
    assert_eq!(script.get("/api/v1/programs/noop/options").await.1, limited);
    let (_, listed) = script.get("/api/v1/programs").await;
    let listed = listed["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "noop")
        .unwrap()
        .clone();
    assert_eq!(
        (&listed["priority"], &listed["max_running"]),
        (&json!(5), &json!(2))
    );

    let by_default = script.queue(json!({"program": "noop"})).await;
    assert_eq!(script.task(by_default).await["priority"], 5);
    let given = script
        .queue(json!({"program": "noop", "priority": -3}))
        .await;
    assert_eq!(script.task(given).await["priority"], -3);

    // PUT replaces: what is left out takes its default.
    let (status, reset) = script.put("/api/v1/programs/noop/options", json!({})).await;
    assert_eq!((status, reset), (200, plain.clone()));

    let cases = [
        (json!({"priority": 101}), 422, "invalid_option priority"),
        (json!({"max_running": 0}), 422, "invalid_option max_running"),
        (
            json!({"max_running": 10_001}),
            422,
            "invalid_option max_running",
        ),
        (json!({"per_minute": -1}), 422, "invalid_option per_minute"),
        (
            json!({"per_minute": 1_u64 << 40}),
            422,
            "invalid_option per_minute",
        ),
        (json!({"max_runing": 2}), 400, "invalid_json "),
        (json!({"priority": "high"}), 400, "invalid_json "),
    ];
    for (body, status, expected) in cases {
        let (got, error) = script
            .put("/api/v1/programs/noop/options", body.clone())
            .await;
        assert_eq!(
            (got, refusal(&error)),
            (status, expected.to_owned()),
            "{body}"
        );
    }
    assert_eq!(
        script.get("/api/v1/programs/noop/options").await.1,
        plain,
        "unchanged"
    );
    let (status, error) = script.put("/api/v1/programs/nope/options", json!({})).await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (404, "program_not_found program")
    );
    let (status, error) = script.get("/api/v1/programs/nope/options").await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (404, "program_not_found program")
    );

    // Each change is in the audit log, by the token.
    let recorded: Vec<(String, String)> = script
        .app
        .db(|conn| {
            audit_events::table
                .filter(audit_events::action.eq("program.options"))
                .select((audit_events::actor, audit_events::subject))
                .load(conn)
                .unwrap()
        })
        .await;
    let by_token = (
        "token v3 script (staff)".to_owned(),
        "program noop".to_owned(),
    );
    assert_eq!(recorded, vec![by_token.clone(), by_token]);
}

#[tokio::test]
async fn a_session_call_needs_the_csrf_header_and_customers_are_refused() {
    let script = Script::start().await;
    let staff = script.app.another_browser();
    staff.log_in_as("staff", "staff-runs-tasks").await;
    let put = staff
        .client
        .put(format!("{}/api/v1/programs/noop/options", staff.address))
        .header("Origin", staff.address.clone())
        .json(&json!({"priority": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    let error: Value = put.json().await.unwrap();
    assert_eq!(error["error"]["code"], "csrf_rejected");

    let customer = script.app.another_browser();
    customer.log_in_as("alice", "alice-reads-books").await;
    for path in ["/api/v1/batches/1", "/api/v1/programs/noop/options"] {
        let response = customer.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
    }
    assert_eq!(
        script.get("/api/v1/programs/noop/options").await.1["priority"],
        0
    );
}
