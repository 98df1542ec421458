//! Streaming replicas and failover (issue 24), with a real primary and a real standby started
//! here (`pg_basebackup -R` of a private cluster, `pg_ctl promote`): catalog reads come from
//! the replica, a writer sees its writes at once, a stopped replica leaves the pages to the
//! primary, and a promoted standby takes over under load with no 500 and no task lost or run
//! twice.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bookstore::{
    config::Role,
    db::{
        cluster::{ClusterOptions, EmbeddedCluster},
        schema::books,
    },
};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, prelude::*, sql_query};
use uuid::Uuid;

use crate::{
    engine_losses::{EXECUTIONS_COUNTED, counting_program},
    helpers::{private_cluster, run_when_this_process_exits, spawn_app_on, wait_until},
};

/// A hot standby of `primary`, streaming from it, in a folder of its own.
fn standby_of(primary: &EmbeddedCluster, name: &str) -> EmbeddedCluster {
    bookstore::telemetry::init_for_tests();
    let root = PathBuf::from(format!("/tmp/bookstore-{name}-{}", Uuid::new_v4().simple()));
    run_when_this_process_exits(&format!(
        "pm=$(head -n 1 '{0}/pg/postmaster.pid' 2>/dev/null); [ -n \"$pm\" ] && kill -INT \"$pm\"; sleep 1; rm -rf '{0}'",
        root.display()
    ));
    primary
        .start_standby(&ClusterOptions {
            root,
            bin_dir: None,
            durable: false,
            adopt_orphan: false,
        })
        .expect("starting a standby")
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Connections of the app on `server` whose last statement read the catalog (a search runs in
/// a transaction, so its last statement is the COMMIT; the replica checker runs none).
fn catalog_reads_on(server: &str) -> i64 {
    let mut conn = PgConnection::establish(server).expect("connecting");
    sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid() \
            AND (query ~* 'books|search_queries' OR query = 'COMMIT')",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n
}

fn in_recovery(server: &str) -> bool {
    #[derive(QueryableByName)]
    struct Recovery {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        in_recovery: bool,
    }
    let mut conn = PgConnection::establish(server).expect("connecting");
    sql_query("SELECT pg_is_in_recovery() AS in_recovery")
        .get_result::<Recovery>(&mut conn)
        .unwrap()
        .in_recovery
}

#[tokio::test]
async fn catalog_reads_come_from_the_replica_writes_are_seen_at_once_and_a_lost_replica_leaves_the_primary()
 {
    // Arrange: a primary, its standby, and a node reading the catalog from the standby.
    let (_options, _primary, url) = private_cluster("replicated", true);
    let mut standby = standby_of(&_primary, "replica");
    let replica_url = standby.conninfo("replicated");
    assert!(in_recovery(&replica_url), "the replica is a standby");
    let app = spawn_app_on(&url, |config| {
        config.database_replica_urls = Some(replica_url.clone());
    })
    .await;

    // Act and assert: once the checker has seen it healthy, catalog pages read there.
    wait_until(30, "a catalog read on the replica", || async {
        assert_eq!(app.get("/books?q=harry").await.status(), 200);
        let replica_url = replica_url.clone();
        tokio::task::spawn_blocking(move || catalog_reads_on(&replica_url))
            .await
            .unwrap()
            > 0
    })
    .await;

    // A customer's cart change: the answer marks the browser for the primary, and the cart
    // (always the primary's) shows the book at once.
    app.log_in_as("alice", "alice-reads-books").await;
    let (book, title): (i64, String) = app
        .db(|conn| {
            books::table
                .filter(books::stock.gt(0))
                .filter(books::hidden.eq(false))
                .select((books::id, books::title))
                .first(conn)
                .unwrap()
        })
        .await;
    let added = app
        .submit(
            &format!("/books/{book}"),
            "/cart/items",
            &[("book_id", &book.to_string()), ("quantity", "2")],
        )
        .await;
    assert_eq!(added.status(), 303);
    assert!(
        added
            .cookies()
            .any(|c| c.name() == "bookstore_primary_until"),
        "a write sends its writer's reads to the primary for a while"
    );
    let cart = app.page("/cart").await;
    let escaped = title.replace('&', "&amp;").replace('\'', "&#x27;");
    assert!(
        cart.contains(&escaped) || cart.contains(&title),
        "the cart shows {title}"
    );

    // The replica stops: every page still answers, from the primary.
    standby.stop().unwrap();
    for path in ["/books", "/books?q=harry", &format!("/books/{book}"), "/"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path} without the replica");
    }
}

#[tokio::test]
async fn a_writer_sees_its_change_at_once_even_while_the_replica_is_behind() {
    // Arrange: a replica whose replay is paused (it stays as it is, and within a generous lag
    // limit, so it keeps serving reads), and staff logged in.
    let (_options, _primary, url) = private_cluster("behind", true);
    let standby = standby_of(&_primary, "behind");
    let replica_url = standby.conninfo("behind");
    let app = spawn_app_on(&url, |config| {
        config.database_replica_urls = Some(replica_url.clone());
        config.replica_max_lag_ms = 60_000;
    })
    .await;
    wait_until(30, "a catalog read on the replica", || async {
        assert_eq!(app.get("/books").await.status(), 200);
        let replica_url = replica_url.clone();
        tokio::task::spawn_blocking(move || catalog_reads_on(&replica_url))
            .await
            .unwrap()
            > 0
    })
    .await;
    app.log_in_as("staff", "staff-runs-tasks").await;
    let book: i64 = app
        .db(|conn| {
            books::table
                .filter(books::hidden.eq(false))
                .select(books::id)
                .first(conn)
                .unwrap()
        })
        .await;
    let mut paused = PgConnection::establish(&replica_url).expect("connecting");
    sql_query("SELECT pg_wal_replay_pause()")
        .execute(&mut paused)
        .unwrap();

    // Act: staff hide the book.
    let hidden = app
        .submit("/admin/books", &format!("/admin/books/{book}/hide"), &[])
        .await;
    assert_eq!(hidden.status(), 303);

    // Assert: the staff list (a replica read) shows it hidden to its writer at once, while a
    // visitor reading the paused replica still finds the book; once replay resumes, nobody does.
    let list = app.page("/admin/books").await;
    assert!(
        list.contains(&format!("action=\"/admin/books/{book}/unhide\"")),
        "the writer reads the primary"
    );
    let visitor = reqwest::Client::new();
    let book_page = format!("{}/books/{book}", app.address);
    assert_eq!(visitor.get(&book_page).send().await.unwrap().status(), 200);
    sql_query("SELECT pg_wal_replay_resume()")
        .execute(&mut paused)
        .unwrap();
    wait_until(30, "the replica to catch up", || async {
        visitor.get(&book_page).send().await.unwrap().status() == 404
    })
    .await;
}

/// The primary's and the standby's sockets in one libpq string: whichever takes writes.
fn multi_host(primary: &EmbeddedCluster, standby: &EmbeddedCluster, dbname: &str) -> String {
    let port = primary
        .conninfo(dbname)
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix("port=").map(str::to_owned))
        .expect("a port");
    format!(
        "host={},{} port={port},{port} user=postgres dbname={dbname} \
         target_session_attrs=read-write",
        primary.socket_dir().display(),
        standby.socket_dir().display()
    )
}

#[actix_web::test]
async fn a_promoted_standby_takes_over_with_no_500_and_no_task_lost_or_run_twice() {
    // Arrange: a primary and its standby behind one multi-host string; a node that serves
    // pages and runs tasks on it; 40 SQL tasks counting their own executions; two clients
    // asking for pages the whole time.
    let (_options, mut primary, _url) = private_cluster("failover", true);
    let standby = standby_of(&primary, "promoted");
    let url = multi_host(&primary, &standby, "failover");
    let app = spawn_app_on(&url, |config| {
        config.role = Role::All;
        config.task_lease_seconds = 3;
        config.task_heartbeat_seconds = 1;
        config.task_retry_base_ms = 20;
    })
    .await;
    let (ok, _, err) = app.psql(&counting_program(40, 0.25));
    assert!(ok, "{err}");
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = ["/books?q=harry", "/healthz"]
        .into_iter()
        .map(|path| {
            let (base, stop) = (app.address.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let status = client
                        .get(format!("{base}{path}"))
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    statuses.push(status);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                statuses
            })
        })
        .collect();
    let executions = |app: &crate::helpers::TestApp| {
        let (ok, out, _) = app.psql("SELECT count(*) FROM executions");
        if ok {
            out.parse::<i64>().unwrap_or(0)
        } else {
            0
        }
    };
    wait_until(60, "the run to be under way", || async {
        executions(&app) >= 8
    })
    .await;

    // Act: the old primary goes (fenced first, so two servers never take writes), the
    // standby is promoted.
    let switch = Instant::now();
    primary.stop().unwrap();
    standby.promote().unwrap();
    wait_until(60, "the node to serve again", || async {
        app.get("/healthz").await.status() == 200 && app.get("/books").await.status() == 200
    })
    .await;
    let serving_again = switch.elapsed();
    println!("failover: pages served again {serving_again:?} after the primary stopped");

    // Assert: every task finished, each counted itself once; no page answered anything but
    // 200 or 503.
    wait_until(120, "every task to finish", || async {
        let (ok, out, _) = app.psql(
            "SELECT count(*) FROM tasks t JOIN programs p ON p.id = t.program_id \
              WHERE p.name = 'count_execution' AND t.status <> 'finished'",
        );
        ok && out == "0"
    })
    .await;
    let (_, counted, _) = app.psql(EXECUTIONS_COUNTED);
    assert_eq!(
        counted, "40 40 1",
        "tasks counted, distinct, most runs of one"
    );
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let statuses = client.await.unwrap();
        assert!(
            statuses.iter().all(|status| [200, 503].contains(status)),
            "only 200 or 503 during the switch: {statuses:?}"
        );
        assert!(statuses.contains(&200));
    }
    assert!(
        serving_again < Duration::from_secs(30),
        "served again after {serving_again:?}"
    );
}
