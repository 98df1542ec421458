//! The one table of settings: each variable with its default and meaning. `Config`'s defaults
//! are this table's values read by the parser that reads the environment, `--help` prints it,
//! and a test holds the README's table to it, so the three cannot drift apart.

use figment::{
    Figment,
    providers::Serialized,
    value::{Dict, Value},
};

/// One environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub variable: &'static str,
    pub default: DefaultValue,
    /// Its meaning, in Markdown (the README shows it as is; `--help` without backticks).
    pub help: &'static str,
}

/// A setting's default.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// A value, written as in the environment; shown as is.
    Value(&'static str),
    /// No value: the app falls back to something it works out (`shown`, Markdown).
    Unset { shown: &'static str },
    /// A value known only at build time (`value`), shown as `shown` (Markdown).
    Computed {
        shown: &'static str,
        value: &'static str,
    },
}

impl DefaultValue {
    /// What the README's table shows.
    fn markdown(&self) -> String {
        match self {
            DefaultValue::Value(value) => format!("`{value}`"),
            DefaultValue::Unset { shown } | DefaultValue::Computed { shown, .. } => {
                (*shown).to_owned()
            }
        }
    }

    fn value(&self) -> Option<&'static str> {
        match self {
            DefaultValue::Value(value) | DefaultValue::Computed { value, .. } => Some(value),
            DefaultValue::Unset { .. } => None,
        }
    }
}

const fn value(variable: &'static str, default: &'static str, help: &'static str) -> Setting {
    Setting {
        variable,
        default: DefaultValue::Value(default),
        help,
    }
}

const fn none(variable: &'static str, shown: &'static str, help: &'static str) -> Setting {
    Setting {
        variable,
        default: DefaultValue::Unset { shown },
        help,
    }
}

/// Every variable, in the order `--help` and the README list them.
pub const SETTINGS: &[Setting] = &[
    value(
        "BOOKSTORE_ADDR",
        "127.0.0.1:8080",
        "address the web server listens on (port 0 picks a free one)",
    ),
    none(
        "BOOKSTORE_METRICS_ADDR",
        "unset: `/metrics` on the public port, for staff",
        "a private address (`127.0.0.1:9898`) serving `/metrics`, `/healthz` and `/readyz` to \
         anyone who reaches it (a worker's only HTTP); unset, the public port serves `/metrics` \
         to a staff session or API token only",
    ),
    value(
        "BOOKSTORE_DATA_DIR",
        "./data",
        "folder of the private PostgreSQL cluster",
    ),
    none(
        "DATABASE_URL",
        "unset",
        "use this PostgreSQL server instead of the private cluster",
    ),
    none(
        "DATABASE_LISTEN_URL",
        "`DATABASE_URL`",
        "a direct connection (not through PgBouncer) for LISTEN and the migration lock",
    ),
    none(
        "DATABASE_REPLICA_URLS",
        "unset: every read on `DATABASE_URL`",
        "streaming replicas (comma-separated connection strings) for the catalog, search, book \
         pages, covers and staff lists; see \"Replicas and failover\"",
    ),
    value(
        "BOOKSTORE_REPLICA_MAX_LAG_MS",
        "1000",
        "a replica further behind the primary than this is skipped (reads go to another, or the \
         primary)",
    ),
    value(
        "BOOKSTORE_TRANSACTION_POOLER",
        "false",
        "`true` when `DATABASE_URL` is a transaction-pooling PgBouncer: statements go unprepared",
    ),
    value(
        "BOOKSTORE_POOL_SIZE",
        "8",
        "connections per node for pages and programs (1-1000); a node that runs tasks opens 4 more",
    ),
    value(
        "BOOKSTORE_LOG",
        "info",
        "log filter (`tracing` syntax, e.g. `bookstore=debug,info`)",
    ),
    value(
        "BOOKSTORE_LOG_FORMAT",
        "text",
        "`text` (for a person) or `json` (one JSON object per line: `timestamp`, `level`, \
         `target`, `fields`, `spans`)",
    ),
    none(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "unset: no traces",
        "an OTLP/HTTP collector (e.g. `http://localhost:4318`): spans go to its `/v1/traces`; \
         see \"Traces\"",
    ),
    value(
        "BOOKSTORE_SEED_DEMO",
        "true",
        "demo data for an empty database at start: `true` all 10,000 goodbooks books and the \
         demo accounts, `small` the first 300 books (quick, for tests), `false` nothing",
    ),
    Setting {
        variable: "BOOKSTORE_STATIC_DIR",
        default: DefaultValue::Computed {
            shown: "`<checkout>/static`",
            value: concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        },
        help: "folder served under `/static`",
    },
    none(
        "BOOKSTORE_PG_BIN_DIR",
        "searched",
        "where `initdb`, `pg_ctl` and `postgres` are",
    ),
    value(
        "BOOKSTORE_SESSION_IDLE_MINUTES",
        "120",
        "a session unused this long ends",
    ),
    value(
        "BOOKSTORE_SESSION_LIFETIME_HOURS",
        "168",
        "a session ends this long after log-in",
    ),
    value(
        "BOOKSTORE_SECURE_COOKIES",
        "false",
        "mark cookies Secure (set `true` behind https)",
    ),
    value(
        "BOOKSTORE_LOGIN_MAX_FAILURES",
        "5",
        "guesses per login in the window (x4 per address) before every address waits a doubling \
         delay on it",
    ),
    value(
        "BOOKSTORE_REGISTRATIONS_PER_ADDRESS",
        "10",
        "accounts one address may create in the throttle's window",
    ),
    value(
        "BOOKSTORE_AUDIT_DAYS",
        "400",
        "days the audit log keeps an event; older ones are purged",
    ),
    value(
        "BOOKSTORE_LOGIN_LOCKOUT_SECONDS",
        "900",
        "the throttle's window (failed log-ins, registrations per address)",
    ),
    none(
        STAFF_PASSWORD,
        "unset",
        "password for `create-staff` (else read from stdin)",
    ),
    value(
        "BOOKSTORE_ROLE",
        "all",
        "`web`, `worker` or `all` (the `--role` flag overrides it)",
    ),
    value("BOOKSTORE_PAGE_SIZE", "24", "books per catalog page"),
    none(
        "BOOKSTORE_IMPORT_DIR",
        "`<data dir>/imports`",
        "the only folder `import_catalog` reads (staff upload CSV files into it from the run form)",
    ),
    value(
        "BOOKSTORE_IMPORT_MAX_MB",
        "100",
        "the largest file `import_catalog` reads or an upload may be",
    ),
    none(
        "BOOKSTORE_PUBLIC_URL",
        "`http://` + `BOOKSTORE_ADDR`",
        "the shop's address as customers reach it (`https://shop.example`): every link in a mail \
         or a reset link starts with it, never with the request's Host header",
    ),
    none(
        "BOOKSTORE_SMTP_URL",
        "unset: mails go to `<data dir>/outbox/`",
        "the mail server: `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required` \
         (STARTTLS), `smtps://user:pass@host:465` (TLS); unset, each mail is written there as an \
         `.eml` file",
    ),
    value(
        "BOOKSTORE_MAIL_FROM",
        "Bookstore <bookstore@localhost>",
        "the From of every mail (a name and an address)",
    ),
    value(
        "BOOKSTORE_TASK_CONCURRENCY",
        "4",
        "tasks run at once by one node",
    ),
    value(
        "BOOKSTORE_TASK_POLL_SECONDS",
        "5",
        "fallback poll for queued tasks",
    ),
    value(
        "BOOKSTORE_TASK_LEASE_SECONDS",
        "30",
        "a running task without heartbeat this long is rescued (at least 3 heartbeats)",
    ),
    value(
        "BOOKSTORE_TASK_HEARTBEAT_SECONDS",
        "1",
        "how often a node renews the leases of what it holds",
    ),
    value(
        "BOOKSTORE_TASK_GRACE_SECONDS",
        "10",
        "at shutdown, running tasks get this long to finish",
    ),
    value(
        "BOOKSTORE_TASK_RETRY_BASE_MS",
        "1000",
        "first retry delay; doubles per attempt (at most 5 minutes)",
    ),
];

/// Read by `create-staff` itself, not part of `Config` (a secret has no business in a value
/// that is cloned and logged with `{:?}`).
pub const STAFF_PASSWORD: &str = "BOOKSTORE_STAFF_PASSWORD";

/// The variables read without the `BOOKSTORE_` prefix.
pub const UNPREFIXED: [&str; 4] = [
    "DATABASE_URL",
    "DATABASE_LISTEN_URL",
    "DATABASE_REPLICA_URLS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

impl Setting {
    /// The `Config` field: `BOOKSTORE_POOL_SIZE` is `pool_size`, `DATABASE_URL` `database_url`.
    pub fn key(&self) -> String {
        self.variable
            .strip_prefix("BOOKSTORE_")
            .unwrap_or(self.variable)
            .to_lowercase()
    }
}

/// The table's defaults, parsed as figment parses an environment variable's text.
pub fn defaults() -> Figment {
    let dict: Dict = SETTINGS
        .iter()
        .filter_map(|setting| {
            let value: Value = setting.default.value()?.parse().expect("infallible");
            Some((setting.key(), value))
        })
        .collect();
    Figment::from(Serialized::defaults(dict))
}

/// The help text listing every variable, for `--help`.
pub fn env_help() -> String {
    let width = SETTINGS.iter().map(|s| s.variable.len()).max().unwrap_or(0);
    let mut text = String::from("Environment variables:\n");
    for setting in SETTINGS {
        let default = setting.default.markdown().replace('`', "");
        let help = setting.help.replace('`', "");
        text.push_str(&format!(
            "  {:<width$} {help} [default: {default}]\n",
            setting.variable
        ));
    }
    text
}

/// The README's table of variables, line for line.
pub fn readme_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for setting in SETTINGS {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            setting.variable,
            setting.default.markdown(),
            setting.help
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::Config;

    #[test]
    fn every_field_of_config_has_a_row_and_every_row_a_field() {
        let config = serde_json::to_value(Config::default()).unwrap();
        let fields: BTreeSet<String> = config.as_object().unwrap().keys().cloned().collect();
        let rows: BTreeSet<String> = SETTINGS
            .iter()
            .filter(|setting| setting.variable != STAFF_PASSWORD)
            .map(Setting::key)
            .collect();
        assert_eq!(fields, rows);
        for setting in SETTINGS {
            if let DefaultValue::Unset { .. } = setting.default {
                assert!(
                    config
                        .get(setting.key())
                        .is_none_or(|value| value.is_null()),
                    "{} has no default value",
                    setting.variable
                );
            }
        }
    }

    #[test]
    fn the_readme_lists_the_table_of_settings() {
        let expected = readme_table();
        let header = expected.lines().next().unwrap();
        let readme = include_str!("../../README.md");
        let in_readme: String = readme
            .lines()
            .skip_while(|line| *line != header)
            .take_while(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(
            in_readme == expected,
            "README.md's table of environment variables differs from config::settings::SETTINGS; \
             it should read:\n\n{expected}"
        );
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let help = env_help();
        for setting in SETTINGS {
            let line = help
                .lines()
                .find(|line| line.trim_start().starts_with(setting.variable))
                .unwrap_or_else(|| panic!("--help lacks {}", setting.variable));
            assert!(line.contains("[default: "), "{line}");
        }
        assert!(help.contains("BOOKSTORE_POOL_SIZE"));
        assert!(help.contains("[default: 127.0.0.1:8080]"));
    }
}
