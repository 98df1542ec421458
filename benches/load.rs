//! Load and soak: N simulated customers browse, search, add to cart and check out for T
//! seconds while staff queue background tasks through the JSON API, against the real
//! `bookstore` binary (its own process, `--role all`) on a throwaway PostgreSQL. Then it checks
//! the books: units sold equal the stock removed, no stock below zero, every order's total
//! matches its lines, and every queued task ran exactly once.
//!
//!     cargo bench --bench load                      # 20 customers, 120 s
//!     LOAD_CUSTOMERS=50 LOAD_SECONDS=30 cargo bench --bench load
//!
//! Exits non-zero when a check fails.

mod support;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bookstore::{
    audit::{Actor, AuditContext},
    db::schema::{books, order_lines, orders, tasks, users},
    domain::accounts::tokens,
};
use diesel::prelude::*;
use support::{BenchDatabase, Stats, env_number, ms};

type Timings = HashMap<&'static str, (Vec<Duration>, usize)>;

/// Records one request: its latency, and whether it was an error.
fn note(timings: &mut Timings, route: &'static str, began: Instant, ok: bool) {
    let entry = timings.entry(route).or_default();
    entry.0.push(began.elapsed());
    if !ok {
        entry.1 += 1;
    }
}

fn value_after<'a>(page: &'a str, marker: &str) -> Option<&'a str> {
    page.split(marker).nth(1)?.split('"').next()
}

/// A small deterministic generator: runs are comparable.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

const WORDS: [&str; 8] = [
    "harry", "love", "war", "king", "girl", "night", "the", "tolkien",
];

async fn customer(
    base: String,
    index: usize,
    deadline: Instant,
    checkouts: Arc<Mutex<(usize, usize)>>,
) -> Timings {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut timings = Timings::new();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
    let page = client
        .get(format!("{base}/register"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = value_after(&page, "name=\"csrf_token\" value=\"")
        .unwrap()
        .to_owned();
    let login = format!("load{index}");
    let began = Instant::now();
    let registered = client
        .post(format!("{base}/register"))
        .form(&[
            ("login", login.as_str()),
            ("display_name", "Load Tester"),
            ("password", "a good long password"),
            ("password_confirmation", "a good long password"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    note(
        &mut timings,
        "POST /register",
        began,
        registered.status() == 303,
    );
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        let began = Instant::now();
        let ok = client
            .get(format!("{base}/books?page={}", 1 + dice.roll(13)))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        note(&mut timings, "GET /books", began, ok);
        let began = Instant::now();
        let word = WORDS[dice.roll(WORDS.len() as u64) as usize];
        let ok = client
            .get(format!("{base}/books?q={word}"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        note(&mut timings, "GET /books?q=", began, ok);
        let book = 1 + dice.roll(300);
        let began = Instant::now();
        let page = match client.get(format!("{base}/books/{book}")).send().await {
            Ok(response) if response.status() == 200 => response.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        note(&mut timings, "GET /books/{id}", began, !page.is_empty());
        if let Some(token) = value_after(&page, "name=\"csrf_token\" value=\"") {
            let began = Instant::now();
            let ok = client
                .post(format!("{base}/cart/items"))
                .form(&[
                    ("book_id", book.to_string().as_str()),
                    ("quantity", "1"),
                    ("csrf_token", token),
                ])
                .send()
                .await
                .map(|r| r.status() == 303)
                .unwrap_or(false);
            note(&mut timings, "POST /cart/items", began, ok);
        }
        if round.is_multiple_of(4) {
            let began = Instant::now();
            let cart = client
                .get(format!("{base}/cart"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap_or_default();
            note(&mut timings, "GET /cart", began, cart.contains("Your cart"));
            if let (Some(token), Some(key)) = (
                value_after(&cart, "name=\"csrf_token\" value=\""),
                value_after(&cart, "name=\"idempotency_key\" value=\""),
            ) {
                let began = Instant::now();
                let status = client
                    .post(format!("{base}/checkout"))
                    .form(&[("csrf_token", token), ("idempotency_key", key)])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                // 409: not enough stock, an answer the shop is meant to give.
                note(
                    &mut timings,
                    "POST /checkout",
                    began,
                    status == 303 || status == 409,
                );
                {
                    let mut counts = checkouts.lock().unwrap();
                    if status == 303 {
                        counts.0 += 1
                    } else if status == 409 {
                        counts.1 += 1
                    }
                }
                if status == 409 {
                    // Empty the cart so the next round starts afresh.
                    for line in cart
                        .split("/cart/items/")
                        .skip(1)
                        .filter_map(|s| s.split('/').next())
                        .collect::<std::collections::BTreeSet<_>>()
                    {
                        let _ = client
                            .post(format!("{base}/cart/items/{line}/remove"))
                            .form(&[("csrf_token", token)])
                            .send()
                            .await;
                    }
                }
            }
        }
    }
    timings
}

async fn staff(base: String, token: String, deadline: Instant) -> (Timings, Vec<i64>) {
    let client = reqwest::Client::new();
    let mut timings = Timings::new();
    let mut queued = Vec::new();
    let programs = [
        ("noop", "{}"),
        ("hello_world", "{\"name\": \"load\"}"),
        ("low_stock", "{\"threshold\": 2}"),
    ];
    let mut n = 0;
    while Instant::now() < deadline {
        let (program, parameters) = programs[n % programs.len()];
        n += 1;
        let began = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/tasks"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(format!(
                "{{\"program\": \"{program}\", \"parameters\": {parameters}}}"
            ))
            .send()
            .await;
        let id = match response {
            Ok(r) if r.status() == 201 => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|b| b["id"].as_i64()),
            _ => None,
        };
        note(&mut timings, "POST /api/v1/tasks", began, id.is_some());
        queued.extend(id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (timings, queued)
}

fn main() {
    let customers = env_number("LOAD_CUSTOMERS", 20) as usize;
    let seconds = env_number("LOAD_SECONDS", 120);
    let database = BenchDatabase::start("load");
    // The real binary, seeding the demo catalog and accounts itself.
    let mut app = Command::new(env!("CARGO_BIN_EXE_bookstore"))
        .env("DATABASE_URL", &database.url)
        .env("BOOKSTORE_ADDR", "127.0.0.1:0")
        .env("BOOKSTORE_LOG", "warn")
        .env("BOOKSTORE_POOL_SIZE", "20")
        .env("BOOKSTORE_LOGIN_MAX_FAILURES", "1000")
        // Every simulated customer registers from this one address.
        .env("BOOKSTORE_REGISTRATIONS_PER_ADDRESS", "100000")
        .args(["--role", "all"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting bookstore");
    let stdout = app.stdout.take().unwrap();
    let base = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("Bookstore is ready: open ")
                .map(|url| url.trim_end_matches('/').to_owned())
        })
        .expect("the app never became ready");

    let mut conn = database.connect();
    let staff_id: bookstore::ids::UserId = users::table
        .filter(users::login.eq("staff"))
        .select(users::id)
        .first(&mut conn)
        .unwrap();
    let owner = AuditContext::new(Actor::Staff("staff".into()), None);
    let token = tokens::create(&mut conn, &owner, staff_id, "load test", None).unwrap();
    let stock_before: HashMap<i64, i32> = books::table
        .select((books::id, books::stock))
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .collect();

    println!("{customers} customers and 1 staff script for {seconds} s against {base}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let checkouts = Arc::new(Mutex::new((0usize, 0usize)));
    let (mut timings, queued) = runtime.block_on(async {
        let shoppers: Vec<_> = (0..customers)
            .map(|i| tokio::spawn(customer(base.clone(), i, deadline, checkouts.clone())))
            .collect();
        let staff = tokio::spawn(staff(base.clone(), token, deadline));
        let mut all = Timings::new();
        for shopper in shoppers {
            for (route, (latencies, errors)) in shopper.await.unwrap() {
                let entry = all.entry(route).or_default();
                entry.0.extend(latencies);
                entry.1 += errors;
            }
        }
        let (staff_timings, queued) = staff.await.unwrap();
        all.extend(staff_timings);
        (all, queued)
    });
    let elapsed = started.elapsed();

    println!();
    println!("| route | requests | req/s | p50 | p99 | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut routes: Vec<_> = timings.drain().collect();
    routes.sort_by_key(|(route, _)| *route);
    let (mut total, mut errors) = (0, 0);
    for (route, (latencies, failed)) in routes {
        let stats = Stats::new(latencies, elapsed);
        total += stats.count;
        errors += failed;
        println!(
            "| {route} | {} | {:.1} | {} | {} | {failed} |",
            stats.count,
            stats.per_second(),
            ms(stats.percentile(0.5)),
            ms(stats.percentile(0.99))
        );
    }
    let (placed, refused) = *checkouts.lock().unwrap();
    println!(
        "| all | {total} | {:.1} | | | {errors} |",
        total as f64 / elapsed.as_secs_f64()
    );
    println!();
    println!(
        "checkouts: {placed} placed, {refused} refused for lack of stock (an expected answer)"
    );

    // Let the engine drain the queue, then check the books.
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < drain_deadline {
        let open: i64 = tasks::table
            .filter(tasks::status.eq_any(["scheduled", "running"]))
            .count()
            .get_result(&mut conn)
            .unwrap();
        if open == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut failures = Vec::new();
    let stock_after: HashMap<i64, i32> = books::table
        .select((books::id, books::stock))
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    let sold: HashMap<i64, Option<i64>> = order_lines::table
        .group_by(order_lines::book_id)
        .select((
            order_lines::book_id,
            diesel::dsl::sum(order_lines::quantity),
        ))
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .collect();
    let units_sold: i64 = sold.values().map(|n| n.unwrap_or(0)).sum();
    let stock_removed: i64 = stock_before
        .iter()
        .map(|(id, before)| (*before - stock_after[id]) as i64)
        .sum();
    for (id, before) in &stock_before {
        let removed = (*before - stock_after[id]) as i64;
        let sold_here = sold.get(id).copied().flatten().unwrap_or(0);
        if removed != sold_here {
            failures.push(format!(
                "book {id}: stock fell by {removed} but {sold_here} were sold"
            ));
        }
    }
    if let Some((id, stock)) = stock_after.iter().find(|(_, stock)| **stock < 0) {
        failures.push(format!("book {id} has stock {stock}"));
    }
    let mismatched: i64 = orders::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "total_cents <> (SELECT coalesce(sum(l.quantity::bigint * l.unit_price_cents), -1) FROM order_lines l WHERE l.order_id = orders.id)",
        ))
        .count()
        .get_result(&mut conn)
        .unwrap();
    if mismatched > 0 {
        failures.push(format!(
            "{mismatched} orders whose total differs from their lines"
        ));
    }
    let order_count: i64 = orders::table.count().get_result(&mut conn).unwrap();
    let ran: Vec<(String, i32)> = tasks::table
        .filter(tasks::id.eq_any(&queued))
        .select((tasks::status, tasks::attempt))
        .load(&mut conn)
        .unwrap();
    let finished_once = ran
        .iter()
        .filter(|(status, attempt)| status == "finished" && *attempt == 1)
        .count();
    if ran.len() != queued.len() || finished_once != queued.len() {
        failures.push(format!(
            "{} tasks queued, {} found, {finished_once} finished exactly once",
            queued.len(),
            ran.len()
        ));
    }
    println!(
        "orders: {order_count}; units sold {units_sold} = stock removed {stock_removed}: {}",
        if units_sold == stock_removed {
            "yes"
        } else {
            "NO"
        }
    );
    println!(
        "tasks: {} queued by staff, {finished_once} finished exactly once",
        queued.len()
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = app.wait();
    if failures.is_empty() {
        println!("checks: all passed");
    } else {
        for failure in &failures {
            println!("CHECK FAILED: {failure}");
        }
        drop(database);
        std::process::exit(1);
    }
}
