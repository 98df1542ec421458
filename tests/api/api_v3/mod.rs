//! Engine v3 through the JSON API, as a script with a staff member's token drives it:
//! queueing with options, many tasks in one call, batches, a program's options, and every
//! refusal in the API's error shape.

mod batches;
mod queueing;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// A script calling the API with a token (no session), and the app it calls.
pub struct Script {
    pub app: TestApp,
    client: TestApp,
    token: String,
}

impl Script {
    pub async fn start() -> Script {
        let app = spawn_app().await;
        let staff = app.another_browser();
        staff.log_in_as("staff", "staff-runs-tasks").await;
        let token = staff.create_api_token("v3 script").await;
        Script {
            client: app.another_browser(),
            app,
            token,
        }
    }

    /// (status, JSON body); every answer, refusals included, is JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.client.address);
        let mut request = self
            .client
            .client
            .request(method, url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        (status, response.json().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(&body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// The id of a task queued with `body`, which must be new.
    pub async fn queue(&self, body: Value) -> i64 {
        let (status, task) = self.post("/api/v1/tasks", body).await;
        assert_eq!(status, 201, "{task}");
        task["id"].as_i64().unwrap()
    }

    pub async fn task(&self, id: i64) -> Value {
        let (status, task) = self.get(&format!("/api/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "{task}");
        task
    }

    pub async fn task_count(&self) -> i64 {
        use bookstore::db::schema::tasks;
        use diesel::prelude::*;
        self.app
            .db(|conn| tasks::table.count().get_result(conn).unwrap())
            .await
    }
}

/// "code field1,field2" of a refusal, and that its message is a sentence to show.
pub fn refusal(body: &Value) -> String {
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let fields: Vec<&str> = error["fields"]
        .as_object()
        .map(|f| f.keys().map(String::as_str).collect())
        .unwrap_or_default();
    format!("{} {}", error["code"].as_str().unwrap(), fields.join(","))
}
