//! PostgreSQL restarted under load, or hung: the app keeps answering (503 while the database
//! is down or silent, never a hang or a crash) and recovers by itself once it is back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bookstore::db::cluster::EmbeddedCluster;
use diesel::{Connection, PgConnection};

use crate::helpers::{private_cluster, spawn_node_on, wait_until};

#[tokio::test]
async fn the_app_answers_503_while_postgres_restarts_and_recovers_by_itself() {
    let (options, mut cluster, url) = private_cluster("outage", true);
    let base = spawn_node_on(&url).await;

    // Load: four clients on the health check and a search page, the whole time, counting the
    // answers they get so the story can wait on them.
    let stop = Arc::new(AtomicBool::new(false));
    let answered_ok = Arc::new(AtomicUsize::new(0));
    let answered_unavailable = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (base, stop) = (base.clone(), stop.clone());
        let (ok, unavailable) = (answered_ok.clone(), answered_unavailable.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let path = if i % 2 == 0 {
                "/healthz"
            } else {
                "/books?q=harry"
            };
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let response = client
                    .get(format!("{base}{path}"))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                let status = response.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                match status {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    503 => unavailable.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                let body = match response {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                seen.push((status, began.elapsed(), body.contains("unavailable")));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        }));
    }
    // A logged-in customer too: their session lives in the database that is about to go.
    let customer = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = customer
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::helpers::csrf_token_in(&form);
    let logged_in = customer
        .post(format!("{base}/login"))
        .form(&[
            ("login", "alice"),
            ("password", "alice-reads-books"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 303);
    let count = |counter: &Arc<AtomicUsize>| counter.load(Ordering::Relaxed);
    wait_until(
        30,
        "the clients to be answered before the outage",
        || async { count(&answered_ok) >= 8 },
    )
    .await;

    cluster.stop().unwrap();
    let with_session = customer.get(format!("{base}/cart")).send().await.unwrap();
    assert_eq!(
        with_session.status(),
        503,
        "a session that cannot be checked is a 503, not a 500"
    );
    assert!(
        with_session
            .text()
            .await
            .unwrap()
            .contains("Temporarily unavailable")
    );
    let during = reqwest::get(format!("{base}/books")).await.unwrap();
    assert_eq!(during.status(), 503);
    let page = during.text().await.unwrap();
    assert!(
        page.contains("Temporarily unavailable") && page.contains("database is unavailable"),
        "{page}"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 503);
    let before = count(&answered_unavailable);
    wait_until(30, "the clients to meet the outage", || async {
        count(&answered_unavailable) >= before + 8
    })
    .await;

    let _restarted = EmbeddedCluster::start(&options).unwrap();
    let back = Instant::now();
    loop {
        let status = reqwest::get(format!("{base}/healthz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "the app did not recover (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = count(&answered_ok);
    wait_until(30, "the clients to be answered again", || async {
        count(&answered_ok) >= recovered + 8
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    let unexpected: Vec<_> = seen
        .iter()
        .filter(|(status, _, _)| *status != 200 && *status != 503)
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 200 and 503 while the database restarts: {unexpected:?}"
    );
    assert!(
        seen.iter().any(|(status, _, _)| *status == 503),
        "the outage was seen"
    );
    assert!(
        seen.iter()
            .filter(|(status, _, _)| *status == 503)
            .all(|(_, _, says)| *says),
        "a 503 says why"
    );
    let slowest = seen.iter().map(|(_, took, _)| *took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(8),
        "no request hung: the slowest took {slowest:?}"
    );
    assert_eq!(seen.last().unwrap().0, 200, "answering normally again");
    let cart = customer.get(format!("{base}/cart")).send().await.unwrap();
    assert_eq!(cart.status(), 200, "the session survived the restart");
    let _ = PgConnection::establish(&url).expect("the database is back");
}

/// Every process of a cluster: the postmaster and its children.
fn cluster_processes(cluster: &EmbeddedCluster) -> Vec<i32> {
    let pid_file = cluster.root().join("pg/postmaster.pid");
    let postmaster: i32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let children = std::process::Command::new("pgrep")
        .args(["-P", &postmaster.to_string()])
        .output()
        .unwrap();
    let mut pids = vec![postmaster];
    pids.extend(
        String::from_utf8_lossy(&children.stdout)
            .lines()
            .filter_map(|line| line.trim().parse::<i32>().ok()),
    );
    pids
}

/// Stops (SIGSTOP) the postmaster, then its children: stopped first, it forks no backend
/// between the listing of its children and their stop (one forked then would serve pages).
/// Listed again until no new child shows up, for one forked just before. Returns them all.
fn stop_cluster(cluster: &EmbeddedCluster) -> Vec<i32> {
    let stop = nix::sys::signal::Signal::SIGSTOP;
    let mut stopped: Vec<i32> = Vec::new();
    loop {
        let new: Vec<i32> = cluster_processes(cluster)
            .into_iter()
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if new.is_empty() {
            return stopped;
        }
        signal_all(&new, stop);
        stopped.extend(new);
    }
}

fn signal_all(pids: &[i32], signal: nix::sys::signal::Signal) {
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), signal);
    }
}

#[tokio::test]
async fn a_hung_database_gets_503s_not_hanging_pages_and_recovery_by_itself() {
    let (_options, cluster, url) = private_cluster("hung", true);
    let base = spawn_node_on(&url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Every PostgreSQL process stopped, as a hung host or a network partition looks.
    let processes = stop_cluster(&cluster);
    let mut answers = Vec::new();
    for path in ["/healthz", "/books", "/books?q=harry", "/books/1"] {
        let began = Instant::now();
        let response = client.get(format!("{base}{path}")).send().await;
        answers.push((
            path,
            response.map(|r| r.status().as_u16()).ok(),
            began.elapsed(),
        ));
    }
    signal_all(&processes, nix::sys::signal::Signal::SIGCONT);

    for (path, status, took) in &answers {
        assert_eq!(
            *status,
            Some(503),
            "{path} answers 503 while the database hangs"
        );
        // The deadline is 4 s; the margin is for a loaded machine.
        assert!(*took < Duration::from_secs(10), "{path} took {took:?}");
    }
    // And it recovers by itself once the server resumes.
    let back = Instant::now();
    while client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "no recovery after the database resumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = client.get(format!("{base}/books")).send().await.unwrap();
    assert_eq!(page.status(), 200);
}
