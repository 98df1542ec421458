//! Prometheus metrics. Counters and histograms (requests, task runs, checkouts) go through the
//! `metrics` facade into one process-wide recorder. Everything that records is a one-line call
//! to a function here, so the names and labels live in this file alone. It imports nothing
//! above the domain, so the engine can record here; the gauges that read the tasks at a scrape
//! are the scrape's (`web::metrics::gauges`).

use std::{sync::OnceLock, time::Duration};

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_REQUESTS: &str = "bookstore_http_requests_total";
const HTTP_DURATION: &str = "bookstore_http_request_duration_seconds";
const TASK_RUNS: &str = "bookstore_task_runs_total";
const TASK_DURATION: &str = "bookstore_task_duration_seconds";
const CHECKOUTS: &str = "bookstore_checkouts_total";

/// Requests: 5 ms to 10 s (a page waits at most 4 s for the database).
const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Tasks: from a no-op (a millisecond) to the longest timeouts.
const TASK_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The process's recorder, installed on first use. One per process: every app in it (the
/// tests run many) adds to the same counters, as every node would to its own.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &HTTP_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(TASK_DURATION.into()), &TASK_BUCKETS)
            })
            .expect("the buckets are not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            Err(err) => {
                // Another recorder was installed first (an embedding program's): ours then
                // shows only the gauges read at scrape time.
                tracing::warn!("metrics recorder not installed: {err}");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route pattern and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "time to answer an HTTP request, by route pattern"
    );
    describe_counter!(
        TASK_RUNS,
        "task attempts run by this node, by program and outcome"
    );
    describe_histogram!(
        TASK_DURATION,
        Unit::Seconds,
        "how long a task attempt ran, by program"
    );
    describe_counter!(CHECKOUTS, "checkouts, by result");
}

/// This process's counters and histograms, in Prometheus' text format.
pub fn render() -> String {
    handle().render()
}

/// Keeps the histograms' memory bounded between scrapes (the exporter's upkeep).
pub fn upkeep() {
    handle().run_upkeep();
}

/// One answered request: `route` is the pattern it matched (`/books/{id}`), never the raw
/// path, so the label set stays small whatever people type.
pub fn http_request(route: &str, status: u16, took: Duration) {
    let route = route.to_owned();
    counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(took.as_secs_f64());
}

/// One task attempt run on this node. `program` is the function it ran (a program registered
/// for another function counts under that function); `outcome` is
/// [`crate::tasks::engine::executor::Outcome::label`].
pub fn task_ran(program: &str, outcome: &'static str, ran_for: Option<Duration>) {
    let program = program.to_owned();
    counter!(TASK_RUNS, "program" => program.clone(), "outcome" => outcome).increment(1);
    if let Some(ran_for) = ran_for {
        histogram!(TASK_DURATION, "program" => program).record(ran_for.as_secs_f64());
    }
}

/// How a checkout ended, as the checkouts metric counts it (the handler, which knows the
/// domain's errors, says which; the labels stay here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkout {
    Placed,
    /// The same form again: the order it placed is shown.
    Repeated,
    EmptyCart,
    NotEnoughStock,
    TooLarge,
    Error,
}

/// One checkout: `placed`, `repeated`, `empty_cart`, `not_enough_stock`, `too_large` or
/// `error`.
pub fn checkout(outcome: Checkout) {
    let result = match outcome {
        Checkout::Placed => "placed",
        Checkout::Repeated => "repeated",
        Checkout::EmptyCart => "empty_cart",
        Checkout::NotEnoughStock => "not_enough_stock",
        Checkout::TooLarge => "too_large",
        Checkout::Error => "error",
    };
    counter!(CHECKOUTS, "result" => result).increment(1);
}
