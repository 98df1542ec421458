//! Logs: `tracing` to stderr, filtered by `BOOKSTORE_LOG`, as text or as one JSON object per
//! line (`BOOKSTORE_LOG_FORMAT`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // Colour codes only for a terminal: in a log file they are noise.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
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
