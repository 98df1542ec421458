//! Configuration from the environment: `BOOKSTORE_*` variables plus the usual `DATABASE_URL`.
//!
//! Every setting has a default that works on a developer's machine; a malformed value stops
//! the start with a message that names the variable, never a silent fallback. The variables,
//! their defaults and meanings are one table, [`settings::SETTINGS`]. A leaf: it imports
//! nothing of the app; each part builds its own settings from a `&Config`.

mod choices;
pub mod settings;

pub use choices::{LogFormat, SeedDemo};

use std::{net::SocketAddr, path::PathBuf};

use figment::{Figment, providers::Env};
use serde::{Deserialize, Serialize};

/// Which parts of the app a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Pages and the API only.
    Web,
    /// Background tasks only.
    Worker,
    /// Both.
    #[default]
    All,
}

impl Role {
    pub fn serves_web(self) -> bool {
        self != Role::Worker
    }

    pub fn runs_tasks(self) -> bool {
        self != Role::Web
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub addr: SocketAddr,
    /// `None`: `/metrics` on the public port, for staff only.
    pub metrics_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// `None`: `<data_dir>/imports`.
    pub import_dir: Option<PathBuf>,
    pub import_max_mb: u64,
    pub database_url: Option<String>,
    /// A direct connection for what needs a session of its own (LISTEN, the migration lock)
    /// when `database_url` goes through a transaction pooler.
    pub database_listen_url: Option<String>,
    /// Streaming replicas for the reads that may lag (comma-separated; see `replica_urls`).
    pub database_replica_urls: Option<String>,
    /// A replica further behind than this serves no reads.
    pub replica_max_lag_ms: u64,
    /// `database_url` is a transaction-pooling PgBouncer: no named prepared statements.
    pub transaction_pooler: bool,
    pub pool_size: u32,
    pub log: String,
    pub log_format: LogFormat,
    /// `None`: no spans are exported (the standard OpenTelemetry variable, unprefixed).
    pub otel_exporter_otlp_endpoint: Option<String>,
    pub seed_demo: SeedDemo,
    pub static_dir: PathBuf,
    pub pg_bin_dir: Option<PathBuf>,
    pub role: Role,
    pub page_size: u32,
    pub task_concurrency: u32,
    pub task_poll_seconds: u64,
    pub task_lease_seconds: u64,
    pub task_heartbeat_seconds: u64,
    pub task_grace_seconds: u64,
    pub task_retry_base_ms: u64,
    pub session_idle_minutes: u64,
    pub session_lifetime_hours: u64,
    pub secure_cookies: bool,
    pub login_max_failures: u32,
    pub login_lockout_seconds: u64,
    pub registrations_per_address: u32,
    /// Days the audit log keeps an event.
    pub audit_days: u64,
    /// `None`: `http://<addr>`. Checked: http(s), a host, no trailing slash.
    pub public_url: Option<String>,
    /// `None`: mails are written to `<data_dir>/outbox/`.
    pub smtp_url: Option<SmtpUrl>,
    /// Checked: a mailbox (`Name <address>` or an address).
    pub mail_from: String,
}

/// `BOOKSTORE_SMTP_URL`: it may carry a password, so `{:?}` (logs, panics) shows only its
/// scheme and host.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{}", host.split(['/', '?']).next().unwrap_or(""))
            }
            None => "..".to_owned(),
        };
        write!(f, "SmtpUrl({shown})")
    }
}

/// The table's defaults ([`settings::SETTINGS`]).
impl Default for Config {
    fn default() -> Self {
        settings::defaults()
            .extract()
            .expect("the table of settings has a valid default for every field")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One entry per bad variable: `BOOKSTORE_POOL_SIZE: invalid type: found string "many" ...`.
    #[error("invalid configuration: {}", .0.join("; "))]
    Malformed(Vec<String>),
    #[error("invalid configuration: {variable}: {reason}")]
    OutOfRange {
        variable: &'static str,
        reason: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_figment(
            settings::defaults()
                .merge(Env::prefixed("BOOKSTORE_").ignore(&[
                    "database_url",
                    "database_listen_url",
                    "database_replica_urls",
                    "otel_exporter_otlp_endpoint",
                ]))
                .merge(Env::raw().only(&settings::UNPREFIXED)),
        )
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let mut config: Config = figment.extract().map_err(name_the_variables)?;
        config.validate()?;
        // An empty DATABASE_URL (as `DATABASE_URL= cmd` leaves it) means "not set".
        config.database_url = config.database_url.filter(|url| !url.trim().is_empty());
        config.database_listen_url = config
            .database_listen_url
            .filter(|url| !url.trim().is_empty());
        config.otel_exporter_otlp_endpoint = config
            .otel_exporter_otlp_endpoint
            .filter(|url| !url.trim().is_empty());
        config.smtp_url = config.smtp_url.filter(|url| !url.0.trim().is_empty());
        config.public_url = config
            .public_url
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        config.validate_mail()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.pool_size) {
            return Err(ConfigError::OutOfRange {
                variable: "BOOKSTORE_POOL_SIZE",
                reason: format!("{} is not between 1 and 1000", self.pool_size),
            });
        }
        let ranges: [(&'static str, u64, std::ops::RangeInclusive<u64>); 15] = [
            (
                "BOOKSTORE_TASK_CONCURRENCY",
                self.task_concurrency.into(),
                1..=256,
            ),
            (
                "BOOKSTORE_TASK_POLL_SECONDS",
                self.task_poll_seconds,
                1..=3600,
            ),
            (
                "BOOKSTORE_TASK_LEASE_SECONDS",
                self.task_lease_seconds,
                1..=86_400,
            ),
            (
                "BOOKSTORE_TASK_HEARTBEAT_SECONDS",
                self.task_heartbeat_seconds,
                1..=3600,
            ),
            (
                "BOOKSTORE_TASK_GRACE_SECONDS",
                self.task_grace_seconds,
                0..=3600,
            ),
            (
                "BOOKSTORE_TASK_RETRY_BASE_MS",
                self.task_retry_base_ms,
                1..=3_600_000,
            ),
            ("BOOKSTORE_PAGE_SIZE", self.page_size.into(), 1..=200),
            ("BOOKSTORE_IMPORT_MAX_MB", self.import_max_mb, 1..=100_000),
            (
                "BOOKSTORE_REGISTRATIONS_PER_ADDRESS",
                self.registrations_per_address.into(),
                1..=1_000_000,
            ),
            ("BOOKSTORE_AUDIT_DAYS", self.audit_days, 1..=36_500),
            (
                "BOOKSTORE_REPLICA_MAX_LAG_MS",
                self.replica_max_lag_ms,
                1..=3_600_000,
            ),
            (
                "BOOKSTORE_SESSION_IDLE_MINUTES",
                self.session_idle_minutes,
                1..=525_600,
            ),
            (
                "BOOKSTORE_SESSION_LIFETIME_HOURS",
                self.session_lifetime_hours,
                1..=8_760,
            ),
            (
                "BOOKSTORE_LOGIN_MAX_FAILURES",
                self.login_max_failures.into(),
                1..=1_000,
            ),
            (
                "BOOKSTORE_LOGIN_LOCKOUT_SECONDS",
                self.login_lockout_seconds,
                1..=86_400,
            ),
        ];
        for (variable, value, range) in ranges {
            if !range.contains(&value) {
                return Err(ConfigError::OutOfRange {
                    variable,
                    reason: format!(
                        "{value} is not between {} and {}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        // A lease shorter than three heartbeats is lost to one slow heartbeat: live tasks get
        // rescued and run twice.
        if self.task_lease_seconds < 3 * self.task_heartbeat_seconds {
            return Err(ConfigError::OutOfRange {
                variable: "BOOKSTORE_TASK_LEASE_SECONDS",
                reason: format!(
                    "{} s is shorter than three heartbeats ({} s each, BOOKSTORE_TASK_HEARTBEAT_SECONDS): \
                     use at least {} s",
                    self.task_lease_seconds,
                    self.task_heartbeat_seconds,
                    3 * self.task_heartbeat_seconds
                ),
            });
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return Err(ConfigError::OutOfRange {
                variable: "BOOKSTORE_LOG",
                reason: format!("{:?} is not a log filter: {err}", self.log),
            });
        }
        Ok(())
    }

    /// The mail settings: a From that is a mailbox, a public URL that is one, an SMTP URL
    /// lettre understands. Each error names its variable.
    fn validate_mail(&self) -> Result<(), ConfigError> {
        let bad = |variable, reason: String| ConfigError::OutOfRange { variable, reason };
        if let Err(err) = self.mail_from.parse::<lettre::message::Mailbox>() {
            return Err(bad(
                "BOOKSTORE_MAIL_FROM",
                format!(
                    "{:?} is not a mailbox such as \"Bookstore <shop@example.com>\": {err}",
                    self.mail_from
                ),
            ));
        }
        if let Some(url) = &self.public_url {
            let host = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .and_then(|rest| rest.split('/').next())
                .filter(|host| !host.is_empty());
            if host.is_none() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(
                    "BOOKSTORE_PUBLIC_URL",
                    format!(
                        "{url:?} is not an http:// or https:// address such as https://shop.example"
                    ),
                ));
            }
        }
        if let Some(url) = &self.smtp_url
            && let Err(err) = lettre::SmtpTransport::from_url(&url.0)
        {
            return Err(bad(
                "BOOKSTORE_SMTP_URL",
                format!("{url:?} is not a mail server address (smtp://, smtps://): {err}"),
            ));
        }
        Ok(())
    }

    /// Where links in mails and reset links start: `BOOKSTORE_PUBLIC_URL`, else the address
    /// the app listens on.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
    }

    /// The folder mails are written to when there is no mail server.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// The folder `import_catalog` reads from: `BOOKSTORE_IMPORT_DIR`, else
    /// `<data dir>/imports`.
    pub fn import_dir(&self) -> PathBuf {
        self.import_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("imports"))
    }
}

/// figment reports the key (`pool_size`); people set the variable (`BOOKSTORE_POOL_SIZE`).
fn name_the_variables(error: figment::Error) -> ConfigError {
    ConfigError::Malformed(
        error
            .into_iter()
            .map(|error| {
                let key = error.path.join("_").to_uppercase();
                let variable = if settings::UNPREFIXED.contains(&key.as_str()) {
                    key
                } else {
                    format!("BOOKSTORE_{key}")
                };
                format!("{variable}: {}", error.kind)
            })
            .collect(),
    )
}

#[cfg(test)]
// figment's Jail closures return its (large) error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_apply_without_variables() {
        Jail::expect_with(|_jail| {
            let config = Config::from_env().expect("defaults are valid");
            assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
            assert_eq!(config.pool_size, 8);
            assert!(config.database_url.is_none());
            Ok(())
        });
    }

    #[test]
    fn variables_override_defaults() {
        Jail::expect_with(|jail| {
            jail.set_env("BOOKSTORE_ADDR", "0.0.0.0:9000");
            jail.set_env("BOOKSTORE_POOL_SIZE", "3");
            jail.set_env("DATABASE_URL", "postgres://db/shop");
            let config = Config::from_env().expect("valid values");
            assert_eq!(config.addr.port(), 9000);
            assert_eq!(config.pool_size, 3);
            assert_eq!(config.database_url.as_deref(), Some("postgres://db/shop"));
            Ok(())
        });
    }

    #[test]
    fn the_smtp_password_stays_out_of_debug_output() {
        let url = SmtpUrl("smtp://shop:s3cret@mail.example:587?tls=required".into());
        assert_eq!(format!("{url:?}"), "SmtpUrl(smtp://mail.example:587)");
        Jail::expect_with(|jail| {
            jail.set_env("BOOKSTORE_SMTP_URL", &url.0);
            jail.set_env("BOOKSTORE_PUBLIC_URL", "https://shop.example/");
            let config = Config::from_env().expect("valid values");
            assert!(!format!("{config:?}").contains("s3cret"));
            assert_eq!(config.public_url(), "https://shop.example");
            Ok(())
        });
    }

    #[test]
    fn a_lease_must_span_three_heartbeats() {
        Jail::expect_with(|jail| {
            jail.set_env("BOOKSTORE_TASK_HEARTBEAT_SECONDS", "5");
            jail.set_env("BOOKSTORE_TASK_LEASE_SECONDS", "14");
            let message = Config::from_env().expect_err("too short").to_string();
            assert!(
                message.contains("BOOKSTORE_TASK_LEASE_SECONDS")
                    && message.contains("at least 15 s"),
                "{message}"
            );
            jail.set_env("BOOKSTORE_TASK_LEASE_SECONDS", "15");
            assert_eq!(
                Config::from_env()
                    .expect("three heartbeats")
                    .task_lease_seconds,
                15
            );
            Ok(())
        });
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (variable, value) in [
            ("BOOKSTORE_POOL_SIZE", "many"),
            ("BOOKSTORE_POOL_SIZE", "0"),
            ("BOOKSTORE_ADDR", "localhost"),
            ("BOOKSTORE_SEED_DEMO", "perhaps"),
            ("BOOKSTORE_LOG_FORMAT", "yaml"),
            ("BOOKSTORE_LOG", "bookstore=loud"),
            ("BOOKSTORE_SESSION_IDLE_MINUTES", "0"),
            ("BOOKSTORE_SECURE_COOKIES", "maybe"),
            ("BOOKSTORE_ROLE", "boss"),
            ("BOOKSTORE_TASK_CONCURRENCY", "0"),
            ("BOOKSTORE_TASK_LEASE_SECONDS", "2"),
            ("BOOKSTORE_TASK_HEARTBEAT_SECONDS", "0"),
            ("BOOKSTORE_MAIL_FROM", "shop\r\nBcc: x@example.com"),
            ("BOOKSTORE_MAIL_FROM", "not an address"),
            ("BOOKSTORE_PUBLIC_URL", "shop.example"),
            ("BOOKSTORE_SMTP_URL", "ftp://mail.example"),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let message = Config::from_env().expect_err("must be refused").to_string();
                assert!(message.contains(variable), "{variable}={value}: {message}");
                Ok(())
            });
        }
    }
}
