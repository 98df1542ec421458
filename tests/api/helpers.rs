//! The test harness: one throwaway PostgreSQL cluster per test run (found the same way the app
//! finds its own), a migrated and seeded template database, and a fresh copy of it per test.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};

use bookstore::{
    config::{Config, Role, SeedDemo},
    db::{
        self, PgPool,
        cluster::{ClusterOptions, EmbeddedCluster, quote_ident},
    },
    startup::{Application, StopHandle},
};
use diesel::{Connection, PgConnection, RunQueryDsl, sql_query};
use uuid::Uuid;

const TEMPLATE_DB: &str = "bookstore_template";

struct TestCluster {
    cluster: EmbeddedCluster,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

/// Starts the run's cluster on first use. Statics are never dropped, so a detached watcher
/// process stops the server and deletes its folder once this test process has exited,
/// however it exits.
fn test_cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        bookstore::telemetry::init_for_tests();
        // Under /tmp: short socket paths, and reachable by the postgres user when run as root.
        let root = PathBuf::from(format!("/tmp/bookstore-test-{}", Uuid::new_v4().simple()));
        let cluster = EmbeddedCluster::start(&ClusterOptions {
            root: root.clone(),
            bin_dir: None,
            durable: false,
            adopt_orphan: false,
        })
        .expect("starting the test cluster");
        watch_and_clean_up(&root);
        cluster
            .ensure_database(TEMPLATE_DB)
            .expect("creating the template database");
        let mut conn = PgConnection::establish(&cluster.conninfo(TEMPLATE_DB)).expect("connecting");
        // The small demo catalog: the tests that need the full one load it themselves.
        bookstore::startup::prepare(&mut conn, SeedDemo::Small)
            .expect("migrating and seeding the template");
        use_test_passwords(&mut conn);
        // No connection may stay open on a template while databases are copied from it.
        drop(conn);
        TestCluster { cluster }
    })
}

fn watch_and_clean_up(root: &std::path::Path) {
    run_when_this_process_exits(&format!(
        "pm=$(head -n 1 '{root}/pg/postmaster.pid' 2>/dev/null); \
         if [ -n \"$pm\" ]; then kill -INT \"$pm\" 2>/dev/null; \
           for i in $(seq 1 100); do kill -0 \"$pm\" 2>/dev/null || break; sleep 0.1; done; fi; \
         rm -rf '{root}'",
        root = root.display()
    ));
}

/// Runs a shell command after this test process has exited, however it exits (statics are
/// never dropped, so this is how shared test servers get stopped).
pub fn run_when_this_process_exits(command: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; {command}",
        pid = std::process::id()
    );
    // Deliberately not waited for: it outlives this process.
    #[allow(clippy::zombie_processes)]
    let _watcher = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C on the test run must not stop the clean-up.
        .process_group(0)
        .spawn()
        .expect("starting the clean-up watcher");
}

/// A fresh database copied from the migrated, seeded template.
pub fn fresh_database() -> String {
    let cluster = &test_cluster().cluster;
    let name = format!("test_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(&cluster.conninfo("postgres")).expect("connecting");
    sql_query(format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(&name),
        quote_ident(TEMPLATE_DB)
    ))
    .execute(&mut conn)
    .expect("copying the template database");
    cluster.conninfo(&name)
}

#[derive(Clone)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// The libpq connection string of this test's database.
    pub database_url: String,
    pub stop: StopHandle,
    /// `http://` + `BOOKSTORE_METRICS_ADDR`'s listener, when the test gave it one.
    pub metrics_address: Option<String>,
}

/// The real app, in this process, on a random port, over its own fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with configuration changes.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let url = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    spawn_app_on(&url, adjust).await
}

/// The real app over a database the test made itself (a private cluster, a primary with its
/// standby), with configuration changes.
pub async fn spawn_app_on(url: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let url = url.to_owned();
    let mut config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(url.clone()),
        pool_size: 4,
        // Most tests need no task engine; the task tests ask for one.
        role: Role::Web,
        ..Config::default()
    };
    adjust(&mut config);
    let pool = db::build_pool(&url, config.pool_size).expect("building the pool");
    let app = Application::build(&config, pool.clone()).expect("building the app");
    let address = format!("http://{}", app.addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let stop = app.stop_handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: new_browser(),
        pool,
        database_url: url,
        stop,
        metrics_address,
    }
}

/// Another web node on the same database (as a second app process would be); returns its
/// base URL.
pub async fn spawn_node_on(database_url: &str) -> String {
    let config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(database_url.to_owned()),
        pool_size: 4,
        role: Role::Web,
        ..Config::default()
    };
    let pool = db::build_pool(database_url, config.pool_size).expect("building the pool");
    let node = Application::build(&config, pool).expect("building the node");
    let address = format!("http://{}", node.addr());
    tokio::spawn(node.run_until_stopped());
    address
}

/// Another node on the same database that only runs tasks. Awaiting the returned handle's
/// task after `stop()` waits for its graceful shutdown.
pub fn spawn_worker(
    database_url: &str,
    adjust: impl FnOnce(&mut Config),
) -> (StopHandle, tokio::task::JoinHandle<std::io::Result<()>>) {
    let mut config = Config {
        database_url: Some(database_url.to_owned()),
        pool_size: 6,
        role: Role::Worker,
        ..Config::default()
    };
    adjust(&mut config);
    let pool = db::build_pool_with(
        database_url,
        config.pool_size,
        db::Statements::for_pooler(config.transaction_pooler),
    )
    .expect("building the pool");
    let node = Application::build(&config, pool).expect("building the worker");
    let stop = node.stop_handle();
    (stop, tokio::spawn(node.run_until_stopped()))
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `seconds`.
pub async fn wait_until<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A cookie jar of its own, and redirects left to the test to check.
fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The `csrf_token` hidden field of a page.
pub fn csrf_token_in(page: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("the page has a CSRF token field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The API token a tokens page shows just after its creation, if any.
pub fn new_token_in(page: &str) -> Option<String> {
    let token = page
        .split("<code class=\"token\">")
        .nth(1)?
        .split('<')
        .next()?;
    Some(token.to_owned())
}

pub fn assert_is_redirect_to(response: &reqwest::Response, location: &str) {
    assert_eq!(response.status(), 303, "expected a redirect to {location}");
    assert_eq!(response.headers()["location"], location);
}

impl TestApp {
    /// Another browser on another machine: its requests come from `ip` (any 127.x.y.z
    /// address reaches the app over the loopback device).
    pub fn browser_at(&self, ip: [u8; 4]) -> TestApp {
        TestApp {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .local_address(std::net::IpAddr::from(ip))
                .build()
                .unwrap(),
            ..self.another_browser()
        }
    }

    /// The same app seen from another browser (its own cookies).
    pub fn another_browser(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            client: new_browser(),
            pool: self.pool.clone(),
            database_url: self.database_url.clone(),
            stop: self.stop.clone(),
            metrics_address: self.metrics_address.clone(),
        }
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .form(fields)
            .send()
            .await
            .expect("request failed")
    }

    /// Fills in the form on `page` (taking its CSRF token) and posts it to `action`.
    pub async fn submit(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.get(page).await.text().await.unwrap();
        let token = csrf_token_in(&html);
        let mut fields = fields.to_vec();
        fields.push(("csrf_token", &token));
        self.post_form(action, &fields).await
    }

    pub async fn register(&self, login: &str, name: &str, password: &str) -> reqwest::Response {
        let email = format!("{}@example.test", login.trim());
        let fields = [
            ("login", login),
            ("display_name", name),
            ("email", email.as_str()),
            ("password", password),
            ("password_confirmation", password),
        ];
        self.submit("/register", "/register", &fields).await
    }

    /// Sets `password` through the reset link at `path` (its form, then the post).
    pub async fn use_reset_link(&self, path: &str, password: &str) -> reqwest::Response {
        let fields = [("password", password), ("password_confirmation", password)];
        self.submit(path, path, &fields).await
    }

    pub async fn log_in(&self, login: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/login",
            "/login",
            &[("login", login), ("password", password)],
        )
        .await
    }

    /// Logs in and checks that it worked.
    pub async fn log_in_as(&self, login: &str, password: &str) {
        let response = self.log_in(login, password).await;
        assert_eq!(response.status(), 303, "logging in as {login} failed");
    }

    pub async fn log_out(&self) -> reqwest::Response {
        self.submit("/", "/logout", &[]).await
    }

    /// Creates an API token named `name` on the tokens page (logged in as staff) and reads it
    /// where the page shows it once, after the redirect.
    pub async fn create_api_token(&self, name: &str) -> String {
        let created = self
            .submit("/admin/tokens", "/admin/tokens", &[("name", name)])
            .await;
        assert_is_redirect_to(&created, "/admin/tokens");
        new_token_in(&self.page("/admin/tokens").await).expect("the new token is shown")
    }

    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// Runs database work for an assertion, off the async runtime.
    /// A task's status, as stored.
    pub async fn task_status(&self, id: bookstore::ids::TaskId) -> String {
        use bookstore::db::schema::tasks;
        use diesel::prelude::*;
        self.db(move |conn| {
            tasks::table
                .filter(tasks::id.eq(id))
                .select(tasks::status)
                .first(conn)
                .unwrap()
        })
        .await
    }

    /// Runs SQL through `bookstore psql`, as a DBA would: (succeeded, stdout, stderr).
    pub fn psql(&self, sql: &str) -> (bool, String, String) {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bookstore"))
            .args(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("DATABASE_URL", &self.database_url)
            .env("BOOKSTORE_LOG", "warn")
            .output()
            .expect("running bookstore psql");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub async fn db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut PgConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || work(&mut pool.get().expect("a connection")))
            .await
            .unwrap()
    }
}

/// A PostgreSQL cluster of a test's own, migrated, with one database (for tests that stop and
/// restart the server: doing that to the shared one would disturb the other tests). Returns
/// how to start it again, the running cluster and the database's connection string.
pub fn private_cluster(name: &str, seed_demo: bool) -> (ClusterOptions, EmbeddedCluster, String) {
    let root = PathBuf::from(format!("/tmp/bookstore-{name}-{}", Uuid::new_v4().simple()));
    run_when_this_process_exits(&format!(
        "pm=$(head -n 1 '{0}/pg/postmaster.pid' 2>/dev/null); [ -n \"$pm\" ] && kill -INT \"$pm\"; sleep 1; rm -rf '{0}'",
        root.display()
    ));
    let options = ClusterOptions {
        root,
        bin_dir: None,
        durable: false,
        adopt_orphan: false,
    };
    let cluster = EmbeddedCluster::start(&options).expect("starting a private cluster");
    cluster
        .ensure_database(name)
        .expect("creating its database");
    let url = cluster.conninfo(name);
    let mut conn = PgConnection::establish(&url).expect("connecting to it");
    let seed = if seed_demo {
        SeedDemo::Small
    } else {
        SeedDemo::Off
    };
    bookstore::startup::prepare(&mut conn, seed).expect("migrating it");
    if seed_demo {
        use_test_passwords(&mut conn);
    }
    (options, cluster, url)
}

/// The app gives the demo accounts random passwords; the tests log in with these instead.
pub fn use_test_passwords(conn: &mut PgConnection) {
    use bookstore::db::schema::users;
    use diesel::{ExpressionMethods, QueryDsl};
    for (login, password) in [
        ("alice", "alice-reads-books"),
        ("staff", "staff-runs-tasks"),
    ] {
        let hash = bookstore::domain::accounts::hash_password(password).expect("hashing");
        diesel::update(users::table.filter(users::login.eq(login)))
            .set(users::password_hash.eq(hash))
            .execute(conn)
            .expect("setting a test password");
    }
}

/// The demo staff member acting from the tests, for the domain functions that record who acts.
pub fn staff_acting() -> bookstore::audit::AuditContext {
    use bookstore::audit::{Actor, AuditContext};
    AuditContext::new(Actor::Staff("staff".into()), None)
}

/// A customer acting from the tests (checkouts queue their confirmation mail as someone).
pub fn customer_acting() -> bookstore::audit::AuditContext {
    use bookstore::audit::{Actor, AuditContext};
    AuditContext::new(Actor::Customer("alice".into()), None)
}
