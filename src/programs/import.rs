//! `import_catalog`: upserts books and authors from a CSV in the goodbooks-10k format, in
//! batches, with progress. Books are matched by their goodreads id: new ones are inserted with
//! a starting price and stock, known ones get their title, year, ISBN, language, description
//! and authors updated (price and stock are the shop's own and stay). Rows that cannot be
//! repaired are skipped with the reason.
//!
//! The file must be a regular file inside the import folder (`BOOKSTORE_IMPORT_DIR`), no
//! larger than `BOOKSTORE_IMPORT_MAX_MB`: the app may run as root, and a path from a form must
//! not read `/etc/shadow`, `/dev/zero` or anything else outside that folder.

use std::{
    fmt::Write as _,
    fs::File,
    io::Read,
    path::{Component, Path},
    time::Duration,
};

use diesel::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{
    domain::catalog::{
        bulk,
        goodbooks::{CatalogEntry, GoodbooksRecord},
    },
    tasks::{
        TaskContext, TaskError, TaskOutput,
        params::specs_of,
        program::{ProgramFn, ProgramFunction},
        refusal::ParamRefusal,
    },
};

const BATCH: usize = 500;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    /// The CSV file's name in the import folder (a path inside it also works).
    #[schemars(length(max = 4096))]
    path: String,
}

pub fn import_catalog(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "import_catalog",
        description: "Imports books from a goodbooks-10k CSV file on the server: inserts new books, updates known ones.",
        params: specs_of::<ImportParams>(),
        timeout,
        max_attempts: 1,
        default_schedule: None,
        // One import at a time: two would race for the same ISBNs and double the load.
        default_max_running: Some(1),
        run: ProgramFn::Plain(run_import),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: usize,
    pub inserted: usize,
    pub updated: usize,
    /// (CSV line, reason)
    pub skipped: Vec<(usize, String)>,
}

impl ImportReport {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "Read {} rows: {} inserted, {} updated, {} skipped.",
            self.rows,
            self.inserted,
            self.updated,
            self.skipped.len()
        );
        if !self.skipped.is_empty() {
            text.push_str("\nSkipped rows:");
            for (line, reason) in &self.skipped {
                let _ = write!(text, "\n  line {line}: {reason}");
            }
        }
        text
    }
}

/// The file must be there (and allowed) before the import is queued.
pub fn check_import_params(
    params: &serde_json::Value,
    settings: &crate::tasks::program::ProgramSettings,
) -> Result<(), ParamRefusal> {
    let Ok(ImportParams { path }) = serde_json::from_value::<ImportParams>(params.clone()) else {
        return Ok(());
    };
    open_in_import_dir(&settings.import_dir, settings.import_max_bytes, &path)
        .map(drop)
        .map_err(|err| ParamRefusal::after_name("path", err.to_string()))
}

fn run_import(ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
    let ImportParams { path } = ctx.params()?;
    let settings = ctx.settings();
    let (file, size) = open_in_import_dir(&settings.import_dir, settings.import_max_bytes, &path)?;
    let report = import_goodbooks(ctx, file, size)?;
    Ok(TaskOutput::Text(report.summary()))
}

/// Opens `path` if it names a regular file inside `dir`, reached without any symbolic link,
/// no larger than `max_bytes`; returns it with its size. The type of every step is checked on
/// the path first (`symlink_metadata`, which follows no link), so a named pipe or a device is
/// refused without being opened, and the open itself neither follows a link nor waits
/// (`O_NOFOLLOW | O_NONBLOCK`). The messages say the same of every link, wherever it points,
/// and never show the server's folders.
fn open_in_import_dir(dir: &Path, max_bytes: u64, path: &str) -> Result<(File, u64), TaskError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let relative = Path::new(path.trim());
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)))
    {
        return Err(TaskError::failed(format!(
            "{path:?}: give the name of a file in the import folder (no absolute path, no ..)"
        )));
    }
    let missing = || {
        TaskError::failed(format!(
            "there is no file {path:?} in the import folder: upload a file first"
        ))
    };
    let not_regular = || {
        TaskError::failed(format!(
            "{path:?} is not a regular file in the import folder: upload a file and give its name"
        ))
    };
    let unreadable =
        |err: std::io::Error| TaskError::failed(format!("cannot read {path:?}: {err}"));
    // The folder itself may be a link the operator made; nothing inside it may be.
    let mut full = dir.canonicalize().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => missing(),
        _ => unreadable(err),
    })?;
    let steps: Vec<Component> = relative.components().collect();
    let mut checked = None;
    for (index, step) in steps.iter().enumerate() {
        full.push(step);
        let metadata = std::fs::symlink_metadata(&full).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => missing(),
            _ => unreadable(err),
        })?;
        let last = index + 1 == steps.len();
        let kind = metadata.file_type();
        if (last && !kind.is_file()) || (!last && !kind.is_dir()) {
            return Err(not_regular());
        }
        checked = Some(metadata);
    }
    let checked = checked.ok_or_else(missing)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&full)
        .map_err(|err| match err.raw_os_error() {
            Some(nix::libc::ELOOP) => not_regular(),
            _ => TaskError::failed(format!("cannot open {path:?}: {err}")),
        })?;
    // The opened file's own metadata: what is read is the very file that was checked.
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() || (metadata.dev(), metadata.ino()) != (checked.dev(), checked.ino()) {
        return Err(not_regular());
    }
    if metadata.len() > max_bytes {
        return Err(TaskError::failed(format!(
            "{path:?} has {} bytes, more than the limit of {max_bytes} (BOOKSTORE_IMPORT_MAX_MB)",
            metadata.len()
        )));
    }
    Ok((file, metadata.len()))
}

/// Streams the CSV: every 500 rows are written in a transaction of their own, with progress
/// (bytes read of `size`) and a chance to cancel between batches. Never reads past `size`.
fn import_goodbooks(
    ctx: &TaskContext,
    input: impl Read,
    size: u64,
) -> Result<ImportReport, TaskError> {
    let mut report = ImportReport::default();
    let mut reader = csv::Reader::from_reader(input.take(size));
    let headers = reader
        .headers()
        .map_err(|err| TaskError::failed(format!("not a CSV file with a header row: {err}")))?
        .clone();
    let mut conn = ctx.conn()?;
    let mut batch: Vec<(usize, CatalogEntry)> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    let mut line = 1;
    loop {
        line += 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                report.rows += 1;
                match record
                    .deserialize::<GoodbooksRecord>(Some(&headers))
                    .map_err(|err| format!("unreadable row: {err}"))
                    .and_then(CatalogEntry::try_from)
                {
                    Ok(entry) => batch.push((line, entry)),
                    Err(reason) => report.skipped.push((line, reason)),
                }
            }
            Err(err) if err.is_io_error() => {
                return Err(TaskError::failed(format!("reading the file: {err}")));
            }
            Err(err) => {
                report.rows += 1;
                report
                    .skipped
                    .push((line, format!("unreadable row: {err}")));
            }
        }
        if batch.len() == BATCH {
            ctx.progress(reader.position().byte(), size, "importing")?;
            write_batch(&mut conn, &batch, &mut report);
            batch.clear();
        }
    }
    write_batch(&mut conn, &batch, &mut report);
    report.skipped.sort();
    // Until autovacuum gets to thousands of new rows, searches are planned without statistics
    // and the typo dictionary's index-only scans visit the table for every word (measured 4x
    // slower): do now what autovacuum would do later.
    if report.inserted > 0 {
        for statement in [
            "VACUUM (ANALYZE) search_words",
            "ANALYZE books, book_authors, authors",
        ] {
            diesel::sql_query(statement)
                .execute(&mut conn)
                .map_err(|err| TaskError::failed(format!("updating statistics: {err}")))?;
        }
    }
    ctx.progress(size, size, "imported")?;
    Ok(report)
}

/// Writes one batch in a transaction; a batch one bad row fails (an ISBN another book has,
/// say) is redone row by row, so only that row is skipped.
fn write_batch(
    conn: &mut PgConnection,
    batch: &[(usize, CatalogEntry)],
    report: &mut ImportReport,
) {
    if batch.is_empty() {
        return;
    }
    match conn.transaction(|conn| upsert_batch(conn, batch)) {
        Ok((inserted, updated)) => {
            report.inserted += inserted;
            report.updated += updated;
        }
        Err(_) => {
            for row in batch {
                match conn.transaction(|conn| upsert_batch(conn, std::slice::from_ref(row))) {
                    Ok((inserted, updated)) => {
                        report.inserted += inserted;
                        report.updated += updated;
                    }
                    Err(err) => report.skipped.push((row.0, database_reason(&err))),
                }
            }
        }
    }
}

fn database_reason(err: &diesel::result::Error) -> String {
    match err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) if info.constraint_name() == Some("books_isbn_key") => {
            "another book already has this ISBN".to_owned()
        }
        other => format!("the database refused it: {other}"),
    }
}

/// Returns (inserted, updated).
fn upsert_batch(
    conn: &mut PgConnection,
    batch: &[(usize, CatalogEntry)],
) -> QueryResult<(usize, usize)> {
    let entries: Vec<&CatalogEntry> = batch.iter().map(|(_, entry)| entry).collect();
    bulk::upsert_entries(conn, &entries)
}
