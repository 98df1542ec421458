//! The demo catalog: 300 real books from goodbooks-10k (CC BY-SA 4.0, see `src/seed/README.md`),
//! compiled into the binary and loaded into an empty catalog at start.

use std::collections::HashMap;

use anyhow::Context;
use diesel::{prelude::*, upsert::excluded};

use crate::{
    db::schema::{authors, book_authors, books},
    domain::{
        accounts::{self, DisplayName, Login, NewPassword, Role},
        catalog::goodbooks::{CatalogEntry, GoodbooksRecord},
    },
};

/// Demo accounts for local use, stated in the README: (login, name, password, role).
/// Turn demo data off (`BOOKSTORE_SEED_DEMO=false`) anywhere real.
pub const DEMO_ACCOUNTS: [(&str, &str, &str, Role); 2] = [
    ("alice", "Alice Reader", "alice-reads-books", Role::Customer),
    ("staff", "Sam Staff", "staff-runs-tasks", Role::Staff),
];

/// Creates the demo accounts that do not exist yet; returns how many it created.
pub fn load_demo_accounts(conn: &mut PgConnection) -> anyhow::Result<usize> {
    let mut created = 0;
    for (login, name, password, role) in DEMO_ACCOUNTS {
        if accounts::find_by_login(conn, login)?.is_some() {
            continue;
        }
        let login = Login::parse(login).map_err(anyhow::Error::msg)?;
        let name = DisplayName::parse(name).map_err(anyhow::Error::msg)?;
        let password = NewPassword::parse(password).map_err(anyhow::Error::msg)?;
        match accounts::register(conn, &login, &name, &password, role) {
            Ok(_) => created += 1,
            // Another node created it meanwhile.
            Err(accounts::RegisterError::LoginTaken) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(created)
}

const DEMO_BOOKS_CSV: &str = include_str!("seed/demo_books.csv");

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub books_inserted: usize,
}

/// Loads the demo catalog unless the shop already has books: once it has, the catalog is the
/// staff's to manage, and a restart must neither duplicate nor resurrect anything.
pub fn load_demo_catalog(conn: &mut PgConnection) -> anyhow::Result<SeedReport> {
    let has_books: bool =
        diesel::select(diesel::dsl::exists(books::table.select(books::id))).get_result(conn)?;
    if has_books {
        return Ok(SeedReport::default());
    }
    let entries = demo_entries()?;
    let books_inserted = conn.transaction(|conn| insert_new_entries(conn, &entries))?;
    Ok(SeedReport { books_inserted })
}

/// The parsed demo rows. Every row of our own file must parse: a bad one is a bug.
pub fn demo_entries() -> anyhow::Result<Vec<CatalogEntry>> {
    let mut reader = csv::Reader::from_reader(DEMO_BOOKS_CSV.as_bytes());
    reader
        .deserialize::<GoodbooksRecord>()
        .enumerate()
        .map(|(index, record)| {
            let line = index + 2;
            let record = record.with_context(|| format!("demo_books.csv line {line}"))?;
            CatalogEntry::try_from(record)
                .map_err(|reason| anyhow::anyhow!("demo_books.csv line {line}: {reason}"))
        })
        .collect()
}

/// Inserts the entries whose goodreads id is not in the catalog yet; returns how many.
/// Idempotent: running it again inserts nothing.
pub fn insert_new_entries(conn: &mut PgConnection, entries: &[CatalogEntry]) -> QueryResult<usize> {
    let author_ids = ensure_authors(conn, entries)?;
    let mut inserted = 0;
    // Bound parameters per statement stay far below PostgreSQL's limit of 65,535.
    for chunk in entries.chunks(500) {
        let new_books: Vec<_> = chunk
            .iter()
            .map(|entry| {
                (
                    books::title.eq(&entry.title),
                    books::year.eq(entry.year),
                    books::isbn.eq(entry.isbn.as_deref()),
                    books::language.eq(entry.language.as_deref()),
                    books::description.eq(&entry.description),
                    books::price_cents.eq(entry.price_cents),
                    books::stock.eq(entry.stock),
                    books::goodreads_id.eq(entry.goodreads_id),
                )
            })
            .collect();
        let created: Vec<(i64, Option<i64>)> = diesel::insert_into(books::table)
            .values(&new_books)
            .on_conflict_do_nothing()
            .returning((books::id, books::goodreads_id))
            .get_results(conn)?;
        inserted += created.len();
        let by_goodreads: HashMap<i64, &CatalogEntry> = chunk
            .iter()
            .map(|entry| (entry.goodreads_id, entry))
            .collect();
        let author_ids = &author_ids;
        let links: Vec<_> = created
            .iter()
            .filter_map(|(book_id, goodreads_id)| {
                Some((*book_id, by_goodreads.get(&(*goodreads_id)?)?))
            })
            .flat_map(|(book_id, entry)| {
                entry
                    .authors
                    .iter()
                    .enumerate()
                    .map(move |(position, name)| {
                        (
                            book_authors::book_id.eq(book_id),
                            book_authors::author_id.eq(author_ids[name]),
                            book_authors::position.eq(position as i16),
                        )
                    })
            })
            .collect();
        diesel::insert_into(book_authors::table)
            .values(&links)
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(inserted)
}

/// Inserts missing authors; returns the id of every author the entries name.
fn ensure_authors(
    conn: &mut PgConnection,
    entries: &[CatalogEntry],
) -> QueryResult<HashMap<String, i64>> {
    let mut names: Vec<&str> = entries
        .iter()
        .flat_map(|entry| entry.authors.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut ids = HashMap::with_capacity(names.len());
    for chunk in names.chunks(5000) {
        let rows: Vec<_> = chunk.iter().map(|name| authors::name.eq(*name)).collect();
        // DO UPDATE (a no-op) rather than DO NOTHING so RETURNING also yields existing rows.
        let found: Vec<(i64, String)> = diesel::insert_into(authors::table)
            .values(&rows)
            .on_conflict(authors::name)
            .do_update()
            .set(authors::name.eq(excluded(authors::name)))
            .returning((authors::id, authors::name))
            .get_results(conn)?;
        ids.extend(found.into_iter().map(|(id, name)| (name, id)));
    }
    Ok(ids)
}
