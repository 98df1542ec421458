//! Mail transport: what a mail is to the shop (its kinds and statuses, as text in the
//! database) and how it leaves (SMTP through lettre, or `.eml` files in the outbox folder when
//! no mail server is configured), with the [`Mailer`] that holds the settings. A leaf under
//! the domain and the engine: it names neither. Queueing a mail (a row of the outbox, written
//! in the transaction that decides to send it) is the domain's (`domain::outbox`); composing
//! and sending each row once is the `send_mail` program's (`programs::mail`).

mod kinds;
mod transport;

use lettre::message::Mailbox;

use crate::config::Config;

pub use kinds::{MailKind, MailStatus};
pub use transport::Transport;

/// Everything a mail needs from the settings: who it is from, where its links point, and how
/// it leaves. Cheap to clone (the SMTP transport shares its settings).
#[derive(Clone)]
pub struct Mailer {
    /// `BOOKSTORE_MAIL_FROM`.
    pub from: Mailbox,
    /// `BOOKSTORE_PUBLIC_URL` without its trailing slash: links are `{public_url}/path`,
    /// never built from a request's Host header.
    pub public_url: String,
    pub transport: Transport,
}

impl Mailer {
    /// From the validated configuration (`Config::from_env` checked each value).
    pub fn from_config(config: &Config) -> Mailer {
        let from = config
            .mail_from
            .parse()
            .unwrap_or_else(|_| Mailbox::new(None, "bookstore@localhost".parse().expect("valid")));
        let transport = match &config.smtp_url {
            Some(url) => Transport::smtp(&url.0).unwrap_or_else(|err| {
                tracing::warn!("BOOKSTORE_SMTP_URL: {err}; mails go to the outbox folder");
                Transport::Files(config.outbox_dir())
            }),
            None => Transport::Files(config.outbox_dir()),
        };
        Mailer {
            from,
            public_url: config.public_url(),
            transport,
        }
    }

    /// A full link to a path of the shop (`/orders/7` -> `https://shop.example/orders/7`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The domain Message-IDs are made in: the From address's.
    pub fn message_id_domain(&self) -> &str {
        self.from.email.domain()
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .field("transport", &self.transport)
            .finish()
    }
}
