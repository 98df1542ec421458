use std::{ffi::OsString, process::ExitCode};

use anyhow::Context;
use bookstore::{config::Config, db, startup::Application, telemetry};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bookstore", version, about, after_help = Config::env_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("bookstore: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::Psql { args } => psql(&config, args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("bookstore: {err:#}");
        ExitCode::FAILURE
    })
}

fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let database = db::Database::open(config)?;
    if let Some(cluster) = database.cluster() {
        println!(
            "Data folder (private PostgreSQL cluster): {}",
            cluster.root().display()
        );
    }
    let pool = database.pool.clone();
    let served = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config, pool)?;
        println!("Bookstore is ready: open http://{}/", app.addr());
        app.run_until_stopped().await.context("web server")
    });
    // The web server has stopped (Ctrl-C / SIGTERM): now stop PostgreSQL, even after an error.
    let stopped = database.shutdown();
    served?;
    stopped?;
    Ok(ExitCode::SUCCESS)
}

fn psql(config: &Config, args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    // Never adopt a running cluster here: the app that started it stops it.
    let (url, cluster) = db::locate(config, false)?;
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
