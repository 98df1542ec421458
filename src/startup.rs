//! Builds the web application on a bound port; `main` and the tests both go through here.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use anyhow::Context;

use crate::{
    config::Config,
    db::{self, PgPool},
    domain::accounts::{sessions::SessionPolicy, throttle::ThrottlePolicy},
    housekeeping,
    web::{self, AppState},
};

pub struct Application {
    addr: SocketAddr,
    server: Server,
    pool: PgPool,
    session_policy: SessionPolicy,
    throttle_policy: ThrottlePolicy,
}

impl Application {
    /// Binds `config.addr` (port 0 picks a free port) and prepares the server; it starts
    /// answering once [`Application::run_until_stopped`] is awaited.
    pub fn build(config: &Config, pool: PgPool) -> anyhow::Result<Application> {
        let mut conn = pool.get().context("connecting to PostgreSQL")?;
        let cookie_key = db::secrets::cookie_key(&mut conn).context("loading the cookie key")?;
        drop(conn);
        let listener = TcpListener::bind(config.addr)
            .with_context(|| format!("listening on {} (BOOKSTORE_ADDR)", config.addr))?;
        let addr = listener.local_addr()?;
        let state = AppState {
            pool: pool.clone(),
            throttle: config.throttle_policy(),
            page_size: config.page_size.into(),
        };
        let server = web::server(listener, state, config, cookie_key)?;
        Ok(Application {
            addr,
            server,
            pool,
            session_policy: config.session_policy(),
            throttle_policy: config.throttle_policy(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A handle that stops the server gracefully (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (handled by actix-web: in-flight requests finish first),
    /// with the periodic clean-up running beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let cleanup = housekeeping::run(self.pool, self.session_policy, self.throttle_policy);
        tokio::select! {
            served = self.server => served,
            () = cleanup => Ok(()),
        }
    }
}
