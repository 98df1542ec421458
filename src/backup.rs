//! Backups: `pg_dump -Fc` of the app's database (one consistent snapshot: pg_dump reads in a
//! single repeatable-read transaction, so books, orders and tasks agree), and their restore
//! with `pg_restore` in one transaction (all or nothing). A file is read through before
//! anything is restored, so a truncated or damaged one is refused with the tool's reason and
//! the target left as it was. The `backup` program (programs/backup.rs) writes dated
//! files to `<data dir>/backups/` and keeps the last N.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use diesel::{PgConnection, RunQueryDsl, sql_query, sql_types::BigInt};

/// What backups need to know of the app's settings.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// The app's database (the private cluster's socket, or `DATABASE_URL`); `None` where the
    /// program runs without one (some tests).
    pub database_url: Option<String>,
    /// `<data dir>/backups`, where the `backup` program writes.
    pub dir: PathBuf,
    /// Where PostgreSQL's binaries are (`BOOKSTORE_PG_BIN_DIR`, else searched): its pg_dump
    /// matches the server the app runs.
    pub pg_bin_dir: Option<PathBuf>,
}

impl From<&crate::config::Config> for BackupSettings {
    fn from(config: &crate::config::Config) -> BackupSettings {
        BackupSettings {
            database_url: config.database_url.clone(),
            dir: config.data_dir.join("backups"),
            pg_bin_dir: config
                .pg_bin_dir
                .clone()
                .or_else(crate::db::cluster::find_server_binaries),
        }
    }
}

/// `pg_dump` or `pg_restore`: from PostgreSQL's binaries when they have it, else from `PATH`.
fn tool(bin_dir: Option<&Path>, name: &str) -> Command {
    let beside_server = bin_dir
        .map(|dir| dir.join(name))
        .filter(|path| path.exists());
    Command::new(beside_server.unwrap_or_else(|| PathBuf::from(name)))
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("{what} (is PostgreSQL's client installed?)"))?;
    if !output.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Writes a backup of the database at `url` to `file`: first to `file.partial`, renamed once
/// complete, so a file with the name is always a whole backup.
pub fn dump(url: &str, file: &Path, bin_dir: Option<&Path>) -> anyhow::Result<()> {
    let partial = file.with_extension("partial");
    let mut command = tool(bin_dir, "pg_dump");
    command
        .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(&partial)
        .arg("--dbname")
        .arg(url);
    if let Err(err) = run(command, "pg_dump") {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, file)
        .with_context(|| format!("moving the backup to {}", file.display()))
}

/// Reads `file` through as pg_restore would, restoring nothing: a truncated or damaged
/// backup is refused here, before anything is touched.
pub fn check(file: &Path, bin_dir: Option<&Path>) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let mut command = tool(bin_dir, "pg_restore");
    command.args(["--file", "/dev/null"]).arg(file);
    run(command, "pg_restore").with_context(|| {
        format!(
            "{} is not a whole backup made by `bookstore backup` (truncated or damaged?); \
             nothing was restored",
            file.display()
        )
    })
}

/// The tables the database has in its public schema (0: empty, safe to restore into).
pub fn table_count(conn: &mut PgConnection) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Tables {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let tables: Tables =
        sql_query("SELECT count(*) AS count FROM pg_tables WHERE schemaname = 'public'")
            .get_result(conn)
            .context("looking at the target database")?;
    Ok(tables.count)
}

/// Restores `file` (already [`check`]ed) into the database at `url`, in one transaction.
/// `replace`: empty the database's `public` schema first (the caller has refused a non-empty
/// database unless told to replace it).
///
/// pg_restore's script empties `search_path` for safety, but our SQL functions call each
/// other unqualified (generated columns and indexes evaluate them while the tables load), so
/// the script goes through psql with that one statement set to `public` instead.
pub fn restore(
    url: &str,
    file: &Path,
    replace: bool,
    bin_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let mut script = tool(bin_dir, "pg_restore");
    script.args(["--no-owner", "--no-privileges", "--file", "-"]);
    // Not pg_restore's `--clean`: it drops a partition's primary key before its table, which
    // PostgreSQL refuses ("cannot drop inherited constraint"), so `tasks` (partitioned) could
    // never be replaced. Emptying the schema in the same transaction replaces all of it.
    let prelude: &'static [u8] = if replace {
        b"DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n"
    } else {
        b""
    };
    let mut script = script
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running pg_restore (is PostgreSQL's client installed?)")?;
    let mut psql = tool(bin_dir, "psql")
        .args([
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--single-transaction",
        ])
        .arg("--dbname")
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running psql (is PostgreSQL's client installed?)")?;
    let from = script.stdout.take().expect("piped");
    let to = psql.stdin.take().expect("piped");
    let copied = std::thread::spawn(move || pipe_with_search_path(prelude, from, to));
    let script_out = script.wait_with_output().context("pg_restore")?;
    let copied = copied
        .join()
        .map_err(|_| anyhow::anyhow!("the restore pipe panicked"))?;
    let psql_out = psql.wait_with_output().context("psql")?;
    let failed =
        |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).trim().to_owned();
    // psql first: when it stops at an error, pg_restore dies writing to the closed pipe and
    // has nothing to say.
    if !psql_out.status.success() {
        bail!(
            "restoring (nothing was changed: one transaction): {}",
            failed(&psql_out)
        );
    }
    if !script_out.status.success() {
        bail!("pg_restore: {}", failed(&script_out));
    }
    copied.context("feeding the backup to psql")
}

/// Copies pg_restore's script after `prelude`, with its empty `search_path` (outside COPY
/// data) set to `public`.
fn pipe_with_search_path(
    prelude: &[u8],
    from: impl Read,
    mut to: impl Write,
) -> std::io::Result<()> {
    to.write_all(prelude)?;
    const EMPTIED: &[u8] = b"SELECT pg_catalog.set_config('search_path', '', false);\n";
    const PUBLIC: &[u8] = b"SELECT pg_catalog.set_config('search_path', 'public', false);\n";
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    let mut in_copy = false;
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            return to.flush();
        }
        if in_copy {
            in_copy = line != b"\\.\n";
        } else if line.starts_with(b"COPY ") && line.ends_with(b"FROM stdin;\n") {
            in_copy = true;
        }
        let out = if !in_copy && line == EMPTIED {
            PUBLIC
        } else {
            &line[..]
        };
        to.write_all(out)?;
    }
}

/// Deletes all but the newest `keep` backups in `dir` (`bookstore-*.dump`, named by their
/// time, so the name orders them); returns how many it deleted.
pub fn keep_last(dir: &Path, keep: usize) -> anyhow::Result<usize> {
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("bookstore-") && name.ends_with(".dump"))
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for old in &backups[..excess] {
        std::fs::remove_file(old).with_context(|| format!("deleting {}", old.display()))?;
    }
    Ok(excess)
}
