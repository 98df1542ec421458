//! Shared by the bench programs: a throwaway PostgreSQL cluster, the real app in-process, and
//! load loops that measure throughput and latency.

#![allow(dead_code)]

pub mod task_rows;
pub mod worker;

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

pub mod catalog;

use bookstore::{
    config::{Config, Role},
    db::{
        self, PgPool,
        cluster::{ClusterOptions, EmbeddedCluster},
    },
    startup::Application,
};
use diesel::{
    Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query,
    sql_types::{BigInt, Text},
};

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A private cluster under /tmp with a migrated (not seeded) database; stopped on drop.
pub struct BenchDatabase {
    pub cluster: EmbeddedCluster,
    pub url: String,
    root: PathBuf,
}

impl BenchDatabase {
    pub fn start(name: &str) -> BenchDatabase {
        let root = PathBuf::from(format!(
            "/tmp/bookstore-bench-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let cluster = EmbeddedCluster::start(&ClusterOptions {
            root: root.clone(),
            bin_dir: None,
            durable: true,
            adopt_orphan: false,
        })
        .expect("starting the bench cluster");
        cluster
            .ensure_database("bench")
            .expect("creating the bench database");
        let url = cluster.conninfo("bench");
        let mut conn = PgConnection::establish(&url).expect("connecting");
        bookstore::startup::prepare(&mut conn, bookstore::config::SeedDemo::Off)
            .expect("migrating");
        BenchDatabase { cluster, url, root }
    }

    /// The database named by the environment variable `var` (migrated here), or else a
    /// cluster of the bench's own, kept in the returned value (stopped and deleted when it is
    /// dropped, so drop it before exiting: `exit` runs no destructors).
    pub fn from_env_or_own(var: &str, name: &str) -> (String, Option<BenchDatabase>) {
        match std::env::var(var) {
            Ok(url) => {
                let mut conn = PgConnection::establish(&url).expect("connecting");
                bookstore::startup::prepare(&mut conn, bookstore::config::SeedDemo::Off)
                    .expect("migrating");
                (url, None)
            }
            Err(_) => {
                let database = BenchDatabase::start(name);
                (database.url.clone(), Some(database))
            }
        }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connecting")
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The real app on a random port; returns its base URL and its pool.
pub async fn start_app(url: &str, pool_size: u32) -> (String, PgPool) {
    start_app_with(url, pool_size, |_| {}).await
}

/// [`start_app`], with settings of the bench's own on top of the web role's.
pub async fn start_app_with(
    url: &str,
    pool_size: u32,
    adjust: impl FnOnce(&mut Config),
) -> (String, PgPool) {
    let mut config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(url.to_owned()),
        pool_size,
        seed_demo: bookstore::config::SeedDemo::Off,
        log: "warn".into(),
        // Pages only: the catalog bench measures the web path.
        role: Role::Web,
        ..Config::default()
    };
    adjust(&mut config);
    let pool = db::build_pool(url, pool_size).expect("pool");
    let app = Application::build(&config, pool.clone()).expect("app");
    let address = format!("http://{}", app.addr());
    tokio::spawn(app.run_until_stopped());
    (address, pool)
}

/// Latencies of one measured run.
pub struct Stats {
    pub count: usize,
    pub elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    pub fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
        latencies.sort_unstable();
        Stats {
            count: latencies.len(),
            elapsed,
            latencies,
        }
    }

    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// `concurrency` clients each repeating GET `url` until `duration` passes.
pub async fn http_load(url: &str, concurrency: usize, duration: Duration) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.to_owned());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let began = Instant::now();
                let response = client.get(&url).send().await.expect("request");
                assert_eq!(response.status(), 200, "{url}");
                response.bytes().await.expect("body");
                latencies.push(began.elapsed());
            }
            latencies
        });
    }
    let latencies = workers.join_all().await.concat();
    Stats::new(latencies, start.elapsed())
}

/// `concurrency` threads, each with its own connection, repeating `work` until `duration`
/// passes.
pub fn sql_load(
    database: &BenchDatabase,
    concurrency: usize,
    duration: Duration,
    work: impl Fn(&mut PgConnection) + Send + Sync + Clone + 'static,
) -> Stats {
    let start = Instant::now();
    let deadline = start + duration;
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut conn = database.connect();
            let work = work.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let began = Instant::now();
                    work(&mut conn);
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let latencies = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    Stats::new(latencies, start.elapsed())
}

/// Peak resident memory of this process (the app, its pool and the load generator).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One text column named `line`, for a statement that reports a line.
#[derive(QueryableByName)]
pub struct Line {
    #[diesel(sql_type = Text)]
    pub line: String,
}

/// The `n` that `sql` selects (a count, a size).
pub fn number(conn: &mut PgConnection, sql: &str) -> i64 {
    sql_query(sql)
        .get_result::<Number>(conn)
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .n
}
