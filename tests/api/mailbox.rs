//! Where a test reads the mails the shop sent: a real SMTP server of its own (Python's
//! aiosmtpd writing a maildir), or the outbox folder the shop writes `.eml` files to when it
//! has no mail server.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use bookstore::{
    config::{Role, SmtpUrl},
    db::schema::mails,
    mail::MailStatus,
};
use diesel::prelude::*;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with, wait_until};

/// Where the shops of these tests say they are: links in mails start with it.
pub const PUBLIC: &str = "https://shop.example";

/// An SMTP server of the test's own on a free port; stopped when dropped.
pub struct SmtpSink {
    port: u16,
    maildir: PathBuf,
    server: Option<Child>,
}

impl SmtpSink {
    /// A port for it, not listening yet (the server is "down" until [`SmtpSink::start`]).
    pub fn reserve() -> SmtpSink {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir =
            std::env::temp_dir().join(format!("bookstore-smtp-{}", Uuid::new_v4().simple()));
        SmtpSink {
            port,
            maildir,
            server: None,
        }
    }

    pub async fn started() -> SmtpSink {
        let mut sink = SmtpSink::reserve();
        sink.start().await;
        sink
    }

    pub async fn start(&mut self) {
        let server = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd (pip install aiosmtpd)");
        self.server = Some(server);
        let port = self.port;
        wait_until(20, "the SMTP server to listen", || async move {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
    }

    pub fn url(&self) -> SmtpUrl {
        SmtpUrl(format!("smtp://127.0.0.1:{}", self.port))
    }

    /// Every message received, as text (quoted-printable soft breaks undone).
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for folder in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                messages.push(readable(&std::fs::read_to_string(entry.path()).unwrap()));
            }
        }
        messages
    }

    pub fn to(&self, address: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|message| {
                message
                    .lines()
                    .any(|line| line.starts_with("To:") && line.contains(address))
            })
            .collect()
    }

    /// The mails to `address` once there are `count` and each is recorded as sent.
    pub async fn wait_for(&self, app: &TestApp, address: &str, count: usize) -> Vec<String> {
        wait_until(30, &format!("{count} mail(s) to {address}"), || async {
            self.to(address).len() >= count
        })
        .await;
        let received = self.to(address);
        for mail in &received {
            wait_until_recorded_sent(app, mail).await;
        }
        received
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// A shop sending through `sink` (retrying soon when it is down); links start with [`PUBLIC`].
pub async fn shop_mailing_to(sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    spawn_app_with(move |config| {
        config.role = Role::All;
        config.smtp_url = Some(url);
        config.public_url = Some(PUBLIC.into());
        config.task_retry_base_ms = 50;
    })
    .await
}

/// The first link in `message` to `path_prefix` on the public address, made to reach the
/// test's app instead.
pub fn link_in(app: &TestApp, message: &str, path_prefix: &str) -> String {
    let start = message
        .find(&format!("{PUBLIC}{path_prefix}"))
        .unwrap_or_else(|| panic!("no {path_prefix} link in:\n{message}"));
    let link: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "/:.-_".contains(*c))
        .collect();
    link.replacen(PUBLIC, &app.address, 1)
}

/// A shop with no mail server, writing each mail to `<data dir>/outbox/` as an `.eml` file;
/// its links start with [`PUBLIC`].
pub async fn shop_writing_to_outbox() -> (TestApp, Outbox) {
    let outbox = Outbox {
        data_dir: std::env::temp_dir()
            .join(format!("bookstore-outbox-{}", Uuid::new_v4().simple())),
    };
    let dir = outbox.data_dir.clone();
    let app = spawn_app_with(move |config| {
        config.role = Role::All;
        config.public_url = Some(PUBLIC.into());
        config.data_dir = dir;
    })
    .await;
    (app, outbox)
}

/// The outbox folder of a shop without a mail server; its data directory goes when dropped.
pub struct Outbox {
    data_dir: PathBuf,
}

impl Outbox {
    /// Every `.eml` file written, as text.
    pub fn mails(&self) -> Vec<String> {
        std::fs::read_dir(self.data_dir.join("outbox"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .map(|e| readable(&std::fs::read_to_string(e.path()).unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first mail that contains `needle`, once it is written and recorded as sent.
    pub async fn wait_for(&self, app: &TestApp, needle: &str) -> String {
        let find = || self.mails().into_iter().find(|mail| mail.contains(needle));
        wait_until(
            30,
            &format!("a mail with {needle:?} in the outbox folder"),
            || async { find().is_some() },
        )
        .await;
        let mail = find().unwrap();
        wait_until_recorded_sent(app, &mail).await;
        mail
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Waits until the shop has recorded `mail` as sent. A mail leaves inside the transaction
/// that makes its link (so a mail that fails to leave leaves no working link): until that
/// commits, a reader quicker than any person would find the link not working yet.
async fn wait_until_recorded_sent(app: &TestApp, mail: &str) {
    let message_id = mail
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: <"))
        .and_then(|rest| rest.split('@').next())
        .unwrap_or_else(|| panic!("no Message-ID in:\n{mail}"))
        .to_owned();
    wait_until(30, "the mail recorded as sent", || {
        let message_id = message_id.clone();
        async move {
            app.db(move |conn| {
                mails::table
                    .filter(mails::message_id.eq(message_id))
                    .select(mails::status)
                    .first::<MailStatus>(conn)
                    .optional()
                    .unwrap()
            })
            .await
                == Some(MailStatus::Sent)
        }
    })
    .await;
}

/// A raw message with its quoted-printable soft line breaks and `=3D` undone, so a link reads
/// as one piece.
fn readable(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}
