//! The first pages: home, health check, 404, static files, security headers.

use bookstore::db::schema::books;
use diesel::prelude::*;

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_reports_a_live_database() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn home_page_lists_books_from_the_database() {
    let app = spawn_app().await;
    let (first_title, price_cents): (String, i32) = app
        .db(|conn| {
            books::table
                .order(books::id)
                .select((books::title, books::price_cents))
                .first(conn)
                .unwrap()
        })
        .await;

    let response = app.get("/").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&first_title),
        "home page lacks {first_title:?}"
    );
    let price = format!("${}.{:02}", price_cents / 100, price_cents % 100);
    assert!(page.contains(&price), "home page lacks the price {price}");
    assert!(
        page.contains("Suzanne Collins"),
        "authors come from the authors table"
    );
    for nav in ["href=\"/books\"", "href=\"/cart\"", "href=\"/login\""] {
        assert!(page.contains(nav), "the header lacks {nav}");
    }
}

#[tokio::test]
async fn home_page_shows_catalog_changes_escaped() {
    let app = spawn_app().await;
    app.db(|conn| {
        let first: i64 = books::table
            .order(books::id)
            .select(books::id)
            .first(conn)
            .unwrap();
        diesel::update(books::table.find(first))
            .set(books::title.eq("<script>alert(1)</script> & Sons"))
            .execute(conn)
            .unwrap();
    })
    .await;

    let page = app.get("/").await.text().await.unwrap();

    let shown = page
        .lines()
        .find(|line| line.contains("Sons"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; Sons"),
        "{shown}"
    );
    assert!(!page.contains("<script>alert(1)"));
}

#[tokio::test]
async fn unknown_pages_get_the_404_page() {
    let app = spawn_app().await;

    for path in [
        "/no-such-page",
        "/books/../../etc/passwd",
        "/static/missing.css",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        if !path.starts_with("/static") {
            let page = response.text().await.unwrap();
            assert!(page.contains("Page not found"), "{path}");
            assert!(page.contains("Back to the shop"), "{path}");
        }
    }
}

#[tokio::test]
async fn stylesheet_is_served_from_static() {
    let app = spawn_app().await;

    let response = app.get("/static/css/site.css").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(response.text().await.unwrap().contains(".book-grid"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;

    for path in ["/", "/healthz", "/nowhere"] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn private_pages_are_never_stored_by_a_browser_or_a_cache() {
    let app = spawn_app().await;
    let no_store = |response: &reqwest::Response| {
        response
            .headers()
            .get("cache-control")
            .is_some_and(|value| value == "no-store")
    };

    // A visitor without a session: public pages are left alone, private ones are not.
    let public = app.another_browser();
    assert!(!no_store(&public.get("/books").await), "the public catalog");
    assert!(
        !no_store(&public.get("/static/css/site.css").await),
        "a stylesheet"
    );
    assert!(no_store(&public.get("/login").await), "the log-in page");

    // Logged in: every page is theirs (their name in the header, their tokens in forms).
    app.log_in_as("staff", "staff-runs-tasks").await;
    for path in [
        "/",
        "/books",
        "/cart",
        "/orders",
        "/admin",
        "/admin/tokens",
        "/api/v1/programs",
    ] {
        assert!(no_store(&app.get(path).await), "{path}");
    }
    let created = app
        .submit("/admin/tokens", "/admin/tokens", &[("name", "ci")])
        .await;
    assert_eq!(created.status(), 303);
    let token_page = app.get("/admin/tokens").await;
    assert!(no_store(&token_page), "the page that shows a new token");
    assert!(
        token_page
            .text()
            .await
            .unwrap()
            .contains("<code class=\"token\">")
    );
}
