//! Logs: `tracing` to stderr, filtered by `BOOKSTORE_LOG`, as text or as one JSON object per
//! line (`BOOKSTORE_LOG_FORMAT`). Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the same spans
//! also go out over OTLP/HTTP; unset, no OpenTelemetry layer exists at all.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// The OTLP `service.name` of every span.
const SERVICE_NAME: &str = "bookstore";

/// The spans exported: the request's and the task run's are `info`.
const TRACED: &str = "info";

/// Set once spans are exported: the only thing the paths that carry a trace onward (queueing,
/// the engine) look at before doing any work for it.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (`OTEL_EXPORTER_OTLP_ENDPOINT` was set when [`init`] ran).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] started: the exporter, whose queued spans [`Telemetry::shutdown`] sends.
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued in the batch processor and stops it.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("bookstore: sending the last spans: {err}");
        }
    }
}

/// Installs the global subscriber; a second call (tests) is a no-op. `otlp_endpoint` is the
/// base URL of an OTLP/HTTP collector (spans go to `<endpoint>/v1/traces`).
pub fn init(filter: &str, format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = otlp_endpoint.and_then(|endpoint| match exporter(endpoint) {
        Ok(provider) => Some(provider),
        Err(err) => {
            eprintln!("bookstore: no traces: OTEL_EXPORTER_OTLP_ENDPOINT: {err}");
            None
        }
    });
    // `None` when off: the subscriber then holds no OpenTelemetry layer doing work. Its own
    // filter, so that a quiet log (`BOOKSTORE_LOG=warn`) still traces requests and tasks.
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(EnvFilter::new(TRACED))
    });
    let registry = tracing_subscriber::registry().with(otel);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match format {
        // Colour codes only for a terminal: in a log file they are noise.
        LogFormat::Text => registry
            .with(
                fmt.with_ansi(std::io::stderr().is_terminal())
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt.json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_filter(filter),
            )
            .try_init(),
    };
    if installed.is_ok() && provider.is_some() {
        // The request span (tracing-actix-web) takes its parent from an incoming
        // `traceparent` through the global propagator.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Telemetry { provider }
}

fn exporter(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .build())
}

/// The W3C `traceparent` of the current span, when spans are exported and it belongs to a
/// trace.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span that `traceparent` (W3C) names; a malformed one is
/// ignored (the span starts a trace of its own).
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(context);
}

/// For the test harness: `TEST_LOG` (default `warn`), written through libtest's output
/// capture, so a test's log lines show only when it fails (`-- --nocapture` shows them all).
pub fn init_for_tests() {
    let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
