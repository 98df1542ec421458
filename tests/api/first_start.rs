//! The binary's first start on an empty data folder, as a newcomer or an operator runs it: the
//! whole demo catalog, searchable at once; logs a collector can read.

use crate::process::{DataDir, bookstore, home_page, psql, start_with, tempdir};

#[tokio::test]
async fn the_first_start_loads_all_ten_thousand_books_ready_to_search() {
    // Arrange: the default seed (`true`), with its info line kept.
    let data = DataDir::new();
    let stderr_path = tempdir().join("stderr.log");
    let mut command = bookstore(&data);
    command
        .env("BOOKSTORE_SEED_DEMO", "true")
        .env("BOOKSTORE_LOG", "info")
        .stderr(std::fs::File::create(&stderr_path).unwrap());

    // Act
    let app = start_with(command);

    // Assert: every book, each with its authors and its search document.
    assert_eq!(psql(&data, "SELECT count(*) FROM books"), "10000");
    assert_eq!(
        psql(
            &data,
            "SELECT count(*) FROM books b WHERE NOT EXISTS \
             (SELECT 1 FROM book_authors ba WHERE ba.book_id = b.id) \
             OR b.search_doc <> book_search_doc(b.title, b.id)"
        ),
        "0",
        "every book has its authors and an up-to-date search document"
    );
    assert_eq!(
        psql(
            &data,
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D'"
        ),
        "0",
        "the search triggers are on again"
    );
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let loaded = log
        .lines()
        .find(|line| line.contains("demo catalog loaded"))
        .unwrap_or_else(|| panic!("no 'demo catalog loaded' line in:\n{log}"));
    assert!(loaded.contains("10000"), "{loaded}");
    println!("first start: {loaded}");

    // A typo finds a book from deep in the file, and the catalog says its real size.
    let found = reqwest::get(format!("{}/books?q=hobit+tolkein", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(found.contains("The Hobbit"), "{found}");
    assert!(home_page(&app).await.contains("Bookstore"));
    assert!(app.terminate().success());
}

#[tokio::test]
async fn with_log_format_json_every_log_line_is_one_json_object() {
    // Arrange: debug lines too, so that many kinds of line are written.
    let data = DataDir::new();
    let stderr_path = tempdir().join("stderr.log");
    let mut command = bookstore(&data);
    command
        .env("BOOKSTORE_LOG_FORMAT", "json")
        .env("BOOKSTORE_LOG", "debug")
        .stderr(std::fs::File::create(&stderr_path).unwrap());

    // Act: a start, a page, a stop.
    let app = start_with(command);
    assert!(home_page(&app).await.contains("Bookstore"));
    assert!(app.terminate().success());

    // Assert: every line of stderr parses, with a level, a target and fields.
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 5, "some log lines: {log}");
    let mut messages = Vec::new();
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not a JSON object ({err}): {line}"));
        assert!(
            entry["level"].is_string() && entry["target"].is_string(),
            "{line}"
        );
        assert!(entry["fields"].is_object(), "{line}");
        messages.push(entry["fields"]["message"].as_str().unwrap_or("").to_owned());
    }
    assert!(
        messages.iter().any(|m| m == "demo catalog loaded"),
        "{messages:?}"
    );
}
