//! The `bookstore` binary itself, as an operator runs it: its own private cluster, restarts,
//! crashes, `bookstore psql`, and configuration errors.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_bookstore");

/// A data folder under /tmp (reachable by the postgres user, short socket path), removed with
/// any server still running on it when the test ends, pass or fail.
pub(crate) struct DataDir(pub(crate) PathBuf);

impl DataDir {
    pub(crate) fn new() -> DataDir {
        DataDir(PathBuf::from(format!(
            "/tmp/bookstore-proc-{}",
            Uuid::new_v4().simple()
        )))
    }

    pub(crate) fn postmaster_pid(&self) -> Option<Pid> {
        let text = std::fs::read_to_string(self.0.join("pg/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().map(Pid::from_raw)
    }

    fn postmaster_running(&self) -> bool {
        self.postmaster_pid()
            .is_some_and(|pid| kill(pid, None).is_ok())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            let _ = kill(pid, Signal::SIGQUIT);
            // Until it has gone (its files are removed next), for at most ten seconds.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while kill(pid, None).is_ok() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn bookstore(data: &DataDir) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_remove("DATABASE_URL")
        .env("BOOKSTORE_DATA_DIR", &data.0)
        .env("BOOKSTORE_ADDR", "127.0.0.1:0")
        .env("BOOKSTORE_LOG", "warn")
        // The quick demo catalog; `the_full_demo_catalog_...` loads the real one.
        .env("BOOKSTORE_SEED_DEMO", "small");
    command
}

pub(crate) struct RunningApp {
    child: Child,
    pub(crate) address: String,
    /// What it printed before it was ready.
    said: Vec<String>,
}

/// Starts the app and waits for the line that says where to open it.
pub(crate) fn start(data: &DataDir) -> RunningApp {
    start_with(bookstore(data))
}

pub(crate) fn start_with(mut command: Command) -> RunningApp {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting bookstore");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Bookstore is ready: open ") {
                let _ = sender.send((
                    url.trim_end_matches('/').to_owned(),
                    std::mem::take(&mut said),
                ));
            } else {
                said.push(line);
            }
        }
    });
    let (address, said) = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("the app never said it was ready");
    RunningApp {
        child,
        address,
        said,
    }
}

impl RunningApp {
    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(Signal::SIGTERM);
        self.child.wait().unwrap()
    }
}

pub(crate) fn psql(data: &DataDir, sql: &str) -> String {
    let output = bookstore(data)
        .args(["psql", "-At", "-c", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub(crate) async fn home_page(app: &RunningApp) -> String {
    let response = reqwest::get(format!("{}/", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn the_private_cluster_keeps_data_across_restarts_and_stops_with_the_app() {
    let data = DataDir::new();

    let app = start(&data);
    let health = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        data.0.join("pg/PG_VERSION").exists(),
        "the cluster lives in the data folder"
    );
    assert!(data.postmaster_running());
    psql(
        &data,
        "UPDATE books SET title = 'Restart Survivor' WHERE id = 1",
    );
    assert!(app.terminate().success(), "SIGTERM is a clean exit");
    assert!(
        !data.postmaster_running(),
        "stopping the app stops PostgreSQL"
    );

    let app = start(&data);
    assert!(home_page(&app).await.contains("Restart Survivor"));
    // Ctrl-C in a terminal is SIGINT: the same orderly stop.
    app.signal(Signal::SIGINT);
    let mut child = app.child;
    assert!(child.wait().unwrap().success(), "Ctrl-C is a clean exit");
    assert!(!data.postmaster_running());

    // Without the app, `bookstore psql` starts the cluster for its session and stops it after.
    assert_eq!(
        psql(&data, "SELECT count(*) FROM books"),
        "300",
        "no second seeding"
    );
    assert!(!data.postmaster_running());
}

#[tokio::test]
async fn a_crash_of_app_and_server_loses_nothing() {
    let data = DataDir::new();
    let app = start(&data);
    psql(
        &data,
        "UPDATE books SET title = 'Crash Survivor' WHERE id = 2",
    );

    app.signal(Signal::SIGKILL);
    let postmaster = data.postmaster_pid().expect("a running server");
    kill(postmaster, Signal::SIGKILL).unwrap();
    let mut child = app.child;
    child.wait().unwrap();

    let app = start(&data);
    assert!(home_page(&app).await.contains("Crash Survivor"));
    assert!(app.terminate().success());
    assert!(!data.postmaster_running());
}

fn run_failing(command: &mut Command) -> (Output, String) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_malformed_variable_stops_the_start_naming_it() {
    let data = DataDir::new();
    for (variable, value) in [
        ("BOOKSTORE_POOL_SIZE", "lots"),
        ("BOOKSTORE_ADDR", "not-an-address"),
    ] {
        let (output, stderr) = run_failing(bookstore(&data).env(variable, value));
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
    assert!(!Path::new(&data.0).exists(), "nothing was started");
}

#[test]
fn missing_server_binaries_are_one_clear_line() {
    let data = DataDir::new();
    let empty = tempdir();

    let (output, stderr) = run_failing(bookstore(&data).env("BOOKSTORE_PG_BIN_DIR", &empty));

    assert!(!output.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("BOOKSTORE_PG_BIN_DIR") && stderr.contains("initdb"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir(empty);
}

#[test]
fn help_lists_the_configuration() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "psql",
        "BOOKSTORE_ADDR",
        "BOOKSTORE_DATA_DIR",
        "DATABASE_URL",
        "BOOKSTORE_POOL_SIZE",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

pub(crate) fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bookstore-empty-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_killed_postgres_is_started_again_and_the_app_stops_cleanly_after() {
    let data = DataDir::new();
    let app = start(&data);
    let first = data.postmaster_pid().expect("a running server");

    // The server dies under the app (kill -9, as the OOM killer would).
    kill(first, Signal::SIGKILL).unwrap();

    // The app notices, starts it again, and serves pages from it: no restart of the app.
    let back = std::time::Instant::now();
    loop {
        let healthy = reqwest::get(format!("{}/healthz", app.address))
            .await
            .is_ok_and(|r| r.status() == 200);
        if healthy && data.postmaster_pid().is_some_and(|pid| pid != first) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "PostgreSQL was not started again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(home_page(&app).await.contains("Bookstore"));
    assert!(app.terminate().success(), "SIGTERM is still a clean exit");
    assert!(!data.postmaster_running(), "and it stops the new server");
}

/// Logs in through the form, as a browser would; true when it worked.
async fn logs_in(app: &RunningApp, login: &str, password: &str) -> bool {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::helpers::csrf_token_in(&form);
    let response = browser
        .post(format!("{}/login", app.address))
        .header("Origin", app.address.clone())
        .form(&[
            ("login", login),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    response.status() == 303
}

#[tokio::test]
async fn demo_accounts_get_random_passwords_kept_in_a_private_file_and_never_logged() {
    use std::os::unix::fs::PermissionsExt;
    let data = DataDir::new();
    let log_dir = tempdir();
    let stderr_path = log_dir.join("stderr.log");
    let mut command = bookstore(&data);
    command
        .env("BOOKSTORE_LOG", "debug")
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    let app = start_with(command);

    let file = data.0.join("demo-accounts.txt");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its owner may read the file");
    let written = std::fs::read_to_string(&file).unwrap();
    let password_of = |login: &str| {
        written
            .lines()
            .find(|line| line.trim_start().starts_with(login))
            .and_then(|line| line.split("password: ").nth(1))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no password for {login} in the file: {written}"))
    };
    let (alice, staff) = (password_of("alice"), password_of("staff"));
    assert_ne!(alice, staff);
    assert!(alice.len() >= 20, "a long random password: {alice}");
    let said = app.said.join("\n");
    assert!(
        said.contains(&file.display().to_string()),
        "the output says where the passwords are: {said}"
    );

    assert!(logs_in(&app, "alice", &alice).await);
    assert!(
        !logs_in(&app, "alice", "alice-reads-books").await,
        "no published password"
    );
    assert!(
        !logs_in(&app, "staff", "staff-runs-tasks").await,
        "no published password"
    );
    assert!(app.terminate().success());

    let again = start(&data);
    assert!(
        !again
            .said
            .iter()
            .any(|line| line.contains("demo-accounts.txt")),
        "told once, when the accounts are made: {:?}",
        again.said
    );
    let status = again.terminate();
    assert!(status.success(), "{status:?}");

    let logged = std::fs::read_to_string(&stderr_path).unwrap();
    for (what, text) in [("stdout", &said), ("stderr", &logged)] {
        for password in [&alice, &staff] {
            assert!(
                !text.contains(password.as_str()),
                "a password on {what}: {text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
}
