//! `import_catalog`: upserts books and authors from a CSV in the goodbooks-10k format, in
//! batches, with progress. Books are matched by their goodreads id: new ones are inserted with
//! a starting price and stock, known ones get their title, year, ISBN, language, description
//! and authors updated (price and stock are the shop's own and stay). Rows that cannot be
//! repaired are skipped with the reason.

use std::{collections::HashMap, fmt::Write as _, time::Duration};

use diesel::{dsl::sql, prelude::*, sql_types::Bool, upsert::excluded};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{
    db::schema::{book_authors, books},
    domain::catalog::{
        edit::{AuthorLink, NewBook, author_links, ensure_authors},
        goodbooks::{CatalogEntry, GoodbooksRecord},
    },
    tasks::{
        TaskContext, TaskError, TaskOutput,
        params::specs_of,
        program::{ProgramFn, ProgramFunction},
    },
};

const BATCH: usize = 500;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    /// Path of the CSV file on the server (relative to the app's folder).
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

fn run_import(ctx: &TaskContext) -> Result<TaskOutput, TaskError> {
    let ImportParams { path } = ctx.params()?;
    let file = std::fs::File::open(&path)
        .map_err(|err| TaskError::failed(format!("cannot open {path}: {err}")))?;
    let report = import_goodbooks(ctx, file)?;
    Ok(TaskOutput::Text(report.summary()))
}

/// Reads the whole CSV (to know the total for progress), then writes it in batches, each in
/// its own transaction, checking for cancellation between batches.
pub fn import_goodbooks(
    ctx: &TaskContext,
    input: impl std::io::Read,
) -> Result<ImportReport, TaskError> {
    let mut report = ImportReport::default();
    let mut entries: Vec<(usize, CatalogEntry)> = Vec::new();
    let mut reader = csv::Reader::from_reader(input);
    for (index, record) in reader.deserialize::<GoodbooksRecord>().enumerate() {
        let line = index + 2;
        report.rows += 1;
        match record
            .map_err(|err| format!("unreadable row: {err}"))
            .and_then(CatalogEntry::try_from)
        {
            Ok(entry) => entries.push((line, entry)),
            Err(reason) => report.skipped.push((line, reason)),
        }
    }
    let total = entries.len() as u64;
    let mut conn = ctx.conn()?;
    for (done, batch) in entries.chunks(BATCH).enumerate() {
        ctx.progress((done * BATCH) as u64, total, "importing")?;
        match conn.transaction(|conn| upsert_batch(conn, batch)) {
            Ok((inserted, updated)) => {
                report.inserted += inserted;
                report.updated += updated;
            }
            // One bad row (an ISBN another book has, say) fails its batch: redo it row by row
            // so only that row is skipped.
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
    report.skipped.sort();
    ctx.progress(total, total, "imported")?;
    Ok(report)
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
    let names: Vec<&str> = batch
        .iter()
        .flat_map(|(_, e)| e.authors.iter().map(String::as_str))
        .collect();
    let author_ids = ensure_authors(conn, &names)?;
    let rows: Vec<NewBook> = batch
        .iter()
        .map(|(_, entry)| NewBook::from(entry))
        .collect();
    // xmax = 0 only on rows this statement inserted (an updated row carries our xid).
    let written: Vec<(i64, Option<i64>, bool)> = diesel::insert_into(books::table)
        .values(&rows)
        .on_conflict(books::goodreads_id)
        .do_update()
        .set((
            books::title.eq(excluded(books::title)),
            books::year.eq(excluded(books::year)),
            books::isbn.eq(excluded(books::isbn)),
            books::language.eq(excluded(books::language)),
            books::description.eq(excluded(books::description)),
            books::updated_at.eq(diesel::dsl::now),
        ))
        .returning((books::id, books::goodreads_id, sql::<Bool>("xmax = 0")))
        .get_results(conn)?;
    let by_goodreads: HashMap<i64, &CatalogEntry> =
        batch.iter().map(|(_, e)| (e.goodreads_id, e)).collect();
    let ids: Vec<i64> = written.iter().map(|(id, _, _)| *id).collect();
    diesel::delete(book_authors::table.filter(book_authors::book_id.eq_any(&ids))).execute(conn)?;
    let links: Vec<AuthorLink> = written
        .iter()
        .filter_map(|(id, goodreads, _)| {
            let entry = by_goodreads.get(&(*goodreads)?)?;
            Some(author_links(*id, &entry.authors, &author_ids))
        })
        .flatten()
        .collect();
    diesel::insert_into(book_authors::table)
        .values(&links)
        .execute(conn)?;
    let inserted = written.iter().filter(|(_, _, inserted)| *inserted).count();
    Ok((inserted, written.len() - inserted))
}
