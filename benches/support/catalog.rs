//! The synthetic catalog of the catalog scale bench and its smoke test (issue 23): the
//! goodbooks-10k books, then authors and books made from their words by SQL
//! (`synthetic_authors.sql`, `synthetic_books.sql`), up to a total.

use std::time::Instant;

use bookstore::domain::catalog::{
    bulk::insert_new_entries,
    goodbooks::{CatalogEntry, GoodbooksRecord},
};
use diesel::{PgConnection, RunQueryDsl, sql_query, sql_types::BigInt};

/// Books per generating statement.
const CHUNK: i64 = 100_000;

/// The goodbooks-10k rows of the repository's copy.
pub fn goodbooks_entries() -> Vec<CatalogEntry> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/goodbooks-10k/books.csv"
    );
    csv::Reader::from_path(path)
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .deserialize::<GoodbooksRecord>()
        .filter_map(|record| CatalogEntry::try_from(record.ok()?).ok())
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn number(conn: &mut PgConnection, sql: &str) -> i64 {
    sql_query(sql)
        .get_result::<Number>(conn)
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .n
}

/// Fills the catalog up to `total` books: the real ones (through the import path), then
/// synthetic ones (a quarter as many new authors as books), then VACUUM (ANALYZE), as
/// autovacuum would long before anyone searched. Says how far it got on stderr when `verbose`.
pub fn generate(conn: &mut PgConnection, total: i64, verbose: bool) {
    let began = Instant::now();
    insert_new_entries(conn, &goodbooks_entries()).expect("loading goodbooks-10k");
    let real_top = number(
        conn,
        "SELECT max(id) AS n FROM books WHERE goodreads_id IS NOT NULL",
    );
    let have = number(conn, "SELECT count(*) AS n FROM books");
    let synthetic = (total - have).max(0);
    // Triggers off: the SQL computes what they would (search_doc; search_words below).
    sql_query("SET session_replication_role = replica")
        .execute(conn)
        .expect("triggers off");
    sql_query(include_str!("synthetic_authors.sql"))
        .bind::<BigInt, _>(synthetic / 4)
        .execute(conn)
        .expect("synthetic authors");
    let mut done = 0;
    while done < synthetic {
        let last = (done + CHUNK).min(synthetic);
        sql_query(include_str!("synthetic_books.sql"))
            .bind::<BigInt, _>(done + 1)
            .bind::<BigInt, _>(last)
            .bind::<BigInt, _>(real_top)
            .execute(conn)
            .expect("synthetic books");
        sql_query(
            "INSERT INTO search_words (word) SELECT DISTINCT lexeme \
               FROM books, unnest(search_doc) WHERE books.id BETWEEN $1 AND $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(real_top + done + 1)
        .bind::<BigInt, _>(real_top + last)
        .execute(conn)
        .expect("their words");
        done = last;
        if verbose {
            eprintln!(
                "  {done} synthetic books ({:.0} s)",
                began.elapsed().as_secs_f64()
            );
        }
    }
    sql_query("SET session_replication_role = DEFAULT")
        .execute(conn)
        .expect("triggers on");
    sql_query("SELECT setval(pg_get_serial_sequence('books', 'id'), (SELECT max(id) FROM books))")
        .execute(conn)
        .expect("moving the id sequence");
    sql_query("VACUUM (ANALYZE)").execute(conn).expect("vacuum");
}
