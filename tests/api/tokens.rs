//! Personal API tokens on /admin/tokens: shown once after a redirect, told apart by a prefix,
//! unique names, revoked after a confirmation, optionally expiring.

use bookstore::{
    db::schema::{api_tokens, users},
    ids::ApiTokenId,
};
use chrono::{Days, Utc};
use diesel::prelude::*;

use crate::helpers::{TestApp, assert_is_redirect_to, new_token_in, spawn_app};

async fn staff_app() -> TestApp {
    let app = spawn_app().await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    app
}

/// The status of an API call made with `token`, from a browser without a session.
async fn api_status(app: &TestApp, token: &str) -> u16 {
    let script = app.another_browser();
    let response = script
        .client
        .get(format!("{}/api/v1/programs", script.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn token_count(app: &TestApp) -> i64 {
    app.db(|conn| api_tokens::table.count().get_result(conn).unwrap())
        .await
}

/// The id of the live token named `name` (from the database).
async fn token_id(app: &TestApp, name: &'static str) -> ApiTokenId {
    app.db(move |conn| {
        api_tokens::table
            .filter(api_tokens::name.eq(name))
            .filter(api_tokens::revoked_at.is_null())
            .select(api_tokens::id)
            .first(conn)
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn a_new_token_is_shown_once_after_a_redirect_and_listed_by_its_prefix() {
    let app = staff_app().await;

    let created = app
        .submit("/admin/tokens", "/admin/tokens", &[("name", "ci script")])
        .await;
    assert_is_redirect_to(&created, "/admin/tokens");

    let page = app.page("/admin/tokens").await;
    let token = new_token_in(&page).expect("the new token is shown after the redirect");
    assert!(page.contains("copy it now"));
    let prefix = &token[..12];
    assert!(prefix.starts_with("bks_"), "{prefix}");
    assert!(
        page.contains(&format!("<code class=\"token-prefix\">{prefix}…</code>")),
        "the list shows the token's first characters"
    );
    assert_eq!(api_status(&app, &token).await, 200);

    // A reload neither shows the token again nor makes another.
    let reloaded = app.page("/admin/tokens").await;
    assert_eq!(new_token_in(&reloaded), None, "shown only once");
    assert!(!reloaded.contains(&token));
    assert!(reloaded.contains("ci script") && reloaded.contains(prefix));
    assert_eq!(token_count(&app).await, 1);

    // Tokens made before prefixes were kept show a dash.
    app.db(|conn| {
        diesel::update(api_tokens::table)
            .set(api_tokens::display_prefix.eq(None::<String>))
            .execute(conn)
            .unwrap()
    })
    .await;
    let page = app.page("/admin/tokens").await;
    assert!(!page.contains(prefix) && page.contains("—</span>"));
}

#[tokio::test]
async fn names_are_unique_among_a_persons_live_tokens() {
    let app = staff_app().await;
    app.create_api_token("ci script").await;

    let again = app
        .submit(
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "  CI   Script ")],
        )
        .await;
    assert_eq!(again.status(), 422);
    let page = again.text().await.unwrap();
    assert!(
        page.contains("You already have a token named “CI Script”"),
        "{page}"
    );
    assert!(
        page.contains("value=\"  CI   Script \""),
        "the input is kept"
    );
    assert_eq!(new_token_in(&page), None);
    assert_eq!(token_count(&app).await, 1);

    // Another name is fine, and so is the same name once the first is revoked.
    app.create_api_token("deploy").await;
    let id = token_id(&app, "ci script").await;
    let path = format!("/admin/tokens/{id}/revoke");
    assert_is_redirect_to(&app.submit(&path, &path, &[]).await, "/admin/tokens");
    app.create_api_token("ci script").await;
    assert_eq!(token_count(&app).await, 3);
}

#[tokio::test]
async fn revoking_asks_first_then_the_token_stops_working_and_leaves_the_list() {
    let app = staff_app().await;
    let token = app.create_api_token("ci script").await;
    let id = token_id(&app, "ci script").await;
    let path = format!("/admin/tokens/{id}/revoke");
    assert!(
        app.page("/admin/tokens")
            .await
            .contains(&format!("href=\"{path}\""))
    );

    // GET only asks.
    let confirm = app.get(&path).await;
    assert_eq!(confirm.status(), 200);
    let page = confirm.text().await.unwrap();
    assert!(page.contains("Revoke the token “ci script”?"), "{page}");
    assert!(page.contains(&format!("action=\"{path}\"")) && page.contains(&token[..12]));
    assert_eq!(api_status(&app, &token).await, 200, "nothing revoked yet");

    // POST revokes.
    assert_is_redirect_to(&app.submit(&path, &path, &[]).await, "/admin/tokens");
    let script = app.another_browser();
    let refused = script
        .client
        .get(format!("{}/api/v1/programs", script.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown, revoked or expired"),
        "{body}"
    );
    let list = app.page("/admin/tokens").await;
    assert!(list.contains("The token is revoked"));
    assert!(!list.contains("ci script") && !list.contains(&path));
    assert_eq!(
        app.get(&path).await.status(),
        404,
        "nothing left to confirm"
    );

    // Another staff member's token cannot be revoked, nor even asked about.
    let live = app.create_api_token("ci script").await;
    let id = token_id(&app, "ci script").await;
    let path = format!("/admin/tokens/{id}/revoke");
    app.db(|conn| {
        diesel::update(users::table.filter(users::login.eq("alice")))
            .set(users::role.eq("staff"))
            .execute(conn)
            .unwrap()
    })
    .await;
    let other = app.another_browser();
    other.log_in_as("alice", "alice-reads-books").await;
    assert_eq!(other.get(&path).await.status(), 404);
    assert_eq!(
        other.submit("/admin/tokens", &path, &[]).await.status(),
        404
    );
    assert_eq!(api_status(&app, &live).await, 200);
}

#[tokio::test]
async fn an_expired_token_is_refused_and_drops_off_the_list() {
    let app = staff_app().await;
    let in_a_month = (Utc::now().date_naive() + Days::new(30)).to_string();
    let created = app
        .submit(
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "month"), ("expires", &in_a_month)],
        )
        .await;
    assert_is_redirect_to(&created, "/admin/tokens");
    let page = app.page("/admin/tokens").await;
    let token = new_token_in(&page).unwrap();
    assert!(page.contains(&format!("{in_a_month} 00:00")), "the expiry");
    assert_eq!(api_status(&app, &token).await, 200);

    app.db(|conn| {
        diesel::update(api_tokens::table)
            .set(api_tokens::expires_at.eq(Utc::now() - chrono::Duration::hours(1)))
            .execute(conn)
            .unwrap()
    })
    .await;
    assert_eq!(api_status(&app, &token).await, 401);
    let page = app.page("/admin/tokens").await;
    assert!(!page.contains("month") && page.contains("You have no live tokens"));

    // Its name is free again: it no longer counts as live.
    let again = app.create_api_token("month").await;
    assert_eq!(api_status(&app, &again).await, 200);
    assert_eq!(api_status(&app, &token).await, 401);
}

#[tokio::test]
async fn the_expiry_is_a_future_date_at_most_a_year_ahead() {
    let app = staff_app().await;
    let today = Utc::now().date_naive();
    let cases = [
        (today.to_string(), "must be in the future"),
        ("2020-01-01".to_owned(), "must be in the future"),
        ((today + Days::new(400)).to_string(), "at most a year ahead"),
        ("31/12/2099".to_owned(), "a date like 2027-01-31"),
    ];
    for (expires, says) in cases {
        let refused = app
            .submit(
                "/admin/tokens",
                "/admin/tokens",
                &[("name", "dated"), ("expires", &expires)],
            )
            .await;
        assert_eq!(refused.status(), 422, "{expires}");
        let page = refused.text().await.unwrap();
        assert!(page.contains(says), "{expires}: {page}");
        assert!(page.contains("id=\"expires-error\""), "next to the field");
    }
    assert_eq!(token_count(&app).await, 0, "nothing was created");
}

#[tokio::test]
async fn housekeeping_deletes_tokens_long_revoked_or_expired() {
    let app = staff_app().await;
    for name in ["long revoked", "long expired", "lately revoked", "live"] {
        app.create_api_token(name).await;
    }
    let purged = app
        .db(|conn| {
            let long_ago = Utc::now() - chrono::Duration::days(100);
            let lately = Utc::now() - chrono::Duration::days(10);
            for (name, column_is_revoked, at) in [
                ("long revoked", true, long_ago),
                ("long expired", false, long_ago),
                ("lately revoked", true, lately),
            ] {
                let row = api_tokens::table.filter(api_tokens::name.eq(name));
                if column_is_revoked {
                    diesel::update(row)
                        .set(api_tokens::revoked_at.eq(at))
                        .execute(conn)
                } else {
                    diesel::update(row)
                        .set(api_tokens::expires_at.eq(at))
                        .execute(conn)
                }
                .unwrap();
            }
            bookstore::domain::accounts::tokens::purge_dead(conn).unwrap()
        })
        .await;
    assert_eq!(purged, 2);
    let left: Vec<String> = app
        .db(|conn| {
            api_tokens::table
                .order(api_tokens::id)
                .select(api_tokens::name)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(left, ["lately revoked", "live"]);
}
