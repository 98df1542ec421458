//! Browsing the seeded catalog: search, filters, sort and pages.

use bookstore::{
    db::schema::{authors, book_authors, books},
    ids::AuthorId,
};
use diesel::prelude::*;

use crate::helpers::{TestApp, spawn_app};

/// Titles of the book cards on a page, in order (HTML-unescaped enough for our data).
pub fn titles(page: &str) -> Vec<String> {
    page.split("class=\"book-title\" href=\"/books/")
        .skip(1)
        .map(|card| {
            let text = card.split_once('>').unwrap().1;
            text.split("</a>")
                .next()
                .unwrap()
                .replace("&#39;", "'")
                .replace("&#38;", "&")
                .replace("&#34;", "\"")
        })
        .collect()
}

async fn db_titles(app: &TestApp, order_by_price_desc: bool, limit: i64) -> Vec<String> {
    app.db(move |conn| {
        let query = books::table.select(books::title).limit(limit);
        if order_by_price_desc {
            query
                .order((books::price_cents.desc(), books::id.asc()))
                .load(conn)
                .unwrap()
        } else {
            query
                .order((books::ratings_count.desc(), books::id.asc()))
                .load(conn)
                .unwrap()
        }
    })
    .await
}

#[tokio::test]
async fn the_catalog_pages_through_every_book_most_popular_first() {
    let app = spawn_app().await;
    let expected = db_titles(&app, false, 300).await;

    let first = app.page("/books").await;
    let second = app.page("/books?page=2").await;
    let last = app.page("/books?page=13").await;

    assert!(
        first.contains("Showing 1–24 of 300 books"),
        "the total is shown"
    );
    assert_eq!(titles(&first), expected[..24]);
    assert_eq!(titles(&second), expected[24..48]);
    assert_eq!(titles(&last), expected[288..]);
    assert!(first.contains("href=\"/books?page=2\""), "page links");
    assert!(last.contains("Page 13 of 13") && !last.contains("rel=\"next\""));
    let past_the_end = app.page("/books?page=99").await;
    assert!(past_the_end.contains("There is no page 99"));
}

#[tokio::test]
async fn browsing_starts_with_the_most_popular_and_a_search_with_the_best_match() {
    let app = spawn_app().await;
    let most_rated = db_titles(&app, false, 3).await;

    let browse = app.page("/books").await;
    // The search form of the browsing page sends its default order as no order at all.
    let searched = app.page("/books?q=harry+potter&sort=").await;
    let best_match = app.page("/books?q=harry+potter&sort=relevance").await;

    assert_eq!(titles(&browse)[..3], most_rated[..]);
    assert_ne!(titles(&browse)[0], "11/22/63", "not title order");
    assert!(browse.contains("<option value=\"\" selected>Most popular</option>"));
    assert!(searched.contains("<option value=\"\" selected>Best match</option>"));
    assert_eq!(titles(&searched), titles(&best_match));
    assert!(!titles(&searched).is_empty());
}

#[tokio::test]
async fn search_ignores_case_and_accents_and_finds_authors() {
    let app = spawn_app().await;

    let by_title = app.page("/books?q=HUNGER+games").await;
    let accents = app.page("/books?q=miserables").await;
    let by_author = app.page("/books?q=rowling").await;
    let mut rowling_books: Vec<String> = app
        .db(|conn| {
            book_authors::table
                .inner_join(authors::table)
                .inner_join(books::table)
                .filter(authors::name.eq("J.K. Rowling"))
                .select(books::title)
                .load(conn)
                .unwrap()
        })
        .await;

    assert!(
        titles(&by_title)
            .iter()
            .any(|t| t.starts_with("The Hunger Games"))
    );
    assert!(
        titles(&accents)
            .iter()
            .any(|t| t.contains("Les Misérables")),
        "accent-insensitive"
    );
    let mut found = titles(&by_author);
    found.sort();
    rowling_books.sort();
    assert_eq!(found, rowling_books, "exactly her books");
    assert!(
        by_title.contains("value=\"HUNGER games\""),
        "the search box keeps the query"
    );
}

#[tokio::test]
async fn filters_and_sorts_round_trip_in_the_query_string() {
    let app = spawn_app().await;
    let (rowling_id, in_stock): (AuthorId, i64) = app
        .db(|conn| {
            (
                authors::table
                    .filter(authors::name.eq("J.K. Rowling"))
                    .select(authors::id)
                    .first(conn)
                    .unwrap(),
                books::table
                    .filter(books::stock.gt(0))
                    .count()
                    .get_result(conn)
                    .unwrap(),
            )
        })
        .await;

    let by_author = app.page(&format!("/books?author={rowling_id}")).await;
    let stocked = app.page("/books?in_stock=1").await;
    let dearest = app.page("/books?sort=price_desc&in_stock=1").await;
    let expected_dearest = db_titles(&app, true, 1).await;

    assert!(by_author.contains("Books by J.K. Rowling"));
    assert!(stocked.contains(&format!("of {in_stock} books")));
    assert!(!stocked.contains("Out of stock"), "only books in stock");
    assert!(
        dearest.contains("href=\"/books?in_stock=1&amp;sort=price_desc&amp;page=2\"")
            || dearest.contains("href=\"/books?in_stock=1&#38;sort=price_desc&#38;page=2\""),
        "page links keep the filters"
    );
    assert!(dearest.contains("<option value=\"price_desc\" selected>"));
    let first_dearest = &titles(&dearest)[0];
    let max_price: i32 = app
        .db(|conn| {
            books::table
                .filter(books::stock.gt(0))
                .select(diesel::dsl::max(books::price_cents))
                .first::<Option<i32>>(conn)
                .unwrap()
                .unwrap()
        })
        .await;
    let price_of_first: i32 = app
        .db({
            let title = first_dearest.clone();
            move |conn| {
                books::table
                    .filter(books::title.eq(title))
                    .select(books::price_cents)
                    .first(conn)
                    .unwrap()
            }
        })
        .await;
    assert_eq!(price_of_first, max_price, "dearest first");
    assert!(!expected_dearest.is_empty());
}

#[tokio::test]
async fn an_empty_result_says_so_and_offers_to_clear() {
    let app = spawn_app().await;

    let page = app.page("/books?q=zzqqxx+no+such+book").await;

    assert!(page.contains("No books match “zzqqxx no such book”"));
    assert!(page.contains("clear the search and filters"));
    assert!(titles(&page).is_empty());
}

#[tokio::test]
async fn the_book_page_shows_everything_and_unknown_books_are_404() {
    let app = spawn_app().await;
    let id: i64 = app
        .db(|conn| {
            books::table
                .filter(books::title.like("Harry Potter and the Sorcerer%"))
                .select(books::id)
                .first(conn)
                .unwrap()
        })
        .await;

    let page = app.page(&format!("/books/{id}")).await;

    for needle in [
        "Harry Potter and the Sorcerer",
        "J.K. Rowling",
        "Mary GrandPré",
        "0439554934",
        "1997",
        "Add to cart",
        "href=\"/books?author=",
    ] {
        assert!(page.contains(needle), "book page lacks {needle}");
    }
    assert_eq!(app.get("/books/999999").await.status(), 404);
    assert_eq!(app.get("/books/not-a-number").await.status(), 404);
}

#[tokio::test]
async fn staff_add_and_edit_books_and_see_them_at_once() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let customer = app.another_browser();
    customer.log_in_as("alice", "alice-reads-books").await;
    assert_eq!(customer.get("/admin/books/new").await.status(), 403);

    let invalid = app
        .submit(
            "/admin/books/new",
            "/admin/books/new",
            &[
                ("title", "Dune"),
                ("authors", " , "),
                ("price", "nine"),
                ("stock", "3"),
                ("year", "1965"),
            ],
        )
        .await;
    assert_eq!(invalid.status(), 422);
    let form = invalid.text().await.unwrap();
    assert!(form.contains("Name at least one author") && form.contains("A price looks like 12.99"));
    assert!(
        form.contains("value=\"Dune\"") && form.contains("value=\"1965\""),
        "input kept"
    );

    let created = app
        .submit(
            "/admin/books/new",
            "/admin/books/new",
            &[
                ("title", "Dune"),
                ("authors", "Frank Herbert, Brian Herbert"),
                ("price", "9.99"),
                ("stock", "3"),
                ("year", "1965"),
                ("isbn", "0-441-17271-7"),
                ("description", "Desert planet <b>spice</b>."),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let book_path = created.headers()["location"].to_str().unwrap().to_owned();
    let book = app.page(&book_path).await;
    assert!(book.contains("The book was added to the catalog at $9.99."));
    assert!(
        book.contains("$9.99")
            && book.contains("Brian Herbert")
            && book.contains("&#60;b&#62;spice")
    );
    assert!(titles(&app.page("/books?q=dune").await).contains(&"Dune".to_owned()));

    let edit_path = format!("/admin{}/edit", book_path);
    let edit_form = app.page(&edit_path).await;
    assert!(
        edit_form.contains("value=\"Frank Herbert, Brian Herbert\"")
            && edit_form.contains("value=\"9.99\"")
    );
    let saved = app
        .submit(
            &edit_path,
            &edit_path,
            &[
                ("title", "Dune"),
                ("authors", "Frank Herbert"),
                ("price", "1,250"),
                ("stock", "4"),
                ("year", "1965"),
            ],
        )
        .await;
    assert_eq!(
        saved.status(),
        422,
        "1,250 could be a thousand or one and a quarter"
    );
    assert!(
        saved
            .text()
            .await
            .unwrap()
            .contains("Is &#34;1,250&#34; $1,250.00 or 1.25?")
    );
    let saved = app
        .submit(
            &edit_path,
            &edit_path,
            &[
                ("title", "Dune"),
                ("authors", "Frank Herbert"),
                ("price", "12,50"),
                ("price_confirmed", "12.50"),
                ("stock", "4"),
                ("year", "1965"),
            ],
        )
        .await;
    assert_eq!(
        saved.status(),
        303,
        "a decimal comma is a decimal point (once its reading is confirmed)"
    );
    let book = app.page(&book_path).await;
    assert!(
        book.contains("$12.50") && book.contains("4 in stock") && !book.contains("Brian Herbert")
    );
    assert_eq!(app.get("/admin/books/999999/edit").await.status(), 404);
}

#[tokio::test]
async fn a_staff_edit_never_puts_sold_copies_back() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let id: i64 = app
        .db(|conn| {
            books::table
                .order(books::id)
                .select(books::id)
                .first(conn)
                .unwrap()
        })
        .await;
    app.db(move |conn| {
        diesel::update(books::table.find(id))
            .set(books::stock.eq(5))
            .execute(conn)
            .unwrap()
    })
    .await;
    let edit_path = format!("/admin/books/{id}/edit");
    let form = app.page(&edit_path).await;
    let token = crate::helpers::csrf_token_in(&form);

    // Customers buy three copies while the form is open.
    app.db(move |conn| {
        diesel::update(books::table.find(id))
            .set(books::stock.eq(2))
            .execute(conn)
            .unwrap()
    })
    .await;
    let fields = [
        ("title", "Edited Title"),
        ("authors", "Someone"),
        ("price", "10.00"),
        ("stock", "5"),
        ("stock_was", "5"),
        ("csrf_token", token.as_str()),
    ];
    let refused = app.post_form(&edit_path, &fields).await;

    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Copies were sold while you edited: the stock is now 2."));
    assert!(
        page.contains("name=\"stock_was\" value=\"2\""),
        "saving again is an informed decision"
    );
    let (title, stock): (String, i32) = app
        .db(move |conn| {
            books::table
                .find(id)
                .select((books::title, books::stock))
                .first(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stock, 2);
    assert_ne!(title, "Edited Title", "nothing was saved");
}

#[tokio::test]
async fn a_price_typed_with_a_comma_is_shown_as_read_before_it_is_saved() {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let fields = [
        ("title", "Comma Prices"),
        ("authors", "Ann Author"),
        ("price", "12,50"),
        ("stock", "3"),
    ];

    let first = app
        .submit("/admin/books/new", "/admin/books/new", &fields)
        .await;
    assert_eq!(first.status(), 422, "not saved yet");
    let form = first.text().await.unwrap();
    assert!(
        form.contains("Read as $12.50. Save again to keep that price"),
        "{form}"
    );
    assert!(form.contains("<input type=\"hidden\" name=\"price_confirmed\" value=\"12.50\">"));
    let stored: i64 = app
        .db(|conn| {
            books::table
                .filter(books::title.eq("Comma Prices"))
                .count()
                .get_result(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored, 0);

    let mut confirmed = fields.to_vec();
    confirmed.push(("price_confirmed", "12.50"));
    let saved = app
        .submit("/admin/books/new", "/admin/books/new", &confirmed)
        .await;
    assert_eq!(saved.status(), 303);
    let path = saved.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        app.page(&path)
            .await
            .contains("The book was added to the catalog at $12.50.")
    );
}

#[tokio::test]
async fn staff_list_every_book_lowest_stock_first_and_hide_one_without_losing_it() {
    let app = spawn_app().await;
    let (id, title) = app
        .db(|conn| {
            let (id, title): (i64, String) = books::table
                .filter(books::title.eq("The Hobbit"))
                .select((books::id, books::title))
                .first(conn)
                .unwrap();
            diesel::update(books::table)
                .set(books::stock.eq(books::stock + 1))
                .execute(conn)
                .unwrap();
            diesel::update(books::table.find(id))
                .set(books::stock.eq(0))
                .execute(conn)
                .unwrap();
            (id, title)
        })
        .await;
    let customer = app.another_browser();
    customer.log_in_as("alice", "alice-reads-books").await;
    assert_eq!(customer.get("/admin/books").await.status(), 403);
    app.log_in_as("staff", "staff-runs-tasks").await;

    let list = app.page("/admin/books").await;
    assert_eq!(
        titles_in_staff_list(&list)[0],
        title,
        "the empty shelf first"
    );
    assert!(list.contains("Page 1 of 6"), "300 books, 50 a page");

    let hidden = app
        .submit("/admin/books", &format!("/admin/books/{id}/hide"), &[])
        .await;
    assert_eq!(hidden.status(), 303);
    let list = app.page("/admin/books?q=hobbit").await;
    assert!(list.contains("“The Hobbit” is hidden"), "{list}");
    assert!(list.contains(&format!("action=\"/admin/books/{id}/unhide\"")));
    assert!(list.contains("<span class=\"status\">Hidden</span>"));
    assert!(!titles(&customer.page("/books?q=hobbit").await).contains(&title));
    assert_eq!(customer.get(&format!("/books/{id}")).await.status(), 404);
    assert_eq!(
        app.get(&format!("/books/{id}")).await.status(),
        200,
        "staff still open it"
    );

    app.submit("/admin/books", &format!("/admin/books/{id}/unhide"), &[])
        .await;
    assert!(titles(&customer.page("/books?q=hobbit").await).contains(&title));
}

fn titles_in_staff_list(page: &str) -> Vec<String> {
    page.split("<td><a href=\"/books/")
        .skip(1)
        .map(|row| {
            let text = row.split_once('>').unwrap().1;
            text.split("</a>").next().unwrap().replace("&#39;", "'")
        })
        .collect()
}
