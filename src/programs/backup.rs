//! `backup`: a `pg_dump -Fc` of the app's database into `<data dir>/backups/`, named by its
//! time, keeping the newest `keep`. Plain (files, not database work): a crash mid-dump leaves
//! only a `.partial` file, which the next run's clean-up ignores and a new dump replaces.

use std::time::Duration;

use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{
    backup,
    tasks::{
        params::specs_of,
        program::{ProgramFn, ProgramFunction, TaskError, TaskOutput},
    },
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BackupParams {
    /// How many backups to keep (the newest).
    #[serde(default = "seven")]
    #[schemars(range(min = 1, max = 1000))]
    keep: u32,
}

fn seven() -> u32 {
    7
}

pub fn backup(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "backup",
        description: "Backs the database up into <data dir>/backups/ (pg_dump, custom format; \
                      restore with `bookstore restore FILE`) and keeps the newest.",
        params: specs_of::<BackupParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: Some("daily at 02:00"),
        default_max_running: Some(1),
        run: ProgramFn::Plain(|ctx| {
            let BackupParams { keep } = ctx.params()?;
            let settings = &ctx.settings().backups;
            let url = settings
                .database_url
                .as_deref()
                .ok_or_else(|| TaskError::failed("this node has no database URL to back up"))?;
            std::fs::create_dir_all(&settings.dir).map_err(|err| {
                TaskError::failed(format!("creating {}: {err}", settings.dir.display()))
            })?;
            let name = format!("bookstore-{}.dump", Utc::now().format("%Y%m%d-%H%M%S"));
            let file = settings.dir.join(&name);
            backup::dump(url, &file, settings.pg_bin_dir.as_deref())
                .map_err(|err| TaskError::failed(format!("{err:#}")))?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let deleted = backup::keep_last(&settings.dir, keep as usize)
                .map_err(|err| TaskError::failed(format!("{err:#}")))?;
            Ok(TaskOutput::Text(format!(
                "Backed up to {} ({} KiB); {deleted} older backup(s) deleted, keeping {keep}.",
                file.display(),
                size.div_ceil(1024)
            )))
        }),
    }
}
