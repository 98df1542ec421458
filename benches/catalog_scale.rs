//! The catalog at a million books (issue 23): the real app (the `bookstore` binary, web role,
//! its own process, so its memory is its own) over a synthetic catalog made from the
//! goodbooks-10k titles, authors and words (`benches/support/catalog.rs` and the SQL beside
//! it), each page asked for by one shopper, one request at a time.
//!
//!     cargo bench --bench catalog_scale
//!
//! Settings:
//! - BENCH_CATALOG_BOOKS (default 1000000): books in all, the 10,000 real ones included.
//! - BENCH_CATALOG_REQUESTS (default 30): measured requests per page, after 3 unmeasured
//!   ones; each search query is asked that many times too, so the searches' p99 is over
//!   (queries x requests) requests.
//! - BENCH_CATALOG_URL: measure an existing database instead (migrated first; the catalog
//!   generated only if it has no books), to measure again without generating again.
//!
//! Reports p50, p95 and p99 per page, the searches together, whether each search put the book
//! that was meant first, and the app's peak resident memory (VmHWM of its process).

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use diesel::{PgConnection, RunQueryDsl, sql_query};
use support::{BenchDatabase, Line, Stats, env_number, ms, number};

/// What a shopper types, and the title that must come first (the relevance tests' table).
/// "the" matches a third of the catalog; "jk rowling" finds nothing ("jk" is too short to
/// forgive), so its "did you mean" searches the whole catalog.
const SEARCHES: [(&str, &str); 14] = [
    (
        "harry",
        "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
    ),
    (
        "hary poter",
        "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
    ),
    (
        "harry pot",
        "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
    ),
    ("tolkein hobit", "The Hobbit"),
    ("the hobbit", "The Hobbit"),
    ("hunger gmaes", "The Hunger Games (The Hunger Games, #1)"),
    ("gatsbi", "The Great Gatsby"),
    ("pride prejudice", "Pride and Prejudice"),
    ("marquez solitude", "One Hundred Years of Solitude"),
    ("mocking bird", "To Kill a Mockingbird"),
    (
        "halfblood prince",
        "Harry Potter and the Half-Blood Prince (Harry Potter, #6)",
    ),
    ("the", "The Hunger Games (The Hunger Games, #1)"),
    ("jk rowling", ""),
    ("xqzvwj", ""),
];

/// Book titles of a catalog page, in order.
fn titles(page: &str) -> Vec<String> {
    page.split("class=\"book-title\" href=\"/books/")
        .skip(1)
        .filter_map(|card| {
            let text = card.split_once('>')?.1.split("</a>").next()?;
            Some(text.replace("&#39;", "'").replace("&#38;", "&"))
        })
        .collect()
}

/// "Showing 1–24 of 1000000 books", or why the list is empty.
fn summary(page: &str) -> String {
    let text = ["result-count\"", "class=\"empty\""]
        .iter()
        .find_map(|marker| page.split(marker).nth(1))
        .and_then(|rest| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split("</p>").next())
        .unwrap_or("");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn link(page: &str, rel: &str) -> Option<String> {
    let marker = format!("rel=\"{rel}\" href=\"");
    let href = page.split(&marker).nth(1)?.split('"').next()?;
    // Askama writes `&` in an attribute as `&#38;`.
    Some(href.replace("&#38;", "&").replace("&amp;", "&"))
}

/// The app's peak resident memory so far, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `requests` GETs of `path` one after another, after 3 unmeasured; each must answer 200.
async fn measure(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    requests: u64,
) -> (Vec<Duration>, String) {
    let (mut latencies, mut body) = (Vec::new(), String::new());
    for round in 0..requests + 3 {
        let began = Instant::now();
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        let status = response.status();
        body = response.text().await.expect("body");
        let took = began.elapsed();
        assert_eq!(status, 200, "{path}: {body:.2000}");
        if round >= 3 {
            latencies.push(took);
        }
    }
    (latencies, body)
}

fn row(name: &str, latencies: Vec<Duration>, says: &str) {
    let stats = Stats::new(latencies, Duration::from_secs(1));
    println!(
        "| {name} | {} | {} | {} | {} | {says} |",
        stats.count,
        ms(stats.percentile(0.50)),
        ms(stats.percentile(0.95)),
        ms(stats.percentile(0.99)),
    );
}

fn main() {
    let total = env_number("BENCH_CATALOG_BOOKS", 1_000_000) as i64;
    let requests = env_number("BENCH_CATALOG_REQUESTS", 30);
    let (url, own_database) = BenchDatabase::from_env_or_own("BENCH_CATALOG_URL", "catalog-scale");
    let mut conn: PgConnection = diesel::Connection::establish(&url).expect("connecting");
    if number(
        &mut conn,
        "SELECT count(*) AS n FROM (SELECT 1 FROM books LIMIT 1) b",
    ) == 0
    {
        println!("generating a catalog of {total} books");
        let began = Instant::now();
        support::catalog::generate(&mut conn, total, true);
        println!("generated in {:.0} s", began.elapsed().as_secs_f64());
    }
    let books = number(&mut conn, "SELECT count(*) AS n FROM books");
    let authors = number(&mut conn, "SELECT count(*) AS n FROM authors");
    let words = number(&mut conn, "SELECT count(*) AS n FROM search_words");
    let size = sql_query(
        "SELECT pg_size_pretty(pg_total_relation_size('books')) || ' books (with indexes), ' \
             || pg_size_pretty(pg_total_relation_size('search_words')) || ' search_words' \
             AS line",
    )
    .get_result::<Line>(&mut conn)
    .expect("sizes")
    .line;
    println!("catalog: {books} books, {authors} authors, {words} dictionary words; {size}");
    // Pages to ask for: Stephen King's books, and a book in the middle of the catalog.
    let king = number(
        &mut conn,
        "SELECT coalesce(max(id), 0) AS n FROM authors WHERE name = 'Stephen King'",
    );
    let middle_book = number(
        &mut conn,
        "SELECT id AS n FROM books WHERE NOT hidden AND id >= (SELECT max(id) / 2 FROM books) \
          ORDER BY id LIMIT 1",
    );

    // The real binary, web role only: no worker, no demo data.
    let mut app = Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .env("DATABASE_URL", &url)
        .env("BOOKSTORE_ADDR", "127.0.0.1:0")
        .env("BOOKSTORE_LOG", "warn")
        .env("BOOKSTORE_SEED_DEMO", "false")
        .args(["--role", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting bookstore");
    let pid = app.id();
    let stdout = app.stdout.take().unwrap();
    let base = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("Bookstore is ready: open ")
                .map(|url| url.trim_end_matches('/').to_owned())
        })
        .expect("the app never became ready");
    let rss_at_start = peak_rss_mib(pid);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let misses = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        println!();
        println!("| page | requests | p50 | p95 | p99 | the page says |");
        println!("|---|---:|---:|---:|---:|---|");
        let mut pages = vec![
            ("browse: /books".to_owned(), "/books".to_owned()),
            (
                "by title: /books?sort=title".into(),
                "/books?sort=title".into(),
            ),
            (
                "by price: /books?sort=price".into(),
                "/books?sort=price".into(),
            ),
            (
                "by rating: /books?sort=rating".into(),
                "/books?sort=rating".into(),
            ),
            (
                "by year: /books?sort=year".into(),
                "/books?sort=year".into(),
            ),
            (
                "newest: /books?sort=newest".into(),
                "/books?sort=newest".into(),
            ),
            (
                "in stock: /books?in_stock=1".into(),
                "/books?in_stock=1".into(),
            ),
            ("page 400: /books?page=400".into(), "/books?page=400".into()),
            (
                "an author: /books?author=KING".into(),
                format!("/books?author={king}"),
            ),
            ("a book: /books/ID".into(), format!("/books/{middle_book}")),
        ];
        // The first page's "next" link, then that page's, five times: a later page as a
        // shopper reaches it.
        let mut next = "/books".to_owned();
        for _ in 0..5 {
            let page = client
                .get(format!("{base}{next}"))
                .send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body");
            next = link(&page, "next").expect("a next link");
        }
        pages.push(("page 6 by its next links".into(), next));
        for (name, path) in &pages {
            let (latencies, body) = measure(&client, &base, path, requests).await;
            let says = if path.starts_with("/books/") {
                body.split("<h1>")
                    .nth(1)
                    .and_then(|rest| rest.split("</h1>").next())
                    .unwrap_or("")
                    .to_owned()
            } else {
                summary(&body)
            };
            row(name, latencies, &says);
        }
        println!();
        println!("| search | requests | p50 | p95 | p99 | first result (expected first?) |");
        println!("|---|---:|---:|---:|---:|---|");
        let (mut all, mut misses) = (Vec::new(), Vec::new());
        for (query, expected) in SEARCHES {
            let path = format!(
                "/books?{}",
                serde_urlencoded::to_string([("q", query)]).unwrap()
            );
            let (latencies, body) = measure(&client, &base, &path, requests).await;
            all.extend(latencies.iter().copied());
            let found = titles(&body);
            let first = found.first().cloned().unwrap_or_default();
            let right = first == expected;
            if !right {
                misses.push(format!("{query:?}: {first:?}, expected {expected:?}"));
            }
            let says = format!(
                "{} ({}); {}",
                if first.is_empty() { "none" } else { &first },
                if right { "yes" } else { "**no**" },
                summary(&body)
            );
            row(&format!("`{query}`"), latencies, &says);
        }
        row("**all searches**", all, "");
        misses
    });
    println!();
    println!(
        "{requests} requests per page and query, one at a time, after 3 unmeasured ones; \
         app peak RSS (VmHWM): {:.0} MiB ({rss_at_start:.0} MiB when ready)",
        peak_rss_mib(pid)
    );
    let _ = app.kill();
    let _ = app.wait();
    drop(conn);
    drop(own_database);
    // Reported, not failed: relevance is the tests' (on the real 10,000 books); here it is
    // what a catalog of mostly synthetic words does to it.
    if !misses.is_empty() {
        println!("searches that did not put the book meant first:");
        for miss in misses {
            println!("  {miss}");
        }
    }
}
