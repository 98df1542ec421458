use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use bookstore::{
    audit::{Actor, AuditContext},
    backup::{self, BackupSettings},
    config::{Config, Role, settings},
    db,
    domain::accounts::{self, Login, NewPassword, resets},
    startup::{self, Application},
    telemetry,
};
use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection};

#[derive(Parser)]
#[command(name = "bookstore", version, about, after_help = settings::env_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// What this node runs: web pages, background tasks (worker), or both. Overrides
    /// BOOKSTORE_ROLE.
    #[arg(long, value_enum, global = true)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web shop (the default): starts the private PostgreSQL cluster unless
    /// DATABASE_URL is set, migrates, seeds an empty catalog and serves until Ctrl-C.
    Serve,
    /// Open psql on the app's own database; extra arguments go to psql (`psql -c "SELECT 1"`).
    Psql {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Back the app's database up into FILE (pg_dump's custom format: one consistent
    /// snapshot; the app may keep running). The private cluster is started for it if the app
    /// is not running; with DATABASE_URL that database.
    Backup {
        /// Where to write the backup (replaced if it exists).
        file: PathBuf,
    },
    /// Restore a backup made by `backup` into an empty data folder (BOOKSTORE_DATA_DIR, a new
    /// private cluster) or an empty DATABASE_URL database, in one transaction. The file is read
    /// through first: a truncated or damaged one is refused and nothing is touched. Stop the
    /// app first.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Restore even into a database that has tables, replacing what the backup holds.
        #[arg(long)]
        replace: bool,
    },
    /// Create a staff account, or make an existing account staff. The password is read from
    /// BOOKSTORE_STAFF_PASSWORD or the first line of stdin (needed to create; to promote an
    /// existing account it is optional and, if given, replaces the old one).
    CreateStaff {
        /// The login of the staff account.
        login: String,
    },
    /// Print a one-time password reset link for an account, valid 30 minutes, to hand over
    /// yourself (customers can also have one mailed from the log-in page). The link starts
    /// with BOOKSTORE_PUBLIC_URL (default http://BOOKSTORE_ADDR). Earlier links of the account
    /// stop working.
    ResetPassword {
        /// The login of the account.
        login: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(mut config) => {
            if let Some(role) = cli.role {
                config.role = role;
            }
            config
        }
        Err(err) => {
            eprintln!("bookstore: {err}");
            return ExitCode::from(2);
        }
    };
    let telemetry = telemetry::init(
        &config.log,
        config.log_format,
        config.otel_exporter_otlp_endpoint.as_deref(),
    );
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Psql { args } => psql(&config, args),
        Command::Backup { file } => backup(&config, &file),
        Command::Restore { file, replace } => restore(&config, &file, replace),
        Command::CreateStaff { login } => create_staff(&config, &login),
        Command::ResetPassword { login } => reset_password(&config, &login),
    };
    telemetry.shutdown();
    result.unwrap_or_else(|err| {
        eprintln!("bookstore: {err:#}");
        ExitCode::FAILURE
    })
}

fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let database = open_prepared(config)?;
    if let Some(root) = database.cluster_root() {
        println!(
            "Data folder (private PostgreSQL cluster): {}",
            root.display()
        );
    }
    let pool = database.pool.clone();
    let config = Config {
        database_url: Some(database.url.clone()),
        ..config.clone()
    };
    let served = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(&config, pool)?;
        match app.web_addr() {
            Some(addr) => println!("Bookstore is ready: open http://{addr}/"),
            None => println!("Bookstore worker is ready: running background tasks"),
        }
        app.run_until_stopped().await.context("web server")
    });
    // The web server has stopped (Ctrl-C / SIGTERM): now stop PostgreSQL, even after an error.
    let stopped = database.shutdown();
    served?;
    stopped?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `change` on the prepared database as the operator at the command line (the audit log's
/// `cli` actor), then stops the private cluster again, whatever the outcome.
fn as_operator<T>(
    config: &Config,
    change: impl FnOnce(&mut PgConnection, &AuditContext) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let database = open_prepared(config)?;
    let outcome = database
        .pool
        .get()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| change(&mut conn, &AuditContext::new(Actor::Cli, None)));
    database.shutdown()?;
    outcome
}

/// The app's database, migrated and ready (the private cluster is stopped again on failure).
fn open_prepared(config: &Config) -> anyhow::Result<db::Database> {
    let database = db::Database::open(&config.into())?;
    // The migration lock is a session's: through a transaction pooler it takes the direct
    // connection.
    let prepared = match &config.database_listen_url {
        Some(direct) => PgConnection::establish(direct)
            .context("connecting to DATABASE_LISTEN_URL")
            .and_then(|mut conn| startup::prepare(&mut conn, config.seed_demo)),
        None => database
            .pool
            .get()
            .context("connecting to PostgreSQL")
            .and_then(|mut conn| startup::prepare(&mut conn, config.seed_demo)),
    };
    match prepared {
        Ok(demo_accounts) => {
            startup::announce_demo_accounts(&demo_accounts, &config.data_dir);
            Ok(database)
        }
        Err(err) => {
            if let Err(stop) = database.shutdown() {
                tracing::warn!("stopping PostgreSQL: {stop:#}");
            }
            Err(err)
        }
    }
}

fn psql(config: &Config, args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    // Never adopt a running cluster here: the app that started it stops it.
    let (url, cluster) = db::locate(&config.into(), false)?;
    let status = std::process::Command::new("psql")
        .arg("--dbname")
        .arg(&url)
        .args(args)
        .status()
        .context("running psql (install it with `apt-get install postgresql-client`)")?;
    drop(cluster);
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

fn backup(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let settings = BackupSettings::from(config);
    let (url, cluster) = db::locate(&config.into(), false)?;
    let dumped = backup::dump(&url, file, settings.pg_bin_dir.as_deref());
    drop(cluster);
    dumped?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "Backed up the database to {} ({} KiB).",
        file.display(),
        size.div_ceil(1024)
    );
    Ok(ExitCode::SUCCESS)
}

fn restore(config: &Config, file: &Path, replace: bool) -> anyhow::Result<ExitCode> {
    let bin_dir = BackupSettings::from(config).pg_bin_dir;
    // Before anything is created or touched.
    backup::check(file, bin_dir.as_deref())?;
    let (url, cluster) = db::locate(&config.into(), false)?;
    let restored = PgConnection::establish(&url)
        .context("connecting to the target database")
        .and_then(|mut conn| backup::table_count(&mut conn))
        .and_then(|tables| {
            if tables > 0 && !replace {
                anyhow::bail!(
                    "the target database is not empty ({tables} tables): restore into an empty                      data folder (BOOKSTORE_DATA_DIR) or database (DATABASE_URL), or pass                      --replace to replace what the backup holds"
                );
            }
            backup::restore(&url, file, tables > 0, bin_dir.as_deref())
        });
    drop(cluster);
    restored?;
    println!(
        "Restored {}. Start the app with the same settings to use it.",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn create_staff(config: &Config, login: &str) -> anyhow::Result<ExitCode> {
    let login = Login::parse(login).map_err(|err| anyhow::anyhow!("login {login:?}: {err}"))?;
    let password = match std::env::var(settings::STAFF_PASSWORD) {
        Ok(password) => Some(password),
        Err(_) => {
            use std::io::{BufRead, IsTerminal};
            if std::io::stdin().is_terminal() {
                eprint!(
                    "Password for {} (visible; empty keeps the current one): ",
                    login.as_str()
                );
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            (!line.is_empty()).then_some(line)
        }
    };
    let password = password
        .map(|password| {
            NewPassword::parse(&password, &[login.as_str()]).map_err(anyhow::Error::msg)
        })
        .transpose()?;
    let (user, created) = as_operator(config, |conn, context| {
        accounts::create_or_promote_staff(conn, context, &login, password.as_ref())
    })?;
    let verb = if created { "created" } else { "is now" };
    println!("{} {verb} a staff account (id {}).", user.login, user.id);
    Ok(ExitCode::SUCCESS)
}

fn reset_password(config: &Config, login: &str) -> anyhow::Result<ExitCode> {
    let login = Login::parse(login).map_err(|err| anyhow::anyhow!("login {login:?}: {err}"))?;
    let link = as_operator(config, |conn, context| {
        Ok(resets::create_link(
            conn,
            context,
            &login,
            resets::LinkIssuer::CommandLine,
        )?)
    })?;
    println!(
        "A password reset link for {} (works once, until {}):",
        link.user.login,
        link.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    println!("{}{}", config.public_url(), link.path());
    if config.public_url.is_none() {
        println!(
            "(http://{} is BOOKSTORE_ADDR, where the app listens; set BOOKSTORE_PUBLIC_URL to the \
             address people reach the shop at.)",
            config.addr
        );
    }
    Ok(ExitCode::SUCCESS)
}
