//! Looks and access, as far as HTML can show them: the skip link, the current page in both
//! menus, form errors and help tied to their fields, generated covers, ratings, language
//! names, and a home page that tells the truth about the catalog.

use bookstore::db::schema::books;
use diesel::prelude::*;

use crate::{
    catalog::titles,
    helpers::{TestApp, spawn_app},
};

const HARRY_POTTER: &str = "Harry Potter and the Sorcerer's Stone (Harry Potter, #1)";

async fn book_id(app: &TestApp, title: &'static str) -> i64 {
    app.db(move |conn| {
        books::table
            .filter(books::title.eq(title))
            .select(books::id)
            .first(conn)
            .unwrap()
    })
    .await
}

/// The value of the first `attribute="..."` after `marker` in `page`.
fn attribute_after<'a>(page: &'a str, marker: &str, attribute: &str) -> &'a str {
    let rest = &page[page.find(marker).unwrap_or_else(|| panic!("no {marker}"))..];
    let start = rest.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
    rest[start..].split('"').next().unwrap()
}

/// Every help text and error (`id="...-help"`, `id="...-error"`) is named by the
/// `aria-describedby` of a field, and every field marked invalid names an error. Returns how
/// many were checked.
fn assert_errors_and_help_are_linked(page: &str) -> usize {
    let described: Vec<&str> = page
        .split("aria-describedby=\"")
        .skip(1)
        .flat_map(|rest| rest.split('"').next().unwrap().split(' '))
        .collect();
    let notes: Vec<&str> = page
        .split(" id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .filter(|id| id.ends_with("-help") || id.ends_with("-error"))
        .collect();
    for id in &notes {
        assert!(described.contains(id), "no field is described by #{id}");
    }
    let invalid_fields = page
        .split('<')
        .filter(|tag| tag.contains("aria-invalid=\"true\""));
    for tag in invalid_fields {
        assert!(
            tag.contains("aria-describedby=\"") && tag.contains("-error"),
            "an invalid field without its error: <{tag}"
        );
    }
    notes.len()
}

#[tokio::test]
async fn every_page_starts_with_a_skip_link_to_the_content() {
    let app = spawn_app().await;

    for path in ["/", "/books", "/login", "/nowhere"] {
        let page = app.page(path).await;
        let body = page.split("<body>").nth(1).unwrap().trim_start();
        assert!(
            body.starts_with("<a class=\"skip-link\" href=\"#content\">Skip to content</a>"),
            "{path}"
        );
        assert!(page.contains("<main id=\"content\""), "{path}");
    }
}

#[tokio::test]
async fn both_menus_mark_the_current_page() {
    let app = spawn_app().await;

    let catalog = app.page("/books?q=hobbit").await;
    assert!(catalog.contains("<a href=\"/books\" aria-current=\"page\">Catalog</a>"));
    assert_eq!(catalog.matches("aria-current=\"page\"").count(), 1);
    let book = app.page("/books/1").await;
    assert!(book.contains("<a href=\"/books\" aria-current=\"page\">Catalog</a>"));
    let home = app.page("/").await;
    assert!(!home.contains("aria-current"), "nothing is current at home");

    app.log_in_as("staff", "staff-runs-tasks").await;
    let books = app.page("/admin/books").await;
    assert!(books.contains("<a href=\"/admin\" aria-current=\"page\">Admin</a>"));
    assert!(books.contains("<a href=\"/admin/books\" aria-current=\"page\">Books</a>"));
    assert!(books.contains("<a href=\"/admin\">Overview</a>"));
    let edit = app.page("/admin/books/1/edit").await;
    assert!(edit.contains("<a href=\"/admin\" aria-current=\"page\">Admin</a>"));
    let overview = app.page("/admin").await;
    assert!(overview.contains("<a href=\"/admin\" aria-current=\"page\">Overview</a>"));
    assert!(overview.contains("<a href=\"/admin/books\">Books</a>"));
    let account = app.page("/account").await;
    assert!(account.contains("<a href=\"/account\" aria-current=\"page\">Account</a>"));
}

#[tokio::test]
async fn form_errors_and_help_are_tied_to_their_fields() {
    let app = spawn_app().await;

    let register = app.page("/register").await;
    assert_eq!(assert_errors_and_help_are_linked(&register), 3);
    let refused = app.register("x", "", "short").await.text().await.unwrap();
    assert!(refused.contains("<p id=\"login-error\" class=\"field-error\">"));
    assert!(refused.contains("aria-describedby=\"login-help login-error\" aria-invalid=\"true\""));
    assert!(assert_errors_and_help_are_linked(&refused) >= 5);

    let wrong = app.log_in("alice", "not her password").await;
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("id=\"login-form-error\""));
    assert!(wrong.contains(
        "autocomplete=\"current-password\" required aria-describedby=\"login-form-error\" aria-invalid=\"true\""
    ));

    app.log_in_as("staff", "staff-runs-tasks").await;
    let account = app
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", "wrong"),
                ("new_password", "x"),
                ("new_password_confirmation", "y"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(assert_errors_and_help_are_linked(&account) >= 3);

    let book_form = app
        .submit(
            "/admin/books/new",
            "/admin/books/new",
            &[
                ("title", ""),
                ("authors", ""),
                ("price", "1,250"),
                ("stock", "-1"),
                ("year", ""),
                ("isbn", "123"),
                ("language", "english"),
                ("description", ""),
                ("stock_was", "0"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(book_form.contains("id=\"price-error\""), "{book_form}");
    assert!(assert_errors_and_help_are_linked(&book_form) >= 8);

    let run_form = app.page("/admin/programs/sales_report/run").await;
    assert!(assert_errors_and_help_are_linked(&run_form) >= 1);
}

#[tokio::test]
async fn a_book_has_a_generated_cover_cached_for_a_year() {
    let app = spawn_app().await;
    let id = book_id(&app, HARRY_POTTER).await;
    app.db(move |conn| {
        diesel::update(books::table.find(id))
            .set(books::title.eq(r#"Tom & Jerry <"Best"> of 'em"#))
            .execute(conn)
            .unwrap();
    })
    .await;

    let page = app.page(&format!("/books/{id}")).await;
    let src = attribute_after(&page, "class=\"cover cover-large\"", "src");
    assert!(
        src.starts_with(&format!("/books/{id}/cover.svg?v=")),
        "{src}"
    );
    assert!(page.contains("alt=\"\" width=\"200\" height=\"300\""));
    let cover = app.get(src).await;

    assert_eq!(cover.status(), 200);
    let headers = cover.headers().clone();
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(headers["cache-control"], "public, max-age=31536000");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let svg = cover.text().await.unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains("Tom &amp; Jerry") && svg.contains("&lt;&quot;Best&quot;&gt;"),
        "{svg}"
    );
    assert!(svg.contains("&apos;em") && svg.contains("J.K. Rowling and Mary"));

    let again = app
        .client
        .get(format!("{}{src}", app.address))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // Logged in, pages are private; a cover is still the same for everyone.
    app.log_in_as("alice", "alice-reads-books").await;
    assert_eq!(
        app.get(src).await.headers()["cache-control"],
        "public, max-age=31536000"
    );
    assert_eq!(app.get("/books/999999/cover.svg").await.status(), 404);
}

#[tokio::test]
async fn a_changed_title_changes_the_cover_url() {
    let app = spawn_app().await;
    let card = |page: &str| attribute_after(page, "<li class=\"book-card\">", "src").to_owned();
    let before = card(&app.page("/books?sort=popularity").await);

    app.db(|conn| {
        diesel::update(books::table.filter(books::id.eq(1)))
            .set(books::title.eq("The Hunger Games, revised"))
            .execute(conn)
            .unwrap();
    })
    .await;

    let after = card(&app.page("/books?sort=popularity").await);
    assert_ne!(before, after);
    assert!(after.starts_with("/books/1/cover.svg?v="), "{after}");
}

#[tokio::test]
async fn ratings_are_stars_with_a_count_and_languages_have_names() {
    let app = spawn_app().await;
    let id = book_id(&app, HARRY_POTTER).await;

    let page = app.page(&format!("/books/{id}")).await;

    assert!(page.contains("<span>4.4 from 4,602,479 ratings</span>"));
    assert!(page.contains(
        "<span class=\"stars stars-9\" role=\"img\" aria-label=\"Rated 4.4 out of 5\"></span>"
    ));
    assert!(page.contains("<dt>Language</dt><dd>English</dd>"));
    let catalog = app.page("/books?q=sorcerer").await;
    assert!(catalog.contains("4.4 from 4,602,479 ratings"), "cards too");

    app.db(move |conn| {
        diesel::update(books::table.find(id))
            .set((
                books::average_rating.eq(None::<f32>),
                books::ratings_count.eq(0),
                books::language.eq("en-US"),
            ))
            .execute(conn)
            .unwrap();
    })
    .await;
    let unrated = app.page(&format!("/books/{id}")).await;
    assert!(unrated.contains("Not yet rated") && !unrated.contains("class=\"stars"));
    assert!(unrated.contains("<dd>English (US)</dd>"));
}

#[tokio::test]
async fn the_home_page_counts_the_listed_books_and_shows_bestsellers_and_new_books() {
    let app = spawn_app().await;
    let (newest_id, listed) = app
        .db(|conn| {
            // The seed adds every book at once; one added later is the newest.
            let newest: i64 = books::table
                .filter(books::title.eq("The Hobbit"))
                .select(books::id)
                .first(conn)
                .unwrap();
            diesel::update(books::table.find(newest))
                .set(books::created_at.eq(chrono::Utc::now() + chrono::Duration::hours(1)))
                .execute(conn)
                .unwrap();
            // A hidden book is not in the catalog, nor in the count.
            diesel::update(books::table.filter(books::title.eq(HARRY_POTTER)))
                .set(books::hidden.eq(true))
                .execute(conn)
                .unwrap();
            let listed: i64 = books::table
                .filter(books::hidden.eq(false))
                .count()
                .get_result(conn)
                .unwrap();
            (newest, listed)
        })
        .await;
    assert_eq!(listed, 299);

    let home = app.page("/").await;

    assert!(
        home.contains(&format!("<span class=\"hero-count\">{listed}</span> books")),
        "{home}"
    );
    let (bestsellers, newest) = home.split_once("id=\"newest-heading\"").unwrap();
    let best = titles(bestsellers);
    assert_eq!(best.len(), 8);
    assert_eq!(best[0], "The Hunger Games (The Hunger Games, #1)");
    assert_eq!(best[1], "Twilight (Twilight, #1)", "Harry Potter is hidden");
    assert!(!home.contains("Sorcerer"));
    assert!(newest.contains(&format!("href=\"/books/{newest_id}\">The Hobbit</a>")));
    assert_eq!(titles(newest)[0], "The Hobbit");
}

#[tokio::test]
async fn the_favicon_is_an_svg_and_favicon_ico_finds_it() {
    let app = spawn_app().await;

    let home = app.page("/").await;
    assert!(
        home.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">")
    );
    let ico = app.get("/favicon.ico").await;
    assert_eq!(ico.status(), 301);
    assert_eq!(ico.headers()["location"], "/static/favicon.svg");
    let svg = app.get("/static/favicon.svg").await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
}
