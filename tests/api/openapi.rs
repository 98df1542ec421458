//! The API's OpenAPI description: it names every route the router has (and no other), live
//! answers match the schemas it gives for them, and staff read it at /admin/api.

use bookstore::web::api::ROUTES;
use serde_json::{Value, json};

use crate::{
    api_v3::Script,
    helpers::{spawn_app, spawn_worker, wait_until},
};

/// The document as the API serves it, to anyone.
async fn served_document(script: &Script) -> Value {
    let response = script.app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// An actix path pattern as OpenAPI writes it: `{verb:pause|resume}` is `{verb}`.
fn openapi_path(pattern: &str) -> String {
    let mut path = String::from("/api/v1");
    let (mut in_braces, mut in_regex) = (false, false);
    for c in pattern.chars() {
        match c {
            '{' => in_braces = true,
            '}' => (in_braces, in_regex) = (false, false),
            ':' if in_braces => in_regex = true,
            _ => {}
        }
        if !in_regex {
            path.push(c);
        }
    }
    path
}

/// Where `answer` breaks the schema the document gives for that operation and status, its
/// `$ref`s resolved in the document's components.
fn schema_errors(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    answer: &Value,
) -> Vec<String> {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} has no JSON schema"
    );
    let root = json!({ "allOf": [schema], "components": doc["components"] });
    let validator = jsonschema::draft202012::new(&root).expect("a valid JSON schema");
    validator
        .iter_errors(answer)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

fn assert_described(doc: &Value, method: &str, path: &str, status: u16, answer: &Value) {
    let errors = schema_errors(doc, method, path, status, answer);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:#?}\n{answer:#}"
    );
}

#[tokio::test]
async fn every_route_of_the_router_is_described_and_nothing_else() {
    let script = Script::start().await;

    let doc = served_document(&script).await;

    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let routed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|route| {
            let method = route.method.as_str().to_lowercase();
            (method, openapi_path(route.path))
        })
        .collect();
    for (method, path) in &routed {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is routed but not described"
        );
    }
    let mut described = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            described.push((method.clone(), path.clone()));
        }
    }
    described.retain(|operation| !routed.contains(operation));
    assert_eq!(
        described,
        Vec::<(String, String)>::new(),
        "described, not routed"
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_token"]["scheme"], "bearer");

    // A method no row names, on a routed path, is the API's 404 as an unknown path is.
    for (_, path) in &routed {
        let path = path
            .replace("{id}", "1")
            .replace("{name}", "noop")
            .replace("{verb}", "pause");
        let (status, body) = script.call(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn live_answers_match_their_described_schemas() {
    let script = Script::start().await;
    let doc = served_document(&script).await;
    let described =
        |method, path, status, answer: &Value| assert_described(&doc, method, path, status, answer);

    // Queue one task and let a worker finish it, so that its answer has a result.
    let (stop, worker) = spawn_worker(&script.app.database_url, |_| {});
    let (status, queued) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "hello_world", "parameters": {"name": "spec"}}),
        )
        .await;
    described("post", "/api/v1/tasks", status, &queued);
    let id = queued["id"].as_i64().unwrap();
    wait_until(30, "the task to finish", || async {
        script.task(id).await["status"] == "finished"
    })
    .await;
    stop.stop();
    worker.await.unwrap().unwrap();
    let (status, task) = script.get(&format!("/api/v1/tasks/{id}")).await;
    described("get", "/api/v1/tasks/{id}", status, &task);
    let mut wrong = task.clone();
    wrong["status"] = json!("lost");
    wrong["progress"]["done"] = json!("three");
    let caught = schema_errors(&doc, "get", "/api/v1/tasks/{id}", 200, &wrong);
    assert_eq!(
        caught.len(),
        2,
        "the schemas are checked, $refs and all: {caught:?}"
    );
    let (status, many) = script
        .post(
            "/api/v1/tasks",
            json!({"program": "noop", "parameters": [{}, {}]}),
        )
        .await;
    described("post", "/api/v1/tasks", status, &many);
    let (status, page) = script.get("/api/v1/tasks").await;
    described("get", "/api/v1/tasks", status, &page);
    let (status, searched) = script.get("/api/v1/tasks?q=spec").await;
    described("get", "/api/v1/tasks", status, &searched);
    let (status, programs) = script.get("/api/v1/programs").await;
    described("get", "/api/v1/programs", status, &programs);
    let (status, options) = script.get("/api/v1/programs/noop/options").await;
    described("get", "/api/v1/programs/{name}/options", status, &options);

    let (status, batch) = script
        .post(
            "/api/v1/batches",
            json!({"program": "noop", "parameters": [{}], "callback": {"program": "noop"}}),
        )
        .await;
    described("post", "/api/v1/batches", status, &batch);
    let (status, read) = script
        .get(&format!("/api/v1/batches/{}", batch["id"]))
        .await;
    described("get", "/api/v1/batches/{id}", status, &read);

    let (status, missing) = script.get("/api/v1/tasks/999999999").await;
    assert_eq!(status, 404);
    described("get", "/api/v1/tasks/{id}", status, &missing);
    let (status, refused) = script
        .post("/api/v1/tasks", json!({"program": "noop", "priority": 500}))
        .await;
    assert_eq!(status, 422);
    described("post", "/api/v1/tasks", status, &refused);
    let (status, bad_filter) = script.get("/api/v1/tasks?from=yesterday").await;
    assert_eq!(status, 400);
    described("get", "/api/v1/tasks", status, &bad_filter);
    let anonymous = script.app.get("/api/v1/programs").await;
    assert_eq!(anonymous.status(), 401);
    described(
        "get",
        "/api/v1/programs",
        401,
        &anonymous.json().await.unwrap(),
    );
}

#[tokio::test]
async fn staff_read_the_reference_and_customers_are_refused() {
    let app = spawn_app().await;
    let staff = app.another_browser();
    staff.log_in_as("staff", "staff-runs-tasks").await;

    let page = staff.get("/admin/api").await;

    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for operation in [
        "GET /api/v1/tasks",
        "POST /api/v1/batches",
        "PUT /api/v1/programs/{name}/options",
    ] {
        assert!(page.contains(operation), "{operation} is listed");
    }
    assert!(page.contains("TaskPage"), "the schemas are shown");
    assert!(page.contains("/api/v1/openapi.json"), "links the document");

    let customer = app.another_browser();
    customer.log_in_as("alice", "alice-reads-books").await;
    let refused = customer.get("/admin/api").await;
    assert_eq!(refused.status(), 403);
}
