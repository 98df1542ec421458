//! Scaling out through PgBouncer in transaction pooling mode: eight nodes share one small set
//! of server connections, run every task exactly once, and pages answer meanwhile. LISTEN and
//! the migration lock take the direct connection (`DATABASE_LISTEN_URL`).

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use bookstore::{
    config::{Config, Role},
    db::{
        self, Statements,
        schema::{programs, tasks},
    },
    startup::Application,
};
use diesel::{Connection, PgConnection, RunQueryDsl, prelude::*, sql_query};

use crate::helpers::{private_cluster, run_when_this_process_exits, spawn_worker, wait_until};

/// PgBouncer (Debian's package) in front of a cluster's socket, on a free local port.
struct PgBouncer {
    child: Child,
    folder: PathBuf,
    port: u16,
}

impl PgBouncer {
    fn start(socket_dir: &Path) -> PgBouncer {
        let folder = PathBuf::from(format!(
            "/tmp/bookstore-pgbouncer-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ini = folder.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={socket} port=5432 user=postgres\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = any\npool_mode = transaction\nmax_client_conn = 500\n\
                 default_pool_size = 16\nignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {log}\npidfile = {pid}\n",
                socket = socket_dir.display(),
                log = folder.join("pgbouncer.log").display(),
                pid = folder.join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        // PgBouncer refuses to run as root, like PostgreSQL. (Drop waits for it.)
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&folder)
            .status();
        #[allow(clippy::zombie_processes)]
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--", "/usr/sbin/pgbouncer"])
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer is not installed: run the tests with `bash .ci/test`");
        run_when_this_process_exits(&format!(
            "pkill -f '{}' ; rm -rf '{}'",
            ini.display(),
            folder.display()
        ));
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return PgBouncer {
                    child,
                    folder,
                    port,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer did not start; see {}", folder.display());
    }

    fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.folder.join("pgbouncer.ini"))
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn through_bouncer(bouncer: String, direct: String) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        config.database_url = Some(bouncer);
        config.database_listen_url = Some(direct);
        config.transaction_pooler = true;
        config.pool_size = 2;
        config.task_lease_seconds = 30;
    }
}

#[actix_web::test]
async fn eight_nodes_through_pgbouncer_run_every_task_once_while_pages_answer() {
    bookstore::telemetry::init_for_tests();
    let (_options, cluster, direct) = private_cluster("bouncer", true);
    let bouncer = PgBouncer::start(cluster.socket_dir());
    let pooled = bouncer.url("bouncer");

    // A web node through PgBouncer.
    let web_config = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(pooled.clone()),
        database_listen_url: Some(direct.clone()),
        transaction_pooler: true,
        pool_size: 4,
        role: Role::Web,
        ..Config::default()
    };
    let web = Application::build(
        &web_config,
        db::build_pool_with(&pooled, 4, Statements::Unprepared).unwrap(),
    )
    .unwrap();
    let base = format!("http://{}", web.addr());
    tokio::spawn(web.run_until_stopped());

    // Eight worker nodes through PgBouncer.
    let workers: Vec<_> = (0..8)
        .map(|_| spawn_worker(&pooled, through_bouncer(pooled.clone(), direct.clone())))
        .collect();
    let mut conn = PgConnection::establish(&direct).unwrap();
    sql_query("SELECT run_program('noop', NULL) FROM generate_series(1, 2000)")
        .execute(&mut conn)
        .unwrap();

    // Pages answer while the tasks run.
    let client = reqwest::Client::new();
    let mut pages = 0;
    let finished = || {
        tasks::table
            .inner_join(programs::table)
            .filter(programs::name.eq("noop"))
            .filter(tasks::status.eq("finished"))
            .count()
            .get_result::<i64>(&mut PgConnection::establish(&direct).unwrap())
            .unwrap()
    };
    while finished() < 2000 {
        for path in ["/books", "/healthz"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} while 8 nodes work");
            pages += 1;
        }
        assert!(pages < 100_000, "the tasks never finished");
    }
    wait_until(60, "every task to finish", || async { finished() == 2000 }).await;

    let (ran_twice, nodes): (i64, i64) = (
        tasks::table
            .inner_join(programs::table)
            .filter(programs::name.eq("noop"))
            .filter(tasks::attempt.ne(1))
            .count()
            .get_result(&mut conn)
            .unwrap(),
        tasks::table
            .inner_join(programs::table)
            .filter(programs::name.eq("noop"))
            .select(diesel::dsl::count(tasks::worker_id).aggregate_distinct())
            .first(&mut conn)
            .unwrap(),
    );
    assert_eq!(ran_twice, 0, "every task ran exactly once");
    assert!(nodes >= 1, "{nodes} nodes ran tasks");
    for (stop, node) in workers {
        stop.stop();
        node.await.unwrap().unwrap();
    }
}
