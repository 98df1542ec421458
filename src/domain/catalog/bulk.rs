//! Writing many books at once: seeding the demo catalog fills an empty catalog, and
//! `import_catalog` upserts entries of the goodbooks format, with their authors, in a few
//! statements.

use std::collections::HashMap;

use diesel::{dsl::sql, prelude::*, sql_types::Bool, upsert::excluded};

use crate::{
    db::schema::{authors, book_authors, books},
    domain::catalog::goodbooks::CatalogEntry,
    ids::{AuthorId, BookId},
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
        inserted += link_authors(conn, chunk, &created, &author_ids)?;
    }
    Ok(inserted)
}

diesel::define_sql_function!(
    /// A book's search document from its title and its authors' names in cover order.
    fn search_doc_of(
        title: diesel::sql_types::Text,
        author_names: diesel::sql_types::Text,
    ) -> crate::db::schema::sql_types::Tsvector
);

/// Links the books just `created` from `chunk` to their authors; returns how many books.
fn link_authors(
    conn: &mut PgConnection,
    chunk: &[CatalogEntry],
    created: &[(BookId, Option<i64>)],
    author_ids: &HashMap<String, AuthorId>,
) -> QueryResult<usize> {
    diesel::insert_into(book_authors::table)
        .values(&links_of(created, chunk, author_ids))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(created.len())
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

/// Fills an empty catalog in one go (the demo seed of 10,000 books). Row by row, the search
/// triggers build each book's search document twice (on insert, then again once its authors
/// are linked, which rewrites every row and its index entries once more), and the
/// dictionary's update trigger joins transition tables that carry no statistics (for one
/// statement of 10,000 rows that nested loop alone took minutes). With them off for this
/// transaction, each book is inserted with its document (`search_doc_of`, the function the
/// triggers use too) and the dictionary is filled by one statement. Must run inside a
/// transaction: `DISABLE TRIGGER` holds the tables' lock until it ends, so no other session
/// writes a book meanwhile, and a rollback undoes it.
pub fn fill_empty_catalog(conn: &mut PgConnection, entries: &[CatalogEntry]) -> QueryResult<usize> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(
        "ALTER TABLE books DISABLE TRIGGER books_search_doc, \
                           DISABLE TRIGGER books_search_words_insert; \
         ALTER TABLE book_authors DISABLE TRIGGER book_authors_search_insert;",
    )?;
    let author_ids = ensure_entry_authors(conn, entries)?;
    let mut inserted = 0;
    for chunk in entries.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|entry| {
                let doc = search_doc_of(&entry.book.title, entry.authors.join(" "));
                (entry, books::search_doc.eq(doc))
            })
            .collect();
        let created: Vec<(BookId, Option<i64>)> = diesel::insert_into(books::table)
            .values(rows)
            .on_conflict_do_nothing()
            .returning((books::id, books::goodreads_id))
            .get_results(conn)?;
        inserted += link_authors(conn, chunk, &created, &author_ids)?;
    }
    conn.batch_execute(
        "INSERT INTO search_words (word) \
         SELECT DISTINCT lexeme FROM books, unnest(books.search_doc) \
         ON CONFLICT DO NOTHING; \
         ALTER TABLE books ENABLE TRIGGER books_search_doc, \
                           ENABLE TRIGGER books_search_words_insert; \
         ALTER TABLE book_authors ENABLE TRIGGER book_authors_search_insert; \
         ANALYZE books, authors, book_authors, search_words;",
    )?;
    Ok(inserted)
}
