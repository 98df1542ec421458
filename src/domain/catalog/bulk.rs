//! Writing many books at once: seeding the demo catalog inserts entries of the goodbooks
//! format and `import_catalog` upserts them, with their authors, in a few statements.

use std::collections::HashMap;

use diesel::{dsl::sql, prelude::*, sql_types::Bool, upsert::excluded};

use crate::{
    db::schema::{authors, book_authors, books},
    domain::{
        catalog::goodbooks::CatalogEntry,
        ids::{AuthorId, BookId},
    },
};

/// A `book_authors` row.
#[derive(Insertable)]
#[diesel(table_name = book_authors)]
pub struct AuthorLink {
    book_id: BookId,
    author_id: AuthorId,
    position: i16,
}

/// The links of one book to its authors, in cover order (`ids` must hold every name).
pub fn author_links(
    book_id: BookId,
    names: &[String],
    ids: &HashMap<String, AuthorId>,
) -> Vec<AuthorLink> {
    names
        .iter()
        .enumerate()
        .map(|(position, name)| AuthorLink {
            book_id,
            author_id: ids[name],
            position: position as i16,
        })
        .collect()
}

/// Inserts the entries whose goodreads id is not in the catalog yet; returns how many.
/// Idempotent: running it again inserts nothing.
pub fn insert_new_entries(conn: &mut PgConnection, entries: &[CatalogEntry]) -> QueryResult<usize> {
    let author_ids = ensure_entry_authors(conn, entries)?;
    let mut inserted = 0;
    // Bound parameters per statement stay far below PostgreSQL's limit of 65,535.
    for chunk in entries.chunks(500) {
        let created: Vec<(BookId, Option<i64>)> = diesel::insert_into(books::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .returning((books::id, books::goodreads_id))
            .get_results(conn)?;
        inserted += created.len();
        diesel::insert_into(book_authors::table)
            .values(&links_of(&created, chunk, &author_ids))
            .on_conflict_do_nothing()
            .execute(conn)?;
    }
    Ok(inserted)
}

/// Writes the entries by their goodreads id: new ones are inserted, known ones get what the
/// data says of them (title, year, ISBN, language, description, popularity and authors); price
/// and stock are the shop's own and stay. Returns (inserted, updated).
pub fn upsert_entries(
    conn: &mut PgConnection,
    entries: &[&CatalogEntry],
) -> QueryResult<(usize, usize)> {
    let author_ids = ensure_entry_authors(conn, entries.iter().copied())?;
    // xmax = 0 only on rows this statement inserted (an updated row carries our xid).
    let written: Vec<(BookId, Option<i64>, bool)> = diesel::insert_into(books::table)
        .values(entries.to_vec())
        .on_conflict(books::goodreads_id)
        .do_update()
        .set((
            books::title.eq(excluded(books::title)),
            books::year.eq(excluded(books::year)),
            books::isbn.eq(excluded(books::isbn)),
            books::language.eq(excluded(books::language)),
            books::description.eq(excluded(books::description)),
            books::ratings_count.eq(excluded(books::ratings_count)),
            books::average_rating.eq(excluded(books::average_rating)),
            books::updated_at.eq(diesel::dsl::now),
        ))
        .returning((books::id, books::goodreads_id, sql::<Bool>("xmax = 0")))
        .get_results(conn)?;
    let ids: Vec<BookId> = written.iter().map(|(id, _, _)| *id).collect();
    diesel::delete(book_authors::table.filter(book_authors::book_id.eq_any(&ids))).execute(conn)?;
    let books: Vec<(BookId, Option<i64>)> = written
        .iter()
        .map(|(id, goodreads, _)| (*id, *goodreads))
        .collect();
    diesel::insert_into(book_authors::table)
        .values(&links_of(&books, entries.iter().copied(), &author_ids))
        .execute(conn)?;
    let inserted = written.iter().filter(|(_, _, inserted)| *inserted).count();
    Ok((inserted, written.len() - inserted))
}

/// The author links of the books written, (id, goodreads id), each from its entry.
fn links_of<'a>(
    written: &[(BookId, Option<i64>)],
    entries: impl IntoIterator<Item = &'a CatalogEntry>,
    author_ids: &HashMap<String, AuthorId>,
) -> Vec<AuthorLink> {
    let by_goodreads: HashMap<i64, &CatalogEntry> = entries
        .into_iter()
        .map(|entry| (entry.goodreads_id, entry))
        .collect();
    written
        .iter()
        .filter_map(|(book_id, goodreads_id)| {
            let entry = by_goodreads.get(&(*goodreads_id)?)?;
            Some(author_links(*book_id, &entry.authors, author_ids))
        })
        .flatten()
        .collect()
}

/// Inserts missing authors; returns the id of every author the entries name.
fn ensure_entry_authors<'a>(
    conn: &mut PgConnection,
    entries: impl IntoIterator<Item = &'a CatalogEntry>,
) -> QueryResult<HashMap<String, AuthorId>> {
    let names: Vec<&str> = entries
        .into_iter()
        .flat_map(|entry| entry.authors.iter().map(String::as_str))
        .collect();
    ensure_authors(conn, &names)
}

/// Inserts the authors that do not exist yet; returns the id of each name.
pub fn ensure_authors(
    conn: &mut PgConnection,
    names: &[&str],
) -> QueryResult<HashMap<String, AuthorId>> {
    let mut names = names.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut ids = HashMap::with_capacity(names.len());
    for chunk in names.chunks(5000) {
        let rows: Vec<_> = chunk.iter().map(|name| authors::name.eq(*name)).collect();
        // DO UPDATE (a no-op) rather than DO NOTHING so RETURNING also yields existing rows.
        let found: Vec<(AuthorId, String)> = diesel::insert_into(authors::table)
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
