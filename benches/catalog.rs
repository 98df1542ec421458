//! Catalog benchmark: `/books` through the whole app (HTTP, middleware, session check, pool,
//! templates) against the same catalog SQL run directly, on the full goodbooks-10k catalog.
//!
//!     cargo bench --bench catalog
//!
//! Settings: BENCH_SECONDS (per measurement, default 10), BENCH_CONCURRENCY (default 16),
//! BENCH_ONLY (run only the scenarios whose name contains it),
//! BOOKSTORE_BENCH_CSV (default tests/data/goodbooks-10k/books.csv, a copy of
//! ../shared/data/goodbooks-10k/books.csv).

mod support;

use std::time::Duration;

use bookstore::domain::catalog::{
    bulk::insert_new_entries,
    goodbooks::{CatalogEntry, GoodbooksRecord},
    search::{self, CatalogQuery, Sort},
};
use support::{BenchDatabase, env_number, http_load, ms, peak_rss_mib, sql_load, start_app};

fn load_catalog(database: &BenchDatabase) -> usize {
    let path = std::env::var("BOOKSTORE_BENCH_CSV").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/goodbooks-10k/books.csv"
        )
        .to_owned()
    });
    let mut reader = csv::Reader::from_path(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let entries: Vec<CatalogEntry> = reader
        .deserialize::<GoodbooksRecord>()
        .filter_map(|record| CatalogEntry::try_from(record.ok()?).ok())
        .collect();
    let mut conn = database.connect();
    let inserted = insert_new_entries(&mut conn, &entries).expect("importing the catalog");
    // What autovacuum would do some time later, now, as the import program does: otherwise it
    // happens mid-measurement (before it, searches are 4x slower).
    diesel::RunQueryDsl::execute(diesel::sql_query("VACUUM (ANALYZE)"), &mut conn).expect("vacuum");
    inserted
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 10);
    let concurrency = env_number("BENCH_CONCURRENCY", 16) as usize;
    let duration = Duration::from_secs(seconds);
    let database = BenchDatabase::start("catalog");
    let books = load_catalog(&database);
    println!(
        "catalog: {books} books; {concurrency} concurrent clients; {seconds} s per measurement"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (address, _pool) = runtime.block_on(start_app(&database.url, concurrency as u32));

    // A search as the app runs it: the query's words, best match first.
    let search_for = |text: &str| CatalogQuery {
        text: Some(text.into()),
        sort: Sort::Relevance,
        ..CatalogQuery::default()
    };
    let scenarios = [
        ("browse: /books", "/books", CatalogQuery::default()),
        (
            "search: /books?q=harry",
            "/books?q=harry",
            search_for("harry"),
        ),
        (
            "typos: /books?q=hary+poter",
            "/books?q=hary+poter",
            search_for("hary poter"),
        ),
        (
            "typos: /books?q=tolkein+hobit",
            "/books?q=tolkein+hobit",
            search_for("tolkein hobit"),
        ),
        (
            "typos: /books?q=stephan+king",
            "/books?q=stephan+king",
            search_for("stephan king"),
        ),
        (
            "no match: /books?q=xqzvwj",
            "/books?q=xqzvwj",
            search_for("xqzvwj"),
        ),
    ];
    println!();
    println!(
        "| scenario | app req/s | app p50 | app p99 | SQL q/s | SQL p50 | SQL p99 | app / SQL | 1 shopper p50 | 1 shopper p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // BENCH_ONLY=typos runs only the scenarios whose name contains it.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, path, query) in scenarios
        .into_iter()
        .filter(|(name, _, _)| name.contains(&only))
    {
        let query = CatalogQuery {
            page: 1,
            per_page: 24,
            ..query
        };
        let url = format!("{address}{path}");
        // Warm up caches and connections, then measure.
        runtime.block_on(http_load(&url, concurrency, Duration::from_secs(2)));
        let app = runtime.block_on(http_load(&url, concurrency, duration));
        let sql_query = query.clone();
        let work = move |conn: &mut diesel::PgConnection| {
            search::search(conn, &sql_query).expect("catalog query");
        };
        sql_load(&database, concurrency, Duration::from_secs(2), work.clone());
        let sql = sql_load(&database, concurrency, duration, work);
        // One shopper alone: the latency a visitor sees when the shop is not queueing.
        let alone = runtime.block_on(http_load(&url, 1, duration / 2));
        println!(
            "| {name} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} | {} | {} |",
            app.per_second(),
            ms(app.percentile(0.50)),
            ms(app.percentile(0.99)),
            sql.per_second(),
            ms(sql.percentile(0.50)),
            ms(sql.percentile(0.99)),
            app.per_second() / sql.per_second(),
            ms(alone.percentile(0.50)),
            ms(alone.percentile(0.99)),
        );
    }
    println!();
    println!(
        "peak RSS of the bench process (app + load generator): {:.0} MiB",
        peak_rss_mib()
    );
    drop(runtime);
}
