//! Schema, constraints and seeding against the real database.

use bookstore::{
    config::SeedDemo,
    db::{
        MIGRATIONS,
        schema::{authors, book_authors, books, cart_items, users},
    },
    seed,
};
use diesel::{prelude::*, sql_query, sql_types::BigInt};
use diesel_migrations::MigrationHarness;

use crate::helpers::spawn_app;

#[derive(QueryableByName, Debug, PartialEq)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn catalog_counts(conn: &mut PgConnection) -> (i64, i64, i64) {
    (
        books::table.count().get_result(conn).unwrap(),
        authors::table.count().get_result(conn).unwrap(),
        book_authors::table.count().get_result(conn).unwrap(),
    )
}

#[tokio::test]
async fn all_migrations_are_applied() {
    let app = spawn_app().await;

    let pending = app
        .db(|conn| conn.pending_migrations(MIGRATIONS).unwrap().len())
        .await;
    let tables = app
        .db(|conn| {
            sql_query(
                "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' \
                 AND table_name IN ('users', 'sessions', 'authors', 'books', 'book_authors', \
                 'cart_items', 'orders', 'order_lines', 'programs', 'tasks')",
            )
            .get_result::<Count>(conn)
            .unwrap()
        })
        .await;

    assert_eq!(pending, 0);
    assert_eq!(tables.n, 10);
}

#[tokio::test]
async fn seeding_twice_yields_the_same_rows() {
    let app = spawn_app().await;

    let (before, again, counts_after) = app
        .db(|conn| {
            let before = catalog_counts(conn);
            let again = seed::load_demo_catalog(conn, SeedDemo::Full)
                .unwrap()
                .books_inserted
                + bookstore::domain::catalog::bulk::insert_new_entries(
                    conn,
                    &seed::demo_entries(Some(300)).unwrap(),
                )
                .unwrap();
            (before, again, catalog_counts(conn))
        })
        .await;

    assert_eq!(before.0, 300, "the demo catalog has 300 books");
    assert!(
        before.1 > 200 && before.2 >= before.0,
        "authors are split out: {before:?}"
    );
    assert_eq!(again, 0);
    assert_eq!(counts_after, before);
}

#[tokio::test]
async fn seeded_authors_keep_their_cover_order() {
    let app = spawn_app().await;

    let names: Vec<String> = app
        .db(|conn| {
            book_authors::table
                .inner_join(authors::table)
                .inner_join(books::table)
                .filter(books::title.like("Harry Potter and the Sorcerer's Stone%"))
                .order(book_authors::position)
                .select(authors::name)
                .load(conn)
                .unwrap()
        })
        .await;

    assert_eq!(names, ["J.K. Rowling", "Mary GrandPré"]);
}

#[tokio::test]
async fn the_database_enforces_the_rules() {
    let app = spawn_app().await;

    let refused = app
        .db(|conn| {
            let book_id: i64 = books::table.select(books::id).first(conn).unwrap();
            let negative_stock = diesel::update(books::table.find(book_id))
                .set(books::stock.eq(-1))
                .execute(conn)
                .is_err();
            let user_id: i64 = diesel::insert_into(users::table)
                .values((
                    users::login.eq("Reader"),
                    users::display_name.eq("Reader"),
                    users::password_hash.eq("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
                ))
                .returning(users::id)
                .get_result(conn)
                .unwrap();
            let same_login_other_case = diesel::insert_into(users::table)
                .values((
                    users::login.eq("reader"),
                    users::display_name.eq("Other"),
                    users::password_hash.eq("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
                ))
                .execute(conn)
                .is_err();
            let zero_quantity = diesel::insert_into(cart_items::table)
                .values((
                    cart_items::user_id.eq(user_id),
                    cart_items::book_id.eq(book_id),
                    cart_items::quantity.eq(0),
                ))
                .execute(conn)
                .is_err();
            [negative_stock, same_login_other_case, zero_quantity]
        })
        .await;

    assert_eq!(
        refused,
        [true, true, true],
        "stock<0, duplicate login, quantity 0"
    );
}

#[tokio::test]
async fn every_migration_can_be_reverted_and_applied_again() {
    let app = spawn_app().await;

    let (reverted, reapplied, books_after) = app
        .db(|conn| {
            let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap().len();
            let reapplied = conn.run_pending_migrations(MIGRATIONS).unwrap().len();
            let books_after: i64 = books::table.count().get_result(conn).unwrap();
            (reverted, reapplied, books_after)
        })
        .await;

    assert!(reverted >= 8, "every down.sql ran ({reverted})");
    assert_eq!(
        reapplied, reverted,
        "and every up.sql ran again on the reverted schema"
    );
    assert_eq!(
        books_after, 0,
        "the down migrations really dropped the data"
    );
}

#[actix_web::test]
async fn a_busy_node_stays_within_its_connection_budget() {
    // The README's formula: a node that runs tasks opens at most BOOKSTORE_POOL_SIZE + 4.
    let budget = i64::from(bookstore::config::Config::default().pool_size) + 4;
    let app = crate::helpers::spawn_app_with(|config| {
        config.role = bookstore::config::Role::All;
        config.pool_size = bookstore::config::Config::default().pool_size;
    })
    .await;
    app.db(|conn| {
        diesel::sql_query(
            "SELECT run_program('demo_long', '{\"seconds\": 1, \"steps\": 10}') \
               FROM generate_series(1, 12)",
        )
        .execute(conn)
        .unwrap();
        diesel::sql_query("SELECT run_program('hello_world', NULL) FROM generate_series(1, 300)")
            .execute(conn)
            .unwrap();
    })
    .await;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut most = 0;
    loop {
        // Pages at the same time as the programs, sixteen at once.
        let pages = (0..16).map(|i| {
            let client = app.client.clone();
            let url = format!("{}/books?q=the&page={}", app.address, i % 3 + 1);
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
        });
        for status in futures_util::future::join_all(pages).await {
            assert_eq!(status.unwrap(), 200);
        }
        let (connections, active) = app
            .db(|conn| {
                // A scheduled `backup` (daily at 02:00) may start during the test: its pg_dump
                // is a process of its own, outside the node's budget. Only client backends:
                // an autovacuum worker on this database (the tasks just queued and run) or a
                // parallel query's worker shows up here too, and opens no connection.
                let connections = diesel::sql_query(
                    "SELECT count(*) AS count FROM pg_stat_activity \
                      WHERE datname = current_database() \
                        AND backend_type = 'client backend' \
                        AND application_name IS DISTINCT FROM 'pg_dump'",
                )
                .get_result::<Count>(conn)
                .unwrap()
                .count;
                let active = diesel::sql_query(
                    "SELECT count(*) AS count FROM tasks WHERE status IN ('scheduled', 'running')",
                )
                .get_result::<Count>(conn)
                .unwrap()
                .count;
                (connections, active)
            })
            .await;
        most = most.max(connections);
        if active == 0 {
            break;
        }
    }
    assert!(
        most <= budget,
        "{most} connections, more than the budget of {budget}"
    );
}

/// `src/db/schema.rs` is what `diesel print-schema` writes (diesel.toml), but diesel_cli is not
/// on the build machines: so every table, column, type, nullability and primary key in it must
/// match the migrated database, column for column, and every table of the database must be in
/// it and in `allow_tables_to_appear_in_same_query!`.
#[actix_web::test]
async fn schema_rs_matches_the_migrated_database() {
    let app = spawn_app().await;
    // (table, primary key) and its columns: (name, type, nullable).
    type Table = ((String, String), Vec<(String, String, bool)>);
    let mut declared: Vec<Table> = Vec::new();
    let mut in_same_query: Vec<String> = Vec::new();
    let mut inside = false;
    let mut inside_same_query = false;
    for line in include_str!("../../src/db/schema.rs").lines() {
        let line = line.trim();
        if line == "diesel::allow_tables_to_appear_in_same_query!(" {
            inside_same_query = true;
        } else if inside_same_query {
            match line.strip_suffix(',') {
                Some(table) => in_same_query.push(table.to_owned()),
                None => inside_same_query = false,
            }
        } else if let Some((table, rest)) = line.split_once(" (")
            && let Some(key) = rest.strip_suffix(") {")
        {
            declared.push(((table.to_owned(), key.to_owned()), Vec::new()));
            inside = true;
        } else if line == "}" {
            inside = false;
        } else if inside
            && let Some((column, kind)) = line.split_once(" -> ")
            && let Some(((_, _), columns)) = declared.last_mut()
        {
            let kind = kind.trim_end_matches(',');
            let (kind, nullable) = match kind.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (kind, false),
            };
            columns.push((column.to_owned(), kind.to_owned(), nullable));
        }
    }
    assert!(
        declared.len() >= 14,
        "schema.rs was read ({} tables)",
        declared.len()
    );

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        udt_name: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        nullable: bool,
        #[diesel(sql_type = diesel::sql_types::Text)]
        primary_key: String,
    }
    let actual: Vec<Column> = app
        .db(|conn| {
            sql_query(
                "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, \
                        c.is_nullable = 'YES' AS nullable, \
                        coalesce((SELECT string_agg(k.column_name, ', ' ORDER BY k.ordinal_position) \
                                    FROM information_schema.table_constraints t \
                                    JOIN information_schema.key_column_usage k \
                                      ON k.constraint_name = t.constraint_name AND k.table_name = t.table_name \
                                   WHERE t.table_name = c.table_name AND t.constraint_type = 'PRIMARY KEY' \
                                     AND t.table_schema = 'public'), '') AS primary_key \
                   FROM information_schema.columns c \
                  WHERE c.table_schema = 'public' \
                    AND c.table_name <> '__diesel_schema_migrations' \
                    AND c.table_name NOT IN (SELECT relname::text FROM pg_class WHERE relispartition) \
                  ORDER BY c.table_name, c.ordinal_position",
            )
            .load(conn)
            .unwrap()
        })
        .await;
    let diesel_type = |udt: &str| match udt {
        "int2" => "Int2",
        "int4" => "Int4",
        "int8" => "Int8",
        "text" | "varchar" => "Text",
        "bool" => "Bool",
        "bytea" => "Bytea",
        "jsonb" => "Jsonb",
        "timestamptz" => "Timestamptz",
        "uuid" => "Uuid",
        "date" => "Date",
        "float4" => "Float4",
        "tsvector" => "Tsvector",
        "interval" => "Interval",
        other => panic!("a column of type {other}: add it here"),
    };
    let mut tables: Vec<String> = actual.iter().map(|c| c.table_name.clone()).collect();
    tables.dedup();
    tables.sort();
    let declared_tables: Vec<&String> = declared.iter().map(|((name, _), _)| name).collect();
    let mut sorted_declared = declared_tables.clone();
    sorted_declared.sort();
    assert_eq!(
        sorted_declared,
        tables.iter().collect::<Vec<_>>(),
        "the same tables"
    );
    in_same_query.sort();
    assert_eq!(
        in_same_query.iter().collect::<Vec<_>>(),
        tables.iter().collect::<Vec<_>>(),
        "every table in allow_tables_to_appear_in_same_query!"
    );
    for ((table, key), columns) in &declared {
        let in_database: Vec<(String, String, bool)> = actual
            .iter()
            .filter(|c| &c.table_name == table)
            .map(|c| {
                (
                    c.column_name.clone(),
                    diesel_type(&c.udt_name).to_owned(),
                    c.nullable,
                )
            })
            .collect();
        assert_eq!(columns, &in_database, "the columns of {table}, in order");
        let primary_key = &actual
            .iter()
            .find(|c| &c.table_name == table)
            .unwrap()
            .primary_key;
        assert_eq!(key, primary_key, "the primary key of {table}");
    }
}
