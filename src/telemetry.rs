//! Logs: `tracing` to stderr, filtered by `BOOKSTORE_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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
