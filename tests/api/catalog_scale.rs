//! The catalog scale bench (`benches/catalog_scale.rs`) in small: the 10,000 goodbooks books
//! and 10,000 synthetic ones made from their words by the bench's own SQL, then the pages a
//! shopper opens. What is checked is what a shopper reads (the book meant first, counts
//! labelled as estimates beyond the threshold, pages that end where they say), never how long
//! it took: the timings are the bench's.

#[path = "../../benches/support/catalog.rs"]
mod synthetic;

use diesel::{QueryableByName, RunQueryDsl, sql_query, sql_types::BigInt};

use crate::{
    catalog::titles,
    helpers::{TestApp, spawn_app},
};

const BOOKS: i64 = 20_000;

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn number(app: &TestApp, sql: &'static str) -> i64 {
    app.db(move |conn| sql_query(sql).get_result::<Number>(conn).unwrap().n)
        .await
}

fn search(query: &str) -> String {
    format!(
        "/books?{}",
        serde_urlencoded::to_string([("q", query)]).unwrap()
    )
}

fn book_ids(page: &str) -> Vec<String> {
    page.split("class=\"book-title\" href=\"/books/")
        .skip(1)
        .map(|card| card.split('"').next().unwrap().to_owned())
        .collect()
}

fn result_count(page: &str) -> String {
    let text = page
        .split("result-count\"")
        .nth(1)
        .and_then(|rest| rest.split_once('>'))
        .map_or("", |(_, rest)| rest.split("</p>").next().unwrap_or(""));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_synthetic_catalog_finds_the_book_meant_and_counts_by_estimate() {
    let app = spawn_app().await;
    app.db(|conn| synthetic::generate(conn, BOOKS, false)).await;
    assert_eq!(number(&app, "SELECT count(*) AS n FROM books").await, BOOKS);
    // The synthetic books brought words of their own (spliced ones) into the dictionary.
    let words = number(&app, "SELECT count(*) AS n FROM search_words").await;
    assert!(words > 15_000, "{words} words");

    // Typos and word forms still put the real book first among the synthetic ones.
    for (query, expected) in [
        (
            "hary poter",
            "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
        ),
        ("tolkein hobit", "The Hobbit"),
        ("hunger gmaes", "The Hunger Games (The Hunger Games, #1)"),
        ("mocking bird", "To Kill a Mockingbird"),
        ("gatsbi", "The Great Gatsby"),
    ] {
        let found = titles(&app.page(&search(query)).await);
        assert_eq!(found.first().map(String::as_str), Some(expected), "{query}");
    }

    // Browsing: more books than are counted exactly, so an estimate, said to be one; the
    // pages reach the first 10,000.
    let first = app.page("/books").await;
    let count = result_count(&first);
    assert!(count.contains("Showing 1–24 of about 2"), "{count}");
    assert!(
        count.contains("the pages go up to the first 10000"),
        "{count}"
    );
    assert!(first.contains("title=\"an estimate from PostgreSQL's statistics\""));
    assert!(first.contains("Page 1 of 417"), "{first:.3000}");
    let most_popular = titles(&first);
    assert_eq!(most_popular[0], "The Hunger Games (The Hunger Games, #1)");
    let last = app.page("/books?page=417").await;
    assert_eq!(titles(&last).len(), 10_000 - 416 * 24);
    let beyond = app.page("/books?page=418").await;
    assert!(beyond.contains("There is no page 418"), "{beyond:.3000}");

    // A common word: every match ranked, counted exactly (below the threshold here; the
    // bench has the searches beyond it), the next page going on without repeating a book.
    let the = app.page(&search("the")).await;
    assert!(
        !result_count(&the).contains("about"),
        "{}",
        result_count(&the)
    );
    let (first_page, second_page) = (
        book_ids(&the),
        book_ids(&app.page("/books?q=the&page=2").await),
    );
    assert_eq!((first_page.len(), second_page.len()), (24, 24));
    assert!(second_page.iter().all(|id| !first_page.contains(id)));

    // Few matches: counted exactly, every one reachable.
    let king = app.page(&search("stephen king shining")).await;
    assert!(
        !result_count(&king).contains("about"),
        "{}",
        result_count(&king)
    );
    assert!(
        titles(&king)
            .iter()
            .any(|t| t == "The Shining (The Shining #1)")
    );
}
