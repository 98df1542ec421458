//! How a mail leaves: SMTP (lettre, `BOOKSTORE_SMTP_URL`), or, without a mail server, an
//! `.eml` file per mail in the outbox folder, so the app runs with nothing else installed.

use std::{io::Write, path::PathBuf, time::Duration};

use lettre::{Message, SmtpTransport, Transport as _};

/// A mail server that does not answer within this long is taken as down: the attempt fails
/// and the task retries later (the engine's backoff), without holding a thread for a minute.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub enum Transport {
    Smtp(SmtpTransport),
    /// The outbox folder.
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the URL: it may carry a password.
            Transport::Smtp(_) => f.write_str("Smtp"),
            Transport::Files(dir) => write!(f, "Files({})", dir.display()),
        }
    }
}

impl Transport {
    /// `smtp://host:port` (plain), `?tls=required` (STARTTLS), `smtps://` (TLS); user and
    /// password in the URL log in (AUTH).
    pub fn smtp(url: &str) -> Result<Transport, lettre::transport::smtp::Error> {
        Ok(Transport::Smtp(
            SmtpTransport::from_url(url)?
                .timeout(Some(SMTP_TIMEOUT))
                .build(),
        ))
    }

    /// Hands the message over. `file_stem` names its file in the outbox folder: the same mail
    /// sent again overwrites its own file (written aside, then renamed), never a second one.
    pub fn send(&self, message: &Message, file_stem: &str) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .map(drop)
                .map_err(|err| format!("the mail server refused or did not answer: {err}")),
            Transport::Files(dir) => {
                let path = dir.join(format!("{file_stem}.eml"));
                write_file(dir, &path, &message.formatted())
                    .map_err(|err| format!("writing {}: {err}", path.display()))?;
                tracing::info!(
                    path = %path.display(),
                    "no mail server (BOOKSTORE_SMTP_URL): mail written to {}",
                    path.display()
                );
                Ok(())
            }
        }
    }
}

fn write_file(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension("eml.partial");
    // 0600: a reset mail holds a working link.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}
