//! A streaming standby of a running cluster, and its promotion: PostgreSQL's own replication
//! (`pg_basebackup -R`, `pg_ctl promote`), for trying replicas and failover on one machine and
//! for the tests that do.

use std::ffi::OsStr;

use anyhow::Context;

use super::{ClusterOptions, EmbeddedCluster, PORT, SUPERUSER, socket_dir_for};

impl EmbeddedCluster {
    /// Copies this running cluster into `options.root` with `pg_basebackup -R` (the copy
    /// streams from this one: PostgreSQL's defaults allow it over the local socket) and starts
    /// the copy as a hot standby, readable and read-only.
    pub fn start_standby(&self, options: &ClusterOptions) -> anyhow::Result<EmbeddedCluster> {
        let root = std::path::absolute(&options.root)
            .with_context(|| format!("standby folder {}", options.root.display()))?;
        let standby = EmbeddedCluster {
            pgdata: root.join("pg"),
            socket_dir: socket_dir_for(&root),
            root,
            bin_dir: self.bin_dir.clone(),
            run_as_postgres: self.run_as_postgres,
            owns_server: false,
        };
        standby.prepare_folders()?;
        let port = PORT.to_string();
        let basebackup = self.client_binary("pg_basebackup");
        self.run_checked(
            &basebackup.to_string_lossy(),
            [
                OsStr::new("-D"),
                standby.pgdata.as_os_str(),
                OsStr::new("-h"),
                self.socket_dir.as_os_str(),
            ]
            .into_iter()
            .chain(
                [
                    "-p", &port, "-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast",
                ]
                .map(OsStr::new),
            ),
        )
        .context("copying the cluster for a standby")?;
        EmbeddedCluster::start(&ClusterOptions {
            bin_dir: Some(self.bin_dir.clone()),
            ..options.clone()
        })
    }

    /// A client program of the server's version: beside `pg_ctl`, where it really is (the
    /// server binaries found may be links from a folder that holds only them).
    fn client_binary(&self, name: &str) -> std::path::PathBuf {
        let beside = self.bin_dir.join(name);
        if beside.is_file() {
            return beside;
        }
        std::fs::canonicalize(self.bin_dir.join("pg_ctl"))
            .ok()
            .and_then(|pg_ctl| pg_ctl.parent().map(|dir| dir.join(name)))
            .unwrap_or(beside)
    }

    /// Ends recovery: this standby becomes a primary (waits until it takes writes). Stop the
    /// old primary first, or two servers take writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        let pgdata = self.pgdata.clone();
        self.run_checked(
            "pg_ctl",
            [OsStr::new("promote"), OsStr::new("-D"), pgdata.as_os_str()]
                .into_iter()
                .chain(["-w", "-t", "60", "-s"].map(OsStr::new)),
        )
        .context("promoting the standby")
    }
}
