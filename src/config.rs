//! Configuration from the environment: `BOOKSTORE_*` variables plus the usual `DATABASE_URL`.
//!
//! Every setting has a default that works on a developer's machine; a malformed value stops
//! the start with a message that names the variable, never a silent fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Serialized},
};
use serde::{Deserialize, Serialize};

use crate::{
    domain::accounts::{sessions::SessionPolicy, throttle::ThrottlePolicy},
    tasks::engine::EngineConfig,
};

/// The variables, their defaults and meaning, shown by `bookstore --help` and in the README.
pub const ENV_HELP: &[(&str, &str, &str)] = &[
    (
        "BOOKSTORE_ADDR",
        "127.0.0.1:8080",
        "address and port the web server listens on",
    ),
    (
        "BOOKSTORE_DATA_DIR",
        "./data",
        "folder of the private PostgreSQL cluster (unused with DATABASE_URL)",
    ),
    (
        "DATABASE_URL",
        "(unset)",
        "use this PostgreSQL server instead of the private cluster",
    ),
    (
        "BOOKSTORE_POOL_SIZE",
        "10",
        "database connections per app process (1-1000)",
    ),
    (
        "BOOKSTORE_LOG",
        "info",
        "log filter, e.g. `debug` or `bookstore=debug,actix_web=info`",
    ),
    (
        "BOOKSTORE_SEED_DEMO",
        "true",
        "load the demo catalog into an empty database at start",
    ),
    (
        "BOOKSTORE_STATIC_DIR",
        "<crate>/static",
        "folder served under /static",
    ),
    (
        "BOOKSTORE_SESSION_IDLE_MINUTES",
        "120",
        "a session unused this long ends",
    ),
    (
        "BOOKSTORE_SESSION_LIFETIME_HOURS",
        "168",
        "a session ends this long after log-in",
    ),
    (
        "BOOKSTORE_SECURE_COOKIES",
        "false",
        "mark cookies Secure (set true when served over https)",
    ),
    (
        "BOOKSTORE_LOGIN_MAX_FAILURES",
        "5",
        "failed log-ins per login (x4 per address) before a lockout",
    ),
    (
        "BOOKSTORE_LOGIN_LOCKOUT_SECONDS",
        "900",
        "length of the failure window and the lockout",
    ),
    (
        "BOOKSTORE_PG_BIN_DIR",
        "(searched)",
        "PostgreSQL server binaries; default: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin",
    ),
];

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
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub pool_size: u32,
    pub log: String,
    pub seed_demo: bool,
    pub static_dir: PathBuf,
    pub pg_bin_dir: Option<PathBuf>,
    pub role: Role,
    pub page_size: u32,
    pub task_concurrency: u32,
    pub task_poll_seconds: u64,
    pub task_lease_seconds: u64,
    pub task_grace_seconds: u64,
    pub task_retry_base_ms: u64,
    pub session_idle_minutes: u64,
    pub session_lifetime_hours: u64,
    pub secure_cookies: bool,
    pub login_max_failures: u32,
    pub login_lockout_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            pool_size: 10,
            log: "info".to_owned(),
            seed_demo: true,
            static_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
            pg_bin_dir: None,
            role: Role::All,
            page_size: 24,
            task_concurrency: 4,
            task_poll_seconds: 5,
            task_lease_seconds: 30,
            task_grace_seconds: 10,
            task_retry_base_ms: 1000,
            session_idle_minutes: 120,
            session_lifetime_hours: 168,
            secure_cookies: false,
            login_max_failures: 5,
            login_lockout_seconds: 900,
        }
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
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Env::prefixed("BOOKSTORE_").ignore(&["database_url"]))
                .merge(Env::raw().only(&["DATABASE_URL"])),
        )
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let mut config: Config = figment.extract().map_err(name_the_variables)?;
        config.validate()?;
        // An empty DATABASE_URL (as `DATABASE_URL= cmd` leaves it) means "not set".
        config.database_url = config.database_url.filter(|url| !url.trim().is_empty());
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.pool_size) {
            return Err(ConfigError::OutOfRange {
                variable: "BOOKSTORE_POOL_SIZE",
                reason: format!("{} is not between 1 and 1000", self.pool_size),
            });
        }
        let ranges: [(&'static str, u64, std::ops::RangeInclusive<u64>); 10] = [
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
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            return Err(ConfigError::OutOfRange {
                variable: "BOOKSTORE_LOG",
                reason: format!("{:?} is not a log filter: {err}", self.log),
            });
        }
        Ok(())
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            lifetime: Duration::from_secs(self.session_lifetime_hours * 3600),
            idle_timeout: Duration::from_secs(self.session_idle_minutes * 60),
        }
    }

    pub fn throttle_policy(&self) -> ThrottlePolicy {
        ThrottlePolicy::new(
            self.login_max_failures,
            Duration::from_secs(self.login_lockout_seconds),
        )
    }

    /// The task engine's settings; `database_url` is the one the pool uses.
    pub fn engine_config(&self, database_url: String) -> EngineConfig {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "node".to_owned());
        let lease = Duration::from_secs(self.task_lease_seconds);
        EngineConfig {
            worker_id: format!(
                "{host}-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ),
            concurrency: self.task_concurrency as usize,
            poll_interval: Duration::from_secs(self.task_poll_seconds),
            lease,
            // Three heartbeats per lease, and at least one a second (cancel requests ride on it).
            heartbeat_interval: (lease / 3).min(Duration::from_secs(1)),
            grace: Duration::from_secs(self.task_grace_seconds),
            retry_base: Duration::from_millis(self.task_retry_base_ms),
            database_url,
        }
    }

    /// The help text listing every variable, for `--help`.
    pub fn env_help() -> String {
        let mut text = String::from("Environment variables:\n");
        for (name, default, meaning) in ENV_HELP {
            text.push_str(&format!("  {name:<22} {meaning} [default: {default}]\n"));
        }
        text
    }
}

/// figment reports the key (`pool_size`); people set the variable (`BOOKSTORE_POOL_SIZE`).
fn name_the_variables(error: figment::Error) -> ConfigError {
    ConfigError::Malformed(
        error
            .into_iter()
            .map(|error| {
                let key = error.path.join("_").to_uppercase();
                let variable = if key == "DATABASE_URL" {
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
            assert_eq!(config.pool_size, 10);
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
    fn malformed_values_name_their_variable() {
        for (variable, value) in [
            ("BOOKSTORE_POOL_SIZE", "many"),
            ("BOOKSTORE_POOL_SIZE", "0"),
            ("BOOKSTORE_ADDR", "localhost"),
            ("BOOKSTORE_SEED_DEMO", "perhaps"),
            ("BOOKSTORE_LOG", "bookstore=loud"),
            ("BOOKSTORE_SESSION_IDLE_MINUTES", "0"),
            ("BOOKSTORE_SECURE_COOKIES", "maybe"),
            ("BOOKSTORE_ROLE", "boss"),
            ("BOOKSTORE_TASK_CONCURRENCY", "0"),
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
