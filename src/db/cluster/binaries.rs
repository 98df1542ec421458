//! Finding PostgreSQL's server binaries on this machine (initdb, pg_ctl, postgres), the way
//! the app and the test harness both do.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

#[derive(Debug, thiserror::Error)]
#[error(
    "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found in PATH, `pg_config --bindir` \
     or /usr/lib/postgresql/*/bin: install them (`apt-get install postgresql`), point \
     BOOKSTORE_PG_BIN_DIR at them, or set DATABASE_URL to use an existing server"
)]
pub struct BinariesNotFound;

/// Where the server binaries are: PATH, then `pg_config --bindir`, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn find_server_binaries() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    from_path
        .into_iter()
        .chain(from_pg_config)
        .chain(versioned.into_iter().map(|(_, dir)| dir))
        .find(|dir| has_server_binaries(dir))
}

pub(super) fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|name| dir.join(name).is_file())
}
