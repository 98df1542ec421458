//! A private PostgreSQL cluster that the app creates, starts and stops itself, from the
//! server binaries already on the machine (initdb, pg_ctl). Used when no `DATABASE_URL` is
//! given, and by the test harness for a throwaway cluster per test run.
//!
//! Layout of the data folder:
//! ```text
//! <root>/pg/          PGDATA (created by initdb)
//! <root>/run/         Unix socket (no TCP port, so nothing collides with another server)
//! <root>/postgres.log server log
//! <root>/owner.pid    pid of the app process that started the server and will stop it
//! ```
//! PostgreSQL refuses to run as root, so when the app runs as root every server command runs
//! as the `postgres` system user (`runuser -u postgres --`) on a folder that user owns.

use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    thread,
    time::Duration,
};

use anyhow::{Context, bail};
use diesel::{Connection, PgConnection, RunQueryDsl, sql_query};
use nix::unistd::{Pid, Uid, User};

mod binaries;
mod standby;

use binaries::has_server_binaries;
pub use binaries::{BinariesNotFound, find_server_binaries};

/// Superuser created by initdb; the app connects as it over the private socket.
const SUPERUSER: &str = "postgres";
/// Port number only names the socket file (`.s.PGSQL.5432`); no TCP port is opened.
const PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes; keep a margin for the file name.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The data folder (created if missing).
    pub root: PathBuf,
    /// Where initdb and pg_ctl live; searched for when `None`.
    pub bin_dir: Option<PathBuf>,
    /// `false` trades crash safety for speed (fsync off): only for throwaway test clusters.
    pub durable: bool,
    /// Take over a server that is already running on this folder when the app that started it
    /// is gone (it crashed): this process then stops it on exit. A `bookstore psql` session
    /// never takes over: the app may still be starting.
    pub adopt_orphan: bool,
}

/// A running private cluster. Stopping happens in [`EmbeddedCluster::stop`] or on drop, and only
/// if this process started (or adopted) the server.
#[derive(Debug)]
pub struct EmbeddedCluster {
    root: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as_postgres: bool,
    owns_server: bool,
}

impl EmbeddedCluster {
    /// Creates the cluster on first use, starts it unless it already runs, and waits until it
    /// accepts connections (after a crash PostgreSQL replays its WAL first; nothing is lost).
    pub fn start(options: &ClusterOptions) -> anyhow::Result<EmbeddedCluster> {
        let bin_dir = match &options.bin_dir {
            Some(dir) if has_server_binaries(dir) => dir.clone(),
            Some(dir) => bail!(
                "BOOKSTORE_PG_BIN_DIR {} does not hold initdb, pg_ctl and postgres",
                dir.display()
            ),
            None => find_server_binaries().ok_or(BinariesNotFound)?,
        };
        let run_as_postgres = Uid::effective().is_root();
        let root = std::path::absolute(&options.root)
            .with_context(|| format!("data folder {}", options.root.display()))?;
        let mut cluster = EmbeddedCluster {
            pgdata: root.join("pg"),
            socket_dir: socket_dir_for(&root),
            root,
            bin_dir,
            run_as_postgres,
            owns_server: false,
        };
        cluster.prepare_folders()?;
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        cluster.write_settings(options.durable)?;
        if cluster.is_running()? {
            let owner = cluster.recorded_owner();
            if options.adopt_orphan && !owner.is_some_and(process_is_alive) {
                tracing::info!(root = %cluster.root.display(), "adopting a running cluster whose app is gone");
                cluster.record_owner()?;
                cluster.owns_server = true;
            }
        } else {
            cluster.start_server()?;
            cluster.record_owner()?;
            cluster.owns_server = true;
        }
        Ok(cluster)
    }

    /// A libpq connection string for `dbname` over the private socket.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user={SUPERUSER} dbname={}",
            quote_conninfo(&self.socket_dir.to_string_lossy()),
            quote_conninfo(dbname)
        )
    }

    /// Creates the database unless it exists.
    pub fn ensure_database(&self, dbname: &str) -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(&self.conninfo("postgres"))
            .context("connecting to the private cluster")?;
        let exists = diesel::select(diesel::dsl::exists(
            pg_database::table.filter(pg_database::datname.eq(dbname)),
        ))
        .get_result::<bool>(&mut conn)?;
        if !exists {
            sql_query(format!("CREATE DATABASE {}", quote_ident(dbname))).execute(&mut conn)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the server's Unix socket (its only listener).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    pub fn owns_server(&self) -> bool {
        self.owns_server
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended, nothing is lost) if this
    /// process started it. Safe to call twice.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.owns_server {
            return Ok(());
        }
        self.owns_server = false;
        if !self.postmaster_is_alive() {
            // It died (and was not revived): nothing to stop, and pg_ctl would only fail.
            let _ = fs::remove_file(self.root.join("owner.pid"));
            tracing::warn!(root = %self.root.display(), "PostgreSQL was not running at stop");
            return Ok(());
        }
        let pgdata = self.pgdata.clone();
        self.run_checked(
            "pg_ctl",
            [OsStr::new("stop"), OsStr::new("-D"), pgdata.as_os_str()]
                .into_iter()
                .chain(["-m", "fast", "-w", "-t", "120", "-s"].map(OsStr::new)),
        )?;
        let _ = fs::remove_file(self.root.join("owner.pid"));
        tracing::info!(root = %self.root.display(), "PostgreSQL stopped");
        Ok(())
    }

    fn prepare_folders(&self) -> anyhow::Result<()> {
        for dir in [&self.root, &self.socket_dir] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            if self.run_as_postgres {
                let postgres = postgres_user()?;
                nix::unistd::chown(dir, Some(postgres.uid), Some(postgres.gid))
                    .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        if self.run_as_postgres {
            // The server chdirs into its data folder: every parent must be enterable by postgres.
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&self.root)
                .status()
                .context("running runuser")?;
            if !reachable.success() {
                bail!(
                    "the postgres system user cannot enter {} (a parent folder is closed to \
                     other users, like a 0700 home folder): set BOOKSTORE_DATA_DIR to a folder \
                     it can reach, e.g. /var/lib/bookstore or /tmp/bookstore",
                    self.root.display()
                );
            }
        }
        Ok(())
    }

    fn init(&self) -> anyhow::Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "creating the private PostgreSQL cluster");
        let pgdata = self.pgdata.clone();
        self.run_checked(
            "initdb",
            [OsStr::new("-D"), pgdata.as_os_str()].into_iter().chain(
                [
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
                .map(OsStr::new),
            ),
        )?;
        let conf = self.pgdata.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str("\n# Written by bookstore; its own settings are rewritten at each start.\n");
        text.push_str("include_if_exists = 'bookstore.conf'\n");
        fs::write(&conf, text)?;
        Ok(())
    }

    /// Settings that depend on where the folder is now, so they are rewritten at every start.
    fn write_settings(&self, durable: bool) -> anyhow::Result<()> {
        let mut text = format!(
            "listen_addresses = ''\nport = {PORT}\nunix_socket_directories = '{}'\n\
             max_connections = 300\n",
            self.socket_dir.display().to_string().replace('\'', "''")
        );
        if !durable {
            text.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let path = self.pgdata.join("bookstore.conf");
        fs::write(&path, text)?;
        if self.run_as_postgres {
            let postgres = postgres_user()?;
            nix::unistd::chown(&path, Some(postgres.uid), Some(postgres.gid))?;
        }
        Ok(())
    }

    /// Whether the postmaster of this cluster is alive: a cheap check (no process spawned),
    /// made every second by the app's watcher.
    pub fn postmaster_is_alive(&self) -> bool {
        let pid = fs::read_to_string(self.pgdata.join("postmaster.pid"))
            .ok()
            .and_then(|text| {
                text.lines()
                    .next()
                    .and_then(|line| line.trim().parse::<i32>().ok())
            });
        pid.is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
            && !self.postmaster_is_zombie()
    }

    /// Starts the server again if this process owns it and it died (kill -9, the OOM killer).
    /// Returns whether it had to. PostgreSQL replays its WAL: nothing committed is lost.
    pub fn revive_if_dead(&mut self) -> anyhow::Result<bool> {
        if !self.owns_server || self.postmaster_is_alive() {
            return Ok(false);
        }
        tracing::error!(root = %self.root.display(), "PostgreSQL died: starting it again");
        self.start_server()?;
        self.record_owner()?;
        Ok(true)
    }

    fn is_running(&self) -> anyhow::Result<bool> {
        let output = self.run(
            "pg_ctl",
            [
                OsStr::new("status"),
                OsStr::new("-D"),
                self.pgdata.as_os_str(),
            ],
        )?;
        // pg_ctl status: 0 running, 3 not running, 4 no data folder. Right after a crash the
        // dead postmaster can linger as a zombie until init reaps it; that is not running.
        Ok(output.status.success() && !self.postmaster_is_zombie())
    }

    fn postmaster_is_zombie(&self) -> bool {
        let pid = fs::read_to_string(self.pgdata.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()));
        let Some(pid) = pid else { return false };
        // /proc/<pid>/stat: "pid (comm) state ..."; the state follows the last ')'.
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    fn start_server(&self) -> anyhow::Result<()> {
        let log = self.root.join("postgres.log");
        let args = [
            OsStr::new("start"),
            OsStr::new("-D"),
            self.pgdata.as_os_str(),
            OsStr::new("-l"),
            log.as_os_str(),
            OsStr::new("-w"),
            OsStr::new("-t"),
            OsStr::new("300"),
            OsStr::new("-s"),
        ];
        // Right after a crash the old server's processes may still be exiting (or waiting to be
        // reaped), and the new postmaster refuses to start while they exist: try for a while.
        let mut attempt = 1;
        loop {
            let output = self.run("pg_ctl", args)?;
            if output.status.success() {
                tracing::info!(root = %self.root.display(), "PostgreSQL started");
                return Ok(());
            }
            if attempt == 15 {
                let log_tail = fs::read_to_string(&log)
                    .map(|text| {
                        text.lines()
                            .rev()
                            .take(10)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                bail!(
                    "PostgreSQL did not start ({}): {}\nlast lines of {}:\n{log_tail}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim(),
                    log.display()
                );
            }
            attempt += 1;
            thread::sleep(Duration::from_secs(1));
        }
    }

    fn recorded_owner(&self) -> Option<Pid> {
        let text = fs::read_to_string(self.root.join("owner.pid")).ok()?;
        text.trim().parse().ok().map(Pid::from_raw)
    }

    fn record_owner(&self) -> anyhow::Result<()> {
        fs::write(self.root.join("owner.pid"), std::process::id().to_string())
            .context("writing owner.pid")
    }

    fn run<'a>(
        &self,
        program: &str,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> anyhow::Result<Output> {
        let binary = self.bin_dir.join(program);
        let mut command = if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&binary);
            command
        } else {
            Command::new(&binary)
        };
        command.args(args).current_dir(&self.root);
        command
            .output()
            .with_context(|| format!("running {}", binary.display()))
    }

    fn run_checked<'a>(
        &self,
        program: &str,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> anyhow::Result<()> {
        let output = self.run(program, args)?;
        if !output.status.success() {
            bail!(
                "{program} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!("stopping PostgreSQL: {err:#}");
        }
    }
}

diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}
use diesel::{ExpressionMethods, QueryDsl};

/// `<root>/run` unless that makes the socket path too long; then a folder under /tmp named
/// after the data folder, so the same data folder always gets the same socket.
fn socket_dir_for(root: &Path) -> PathBuf {
    let preferred = root.join("run");
    if preferred.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        return preferred;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    PathBuf::from(format!("/tmp/bookstore-{:016x}", hasher.finish()))
}

fn postgres_user() -> anyhow::Result<User> {
    User::from_name("postgres")?.context(
        "running as root needs the `postgres` system user (PostgreSQL refuses to run as root); \
         install the postgresql package or run as an ordinary user",
    )
}

fn process_is_alive(pid: Pid) -> bool {
    nix::sys::signal::kill(pid, None).is_ok()
}

/// Quotes a value for a libpq keyword/value connection string.
fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests;
