//! `POST /api/v1/tasks` with engine v3's options, and with a list of parameters.

use serde_json::{Value, json};

use super::{Script, refusal};

#[tokio::test]
async fn each_option_is_taken_and_the_task_says_how_it_was_queued() {
    let script = Script::start().await;

    let (status, urgent) = script
        .post("/api/v1/tasks", json!({"program": "noop", "priority": 7}))
        .await;
    assert_eq!(status, 201, "{urgent}");
    assert_eq!(
        (&urgent["status"], &urgent["priority"], &urgent["existed"]),
        (&json!("scheduled"), &json!(7), &json!(false))
    );
    assert_eq!(urgent["url"], format!("/api/v1/tasks/{}", urgent["id"]));

    // A held unique key answers with its task, a 200 and "existed".
    let keyed = |name: &str| json!({"program": "hello_world", "parameters": {"name": name}, "unique_key": "order-42"});
    let first = script.queue(keyed("first")).await;
    let before = script.task_count().await;
    let (status, again) = script.post("/api/v1/tasks", keyed("second")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["id"].as_i64(), &again["existed"]),
        (Some(first), &json!(true))
    );
    assert_eq!(
        again["parameters"],
        json!({"name": "first"}),
        "the holder as it is"
    );
    assert_eq!(again["unique_key"], "order-42");
    assert_eq!(script.task_count().await, before, "nothing new was queued");

    // A task queued after another waits for it, and both say so.
    let (status, waiting) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "noop", "after": [first]}),
        )
        .await;
    assert_eq!(status, 201, "{waiting}");
    assert_eq!(waiting["status"], "pending");
    assert_eq!(waiting["waits_for"], json!([first]));
    let waiting = waiting["id"].as_i64().unwrap();
    let upstream = script.task(first).await;
    assert_eq!(
        (&upstream["waited_by"], &upstream["waited_by_count"]),
        (&json!([waiting]), &json!(1))
    );

    // Cancelling the upstream cancels what waits for it, never started, and frees the key.
    let (status, _) = script
        .post(&format!("/api/v1/tasks/{first}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let waiting = script.task(waiting).await;
    assert_eq!(waiting["status"], "cancelled");
    assert_eq!(waiting["start_time"], Value::Null);
    assert!(
        waiting["result"]
            .as_str()
            .unwrap()
            .contains(&format!("task {first}")),
        "{waiting}"
    );
    let next = script.queue(keyed("third")).await;
    assert_ne!(next, first, "the key is free once its task has ended");

    // With unique_for_seconds the key stays taken after the task ends.
    let daily = json!({"program": "noop", "unique_key": "daily", "unique_for_seconds": 3600});
    let (_, held) = script.post("/api/v1/tasks", daily.clone()).await;
    assert_eq!(held["unique_key"], "daily");
    let held = held["id"].as_i64().unwrap();
    script
        .post(&format!("/api/v1/tasks/{held}/cancel"), json!({}))
        .await;
    let (status, within) = script.post("/api/v1/tasks", daily).await;
    assert_eq!((status, within["id"].as_i64()), (200, Some(held)));
    assert_eq!(
        within["status"], "cancelled",
        "ended within the hour, still the answer"
    );

    // The list shows who queued them: the token.
    let queued_by: Vec<Option<String>> = script
        .app
        .db(|conn| {
            use bookstore::db::schema::tasks;
            use diesel::prelude::*;
            tasks::table
                .select(tasks::queued_by)
                .distinct()
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(queued_by, [Some("token v3 script (staff)".to_owned())]);
}

#[tokio::test]
async fn a_list_of_parameters_queues_them_all_in_order_or_none_naming_the_bad_one() {
    let script = Script::start().await;
    let names: Vec<Value> = (0..50)
        .map(|i| json!({"name": format!("reader {i}")}))
        .collect();

    let (status, queued) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": names, "priority": 3}),
        )
        .await;
    assert_eq!(status, 201, "{queued}");
    let ids: Vec<i64> = queued["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    assert_eq!((ids.len(), &queued["count"]), (50, &json!(50)));
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids in the order given"
    );
    let last = script.task(ids[49]).await;
    assert_eq!(last["parameters"], json!({"name": "reader 49"}));
    assert_eq!(
        (&last["priority"], &last["status"]),
        (&json!(3), &json!("scheduled"))
    );

    // One bad element (the schema's rule, judged in SQL) refuses the whole list.
    let mut bad = names.clone();
    bad[7] = json!({"name": 7});
    let (status, error) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": bad}),
        )
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (422, "invalid_parameters parameters")
    );
    assert_eq!(error["error"]["index"], 7);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("task 8 of 50: "), "{message}");

    // And a rule the schema cannot say (checked in Rust before queueing).
    let reports = json!([
        {"from": "2026-02-01", "to": "2026-02-10"},
        {"from": "2026-02-10", "to": "2026-02-01"},
    ]);
    let (status, error) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "sales_report", "parameters": reports}),
        )
        .await;
    assert_eq!(
        (status, &error["error"]["index"]),
        (422, &json!(1)),
        "{error}"
    );
    assert_eq!(error["error"]["code"], "invalid_parameters");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("task 2 of 2: ")
    );
    assert_eq!(
        script.task_count().await,
        50,
        "none of the refused lists' tasks"
    );

    // Options for one task only, an empty list, and too many.
    for field in ["unique_key", "after"] {
        let value = if field == "after" {
            json!([ids[0]])
        } else {
            json!("k")
        };
        let mut body = json!({"program": "noop", "parameters": [{}, {}]});
        body[field] = value;
        let (status, error) = script.post("/api/v1/tasks", body).await;
        assert_eq!(
            (status, refusal(&error)),
            (422, format!("invalid_option {field}"))
        );
    }
    let (status, error) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "noop", "parameters": []}),
        )
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (422, "invalid_parameters parameters")
    );
    let too_many = vec![json!({}); 10_001];
    let (status, error) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "noop", "parameters": too_many}),
        )
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (400, "too_many_tasks parameters")
    );
    assert_eq!(script.task_count().await, 50);
}

#[tokio::test]
async fn a_list_may_be_larger_than_most_bodies_up_to_its_own_limit() {
    let script = Script::start().await;
    // About 290 KiB: past the 256 KiB most bodies may be.
    let many: Vec<Value> = (0..3_000)
        .map(|i| json!({"name": format!("reader {i:05} {}", "of a long list ".repeat(5))}))
        .collect();
    let (status, queued) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": many}),
        )
        .await;
    assert_eq!(
        (status, &queued["count"]),
        (201, &json!(3_000)),
        "{queued:.300}"
    );
    assert_eq!(script.task_count().await, 3_000);

    // Past 2 MiB: refused before it is read to the end.
    let huge: Vec<Value> = (0..10_000)
        .map(|_| json!({"name": "x".repeat(200)}))
        .collect();
    let (status, error) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": huge}),
        )
        .await;
    assert_eq!((status, refusal(&error).as_str()), (413, "body_too_large "));
    assert_eq!(script.task_count().await, 3_000);
}

#[tokio::test]
async fn bad_options_are_refused_with_their_code_and_field_and_queue_nothing() {
    let script = Script::start().await;
    let upstream = script.queue(json!({"program": "noop"})).await;
    let next_id = upstream + 1;
    let thousand_and_one: Vec<i64> = vec![upstream; 1001];
    let cases = [
        (json!({"priority": 101}), 422, "invalid_option priority"),
        (json!({"priority": -101}), 422, "invalid_option priority"),
        (
            json!({"priority": 3_000_000_000_i64}),
            422,
            "invalid_option priority",
        ),
        (json!({"priority": "high"}), 400, "invalid_json "),
        (json!({"priority": 1.5}), 400, "invalid_json "),
        (json!({"unique_key": ""}), 422, "invalid_option unique_key"),
        (
            json!({"unique_key": "k".repeat(201)}),
            422,
            "invalid_option unique_key",
        ),
        (
            json!({"unique_key": "a\tb"}),
            422,
            "invalid_option unique_key",
        ),
        (json!({"unique_key": "a\u{1b}b"}), 400, "invalid_input "),
        (json!({"unique_key": 42}), 400, "invalid_json "),
        (
            json!({"unique_for_seconds": 60}),
            422,
            "invalid_option unique_for_seconds",
        ),
        (
            json!({"unique_key": "k", "unique_for_seconds": -1}),
            422,
            "invalid_option unique_for_seconds",
        ),
        (
            json!({"unique_key": "k", "unique_for_seconds": 40_000_000}),
            422,
            "invalid_option unique_for_seconds",
        ),
        (
            json!({"unique_key": "k", "unique_for_seconds": i64::MAX}),
            422,
            "invalid_option unique_for_seconds",
        ),
        (json!({"after": [424_242]}), 422, "unknown_upstream after"),
        (json!({"after": [-1]}), 422, "unknown_upstream after"),
        // The only cycle one could try: waiting for the id the task is about to get.
        (json!({"after": [next_id]}), 422, "unknown_upstream after"),
        (
            json!({"after": thousand_and_one}),
            422,
            "invalid_option after",
        ),
        (json!({"after": ["x"]}), 400, "invalid_json "),
        (json!({"after": upstream}), 400, "invalid_json "),
        (json!({"priorty": 5}), 400, "invalid_json "),
    ];
    for (options, status, expected) in cases {
        let mut body = json!({"program": "noop"});
        body.as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        let (got, error) = script.post("/api/v1/tasks", body).await;
        assert_eq!(
            (got, refusal(&error)),
            (status, expected.to_owned()),
            "{options}"
        );
    }
    let (status, error) = script
        .post("/api/v1/tasks", json!({"program": "nope", "priority": 1}))
        .await;
    assert_eq!(
        (status, refusal(&error).as_str()),
        (404, "program_not_found program")
    );
    assert_eq!(script.task_count().await, 1, "only the upstream");
}
