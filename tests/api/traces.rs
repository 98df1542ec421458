//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` the app sends its spans to an OTLP/HTTP collector,
//! and a task queued from a request runs in that request's trace. The collector here is a real
//! OTLP/HTTP receiver decoding what arrives; the app is the real binary (the test harness holds
//! this process's global subscriber).

use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use bookstore::domain::accounts::{find_by_login, tokens};
use diesel::{Connection, ExpressionMethods, PgConnection, QueryDsl, RunQueryDsl};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;

use crate::{
    helpers::{fresh_database, staff_acting, wait_until},
    process::{DataDir, RunningApp, start_with},
};

const BINARY: &str = env!("CARGO_BIN_EXE_bookstore");

/// The trace the test's "caller" is in, as a W3C `traceparent` names it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    service: Option<String>,
}

/// An OTLP/HTTP collector on a random port: `POST /v1/traces` with protobuf bodies.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// Export requests received, spans or not.
    requests: Arc<Mutex<usize>>,
}

impl Collector {
    fn start() -> Collector {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let state = (spans.clone(), requests.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/v1/traces", web::post().to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("binding the collector");
        let endpoint = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        Collector {
            endpoint,
            spans,
            requests,
        }
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

type Received = (Arc<Mutex<Vec<ReceivedSpan>>>, Arc<Mutex<usize>>);

async fn receive(state: web::Data<Received>, body: web::Bytes) -> HttpResponse {
    *state.1.lock().unwrap() += 1;
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut spans = state.0.lock().unwrap();
    for resource_spans in export.resource_spans {
        let service = resource_spans.resource.and_then(|resource| {
            resource
                .attributes
                .into_iter()
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match attribute.value?.value? {
                    AnyValue::StringValue(name) => Some(name),
                    _ => None,
                })
        });
        for scope_spans in resource_spans.scope_spans {
            spans.extend(scope_spans.spans.into_iter().map(|span| ReceivedSpan {
                name: span.name,
                trace_id: hex::encode(span.trace_id),
                span_id: hex::encode(span.span_id),
                parent_span_id: hex::encode(span.parent_span_id),
                service: service.clone(),
            }));
        }
    }
    // An empty ExportTraceServiceResponse: everything was accepted.
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .finish()
}

/// The app, as a process of its own over a fresh database, with the engine running tasks.
struct Bookstore {
    app: Option<RunningApp>,
    database_url: String,
    _data: DataDir,
}

impl Bookstore {
    fn start(otlp_endpoint: Option<&str>) -> Bookstore {
        let database_url = fresh_database();
        let data = DataDir::new();
        let mut command = Command::new(BINARY);
        command
            .env("DATABASE_URL", &database_url)
            .env("BOOKSTORE_DATA_DIR", &data.0)
            .env("BOOKSTORE_ADDR", "127.0.0.1:0")
            .env("BOOKSTORE_ROLE", "all")
            .env("BOOKSTORE_LOG", "warn")
            .env("BOOKSTORE_SEED_DEMO", "small")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            // The batch processor's standard variable: export soon after a span ends.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        if let Some(endpoint) = otlp_endpoint {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        }
        Bookstore {
            app: Some(start_with(command)),
            database_url,
            _data: data,
        }
    }

    fn address(&self) -> &str {
        &self.app.as_ref().expect("running").address
    }

    fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).expect("connecting")
    }

    /// A token of the demo staff member, for the API.
    fn staff_token(&self) -> String {
        let mut conn = self.connect();
        let (staff, _) = find_by_login(&mut conn, "staff").unwrap().expect("staff");
        tokens::create(&mut conn, &staff_acting(), staff.id, "traces", None).unwrap()
    }

    /// Queues a `noop` through the API, in the caller's trace; its id.
    async fn queue_noop(&self, token: &str) -> i64 {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/tasks", self.address()))
            .bearer_auth(token)
            .header("traceparent", TRACEPARENT)
            .json(&json!({"program": "noop"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let task: serde_json::Value = response.json().await.unwrap();
        task["id"].as_i64().expect("the task's id")
    }

    /// (status, traceparent) of a task.
    fn task(&self, id: i64) -> (String, Option<String>) {
        use bookstore::db::schema::tasks;
        tasks::table
            .filter(tasks::id.eq(bookstore::ids::TaskId(id)))
            .select((tasks::status, tasks::traceparent))
            .first(&mut self.connect())
            .unwrap()
    }

    /// Stops it as an operator would (SIGTERM): the last spans are sent before it exits.
    fn stop(&mut self) {
        let status = self.app.take().expect("running").terminate();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Bookstore {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            app.terminate();
        }
    }
}

#[tokio::test]
async fn a_task_queued_from_a_traced_request_runs_in_that_trace() {
    // Arrange
    let collector = Collector::start();
    let app = tokio::task::spawn_blocking({
        let endpoint = collector.endpoint.clone();
        move || Bookstore::start(Some(&endpoint))
    })
    .await
    .unwrap();
    let token = app.staff_token();

    // Act
    let task = app.queue_noop(&token).await;

    // Assert
    let task_span = "task run noop";
    let request_span = "POST /api/v1/tasks";
    wait_until(
        30,
        "the request's and the run's spans at the collector",
        || {
            let spans = collector.spans();
            let arrived = [request_span, task_span]
                .iter()
                .all(|name| spans.iter().any(|span| span.name == *name));
            async move { arrived }
        },
    )
    .await;
    let spans = collector.spans();
    let run = spans.iter().find(|span| span.name == task_span).unwrap();
    assert_eq!(run.trace_id, TRACE_ID, "the run joins the request's trace");
    assert_eq!(run.service.as_deref(), Some("bookstore"));
    let request = spans.iter().find(|span| span.name == request_span).unwrap();
    assert_eq!(
        request.trace_id, TRACE_ID,
        "the request continues the caller's trace"
    );
    assert_eq!(
        run.parent_span_id, request.span_id,
        "the run is a child of the request that queued it"
    );
    let (_, traceparent) = app.task(task);
    let traceparent = traceparent.expect("the task carries the request's traceparent");
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent}"
    );
}

#[tokio::test]
async fn without_the_endpoint_nothing_is_exported_and_tasks_carry_no_trace() {
    // Arrange: a collector is listening, but the app is not told about it.
    let collector = Collector::start();
    let mut app = tokio::task::spawn_blocking(|| Bookstore::start(None))
        .await
        .unwrap();
    let token = app.staff_token();

    // Act: a traced caller queues a task, which runs; then the app stops (where an exporter
    // would send what it still holds).
    let task = app.queue_noop(&token).await;
    wait_until(30, "the task to run", || {
        let done = app.task(task).0 == "finished";
        async move { done }
    })
    .await;
    app.stop();

    // Assert
    assert_eq!(app.task(task).1, None, "no traceparent is written");
    assert_eq!(collector.requests(), 0, "nothing was sent");
}
