//! Search on the full goodbooks-10k catalog, as shoppers type: typos, any word order, title
//! and author words mixed, ISBNs, and the book they meant first.

use bookstore::domain::catalog::{
    bulk::insert_new_entries,
    goodbooks::{CatalogEntry, GoodbooksRecord},
};
use diesel::prelude::*;

use crate::{
    catalog::titles,
    helpers::{TestApp, spawn_app},
};

/// The seeded 300 books plus the rest of the 10,000 (the same rows upsert as nothing new).
async fn full_catalog() -> TestApp {
    let app = spawn_app().await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/goodbooks-10k/books.csv"
    );
    let entries: Vec<CatalogEntry> = csv::Reader::from_path(path)
        .unwrap()
        .deserialize::<GoodbooksRecord>()
        .filter_map(|record| CatalogEntry::try_from(record.ok()?).ok())
        .collect();
    let added = app
        .db(move |conn| insert_new_entries(conn, &entries).unwrap())
        .await;
    assert!(added > 9_000, "the catalog was filled ({added} added)");
    app
}

fn search_path(query: &str) -> String {
    format!("/books?q={}", urlencoding(query))
}

fn urlencoding(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).unwrap()[1..].to_owned()
}

const HALF_BLOOD: &str = "Harry Potter and the Half-Blood Prince (Harry Potter, #6)";
const HARRY_1: &str = "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)";
const SPIDER_MAN: &str = "Ultimate Spider-Man, Volume 1: Power and Responsibility";

#[tokio::test]
async fn real_queries_find_the_book_that_was_meant() {
    let app = full_catalog().await;
    // (what a shopper types, the book that must come first, or within the first three).
    let first = "first";
    let top3 = "in the first three";
    let table = [
        (
            "harry",
            first,
            "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
        ),
        (
            "hary poter",
            first,
            "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
        ),
        (
            "harry pot",
            first,
            "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)",
        ),
        ("stephen king", top3, "The Shining (The Shining #1)"),
        ("king stephen", top3, "The Shining (The Shining #1)"),
        ("stephan king", top3, "The Shining (The Shining #1)"),
        ("hobbit tolkien", first, "The Hobbit"),
        ("tolkein hobit", first, "The Hobbit"),
        ("the hobbit", first, "The Hobbit"),
        ("1984", first, "1984"),
        ("orwell 1984", first, "1984"),
        (
            "hunger games",
            first,
            "The Hunger Games (The Hunger Games, #1)",
        ),
        (
            "hunger gmaes",
            first,
            "The Hunger Games (The Hunger Games, #1)",
        ),
        ("gatsbi", first, "The Great Gatsby"),
        ("pride prejudice", first, "Pride and Prejudice"),
        (
            "da vinci code",
            first,
            "The Da Vinci Code (Robert Langdon, #2)",
        ),
        ("marquez solitude", first, "One Hundred Years of Solitude"),
        ("GARCÍA MÁRQUEZ", top3, "One Hundred Years of Solitude"),
        ("murakami", top3, "Norwegian Wood"),
        // Words split or joined differently, hyphens, dropped apostrophes: the same words.
        ("mocking bird", first, "To Kill a Mockingbird"),
        ("to kill a mocking bird", first, "To Kill a Mockingbird"),
        ("mockingbird", top3, "To Kill a Mockingbird"),
        ("half blood", top3, HALF_BLOOD),
        ("halfblood", top3, HALF_BLOOD),
        ("half-blood", top3, HALF_BLOOD),
        ("halfblood prince", first, HALF_BLOOD),
        ("handmaids", first, "The Handmaid's Tale"),
        ("handmaid's", first, "The Handmaid's Tale"),
        ("handmaids tale", first, "The Handmaid's Tale"),
        ("sorcerers stone", first, HARRY_1),
        ("enders game", first, "Ender's Game (Ender's Saga, #1)"),
        ("spider man", top3, SPIDER_MAN),
        ("spiderman", top3, SPIDER_MAN),
    ];
    let mut misses = Vec::new();
    for (query, rule, expected) in table {
        let found = titles(&app.page(&search_path(query)).await);
        let ok = match rule {
            "first" => found.first().map(String::as_str) == Some(expected),
            _ => found.iter().take(3).any(|title| title == expected),
        };
        if !ok {
            misses.push(format!(
                "{query:?}: expected {expected:?} {rule}, got {:?}",
                &found[..found.len().min(3)]
            ));
        }
    }
    assert!(misses.is_empty(), "{}", misses.join("\n"));

    // Another way of writing a word is the word as typed, not a typo.
    for query in ["mocking bird", "halfblood", "handmaids", "spiderman"] {
        let page = app.page(&search_path(query)).await;
        assert!(!page.contains("No exact matches"), "{query}");
    }

    // Word order does not matter: the same books, in the same order.
    assert_eq!(
        titles(&app.page(&search_path("king stephen")).await),
        titles(&app.page(&search_path("stephen king")).await)
    );
}

#[tokio::test]
async fn an_isbn_in_either_form_goes_to_its_book() {
    let app = spawn_app().await;
    let (id, isbn): (i64, String) = app
        .db(|conn| {
            use bookstore::db::schema::books;
            books::table
                .filter(books::title.like("Harry Potter and the Sorcerer%"))
                .select((books::id, books::isbn.assume_not_null()))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(isbn, "0439554934", "the ISBN shown on the book page");
    for typed in [
        "0439554934",
        "0-439-55493-4",
        "978-0-439-55493-0",
        "9780439554930",
    ] {
        let response = app.get(&search_path(typed)).await;
        assert_eq!(response.status(), 303, "{typed}");
        assert_eq!(
            response.headers()["location"],
            format!("/books/{id}").as_str(),
            "{typed}"
        );
    }
    // An ISBN the shop does not carry is searched like any text: nothing, said plainly.
    let unknown = app.page(&search_path("978-3-16-148410-0")).await;
    assert!(unknown.contains("No books match"), "{unknown}");
}

#[tokio::test]
async fn nothing_as_typed_offers_the_closest_title_or_author() {
    let app = spawn_app().await;

    let typo = app.page(&search_path("hary poter")).await;
    assert!(typo.contains("No exact matches for “hary poter”"), "{typo}");
    assert!(typo.contains("Did you mean"), "{typo}");
    assert!(!titles(&typo).is_empty(), "close spellings are shown");

    let initials = app.page(&search_path("jk rowling")).await;
    assert!(
        initials.contains("Did you mean <a href=\"/books?q=J.K.+Rowling\">J.K. Rowling</a>?"),
        "{initials}"
    );
    let nonsense = app.page(&search_path("xqzvwj")).await;
    assert!(nonsense.contains("No books match “xqzvwj”"));
    assert!(!nonsense.contains("Did you mean"));

    // A search that matches as typed offers nothing else.
    let exact = app.page(&search_path("hobbit")).await;
    assert!(!exact.contains("Did you mean") && !exact.contains("No exact matches"));
}

#[tokio::test]
async fn a_query_ranks_by_relevance_and_offers_every_sort() {
    let app = spawn_app().await;
    let page = app.page(&search_path("harry")).await;
    assert!(page.contains("<option value=\"\" selected>Best match</option>"));
    for choice in [
        "popularity",
        "rating",
        "title",
        "price",
        "price_desc",
        "year",
        "newest",
    ] {
        assert!(
            page.contains(&format!("<option value=\"{choice}\"")),
            "{choice}"
        );
    }
    // Without a query there is nothing to be relevant to: most popular first, no "Best match".
    let browse = app.page("/books").await;
    assert!(!browse.contains("Best match"));
    // The default is sent as no order: a search typed on this page gets its own default.
    assert!(browse.contains("<option value=\"\" selected>Most popular</option>"));
    assert!(!browse.contains("<option value=\"popularity\""));
    assert!(browse.contains("<option value=\"title\">Title (A-Z)</option>"));

    // Every sort keeps the same books, only the order changes.
    let mut by_relevance = titles(&page);
    let mut by_title = titles(&app.page("/books?q=harry&sort=title").await);
    assert_ne!(by_relevance, by_title);
    by_relevance.sort();
    by_title.sort();
    assert_eq!(by_relevance, by_title);
}

#[tokio::test]
async fn hidden_books_leave_the_catalog_but_not_the_database() {
    let app = spawn_app().await;
    let id: i64 = app
        .db(|conn| {
            use bookstore::db::schema::books;
            diesel::update(books::table.filter(books::title.eq("The Hobbit")))
                .set(books::hidden.eq(true))
                .returning(books::id)
                .get_result(conn)
                .unwrap()
        })
        .await;
    let found = titles(&app.page(&search_path("hobbit")).await);
    assert!(!found.contains(&"The Hobbit".to_owned()), "{found:?}");
    assert_eq!(app.get(&format!("/books/{id}")).await.status(), 404);
}

#[tokio::test]
async fn a_search_longer_than_200_characters_says_what_was_used() {
    let app = spawn_app().await;
    let long = "hobbit ".repeat(40);
    let page = app.page(&search_path(&long)).await;
    assert!(page.contains("Only the first 200 characters of the search were used."));
    assert!(
        titles(&page).contains(&"The Hobbit".to_owned()),
        "the words used still search"
    );
}
