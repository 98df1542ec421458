//! Builds the web application on a bound port; `main` and the tests both go through here.

use std::{net::SocketAddr, net::TcpListener};

use actix_web::dev::Server;
use anyhow::Context;

use crate::{
    config::Config,
    db::PgPool,
    web::{self, AppState},
};

pub struct Application {
    addr: SocketAddr,
    server: Server,
}

impl Application {
    /// Binds `config.addr` (port 0 picks a free port) and prepares the server; it starts
    /// answering once [`Application::run_until_stopped`] is awaited.
    pub fn build(config: &Config, pool: PgPool) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.addr)
            .with_context(|| format!("listening on {} (BOOKSTORE_ADDR)", config.addr))?;
        let addr = listener.local_addr()?;
        let server = web::server(listener, AppState { pool }, config)?;
        Ok(Application { addr, server })
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

    /// Serves until SIGINT/SIGTERM (handled by actix-web: in-flight requests finish first).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
