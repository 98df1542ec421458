//! A worker node as its own process (`bookstore --role worker`), for the engine benches.

use std::{
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// `bookstore --role worker` on the bench database, every other setting at its default.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub fn start(url: &str) -> WorkerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bookstore"));
        // Default settings: nothing from the caller's environment may change them.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("BOOKSTORE_") {
                command.env_remove(name);
            }
        }
        let child = command
            .args(["--role", "worker"])
            .env("DATABASE_URL", url)
            .env("BOOKSTORE_SEED_DEMO", "false")
            .env("BOOKSTORE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the worker process");
        WorkerProcess { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("worker status") {
            panic!("worker {} exited early: {status}", self.pid());
        }
    }

    /// Peak resident memory so far (VmHWM).
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("reading the worker's status");
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib / 1024.0
    }

    /// User + system CPU time used so far, all threads.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("reading the worker's stat");
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 1..]
            .split_whitespace()
            .collect();
        let ticks: f64 = [fields[14 - 3], fields[15 - 3]]
            .iter()
            .map(|field| field.parse::<f64>().expect("utime/stime"))
            .sum();
        ticks / clock_ticks_per_second()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the worker") {
                break status;
            }
            assert!(Instant::now() < deadline, "worker ignored SIGTERM for 60 s");
            sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "worker exited with {status}");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
