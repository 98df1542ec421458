//! Composing a mail from its outbox row: each kind fills its two templates (plain text and
//! HTML) from the row's data and the database. Links start with the public URL. Secrets (a
//! reset link's token, a confirmation link's) are made here, in the sending transaction: if
//! the mail does not leave, they roll back with it.

use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use lettre::{
    Message,
    message::{Mailbox, MultiPart},
};
use serde::Deserialize;

use crate::{
    audit::{Actor, AuditContext},
    domain::{
        accounts::{
            Login, User, email, find_user,
            resets::{self, LinkIssuer},
        },
        orders,
        outbox::MailRow,
    },
    ids::{BookId, EmailConfirmationId, OrderId, TaskId},
    mail::{MailKind, Mailer},
};

/// Why a mail was not composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Nothing to send any more (the order or account is gone, the request was used): the
    /// mail is given up on, not retried.
    #[error("not sent: {0}")]
    Pointless(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// The parts of a composed mail.
pub struct Parts {
    pub to_name: Option<String>,
    pub text: String,
    pub html: String,
}

/// Fills `row`'s templates; `task` is the sending task (who the audit log says made a link).
pub fn parts(
    conn: &mut PgConnection,
    mailer: &Mailer,
    row: &MailRow,
    task: TaskId,
) -> Result<Parts, ComposeError> {
    let user = match row.user_id {
        Some(id) => find_user(conn, id)?,
        None => None,
    };
    let name = user.as_ref().map(|user| user.display_name.clone());
    let greeting = name.clone().unwrap_or_else(|| "there".to_owned());
    let needs_user = || {
        user.clone()
            .ok_or_else(|| ComposeError::Pointless("the account no longer exists".into()))
    };
    let start = Start {
        mailer,
        row,
        name: greeting,
    };
    let (text, html) = match row.kind {
        MailKind::OrderConfirmation => order(conn, start, &needs_user()?)?,
        MailKind::PasswordReset => reset(conn, start, &needs_user()?, task)?,
        MailKind::EmailConfirmation => confirmation(conn, start, &needs_user()?)?,
        MailKind::LowStock => low_stock(start)?,
    };
    Ok(Parts {
        to_name: name,
        text,
        html,
    })
}

/// What each kind is filled from.
struct Start<'a> {
    mailer: &'a Mailer,
    row: &'a MailRow,
    /// Whom the mail greets.
    name: String,
}

/// The message itself: From, To, Subject and Message-ID in headers that cannot carry a line
/// break (control characters are dropped before lettre encodes what is left), and the two
/// parts as `multipart/alternative`.
pub fn message(mailer: &Mailer, row: &MailRow, parts: Parts) -> Result<Message, ComposeError> {
    let address = row.recipient.parse().map_err(|err| {
        ComposeError::Pointless(format!("{:?} is no address: {err}", row.recipient))
    })?;
    let to = Mailbox::new(parts.to_name.as_deref().map(header_text), address);
    Message::builder()
        .message_id(Some(format!(
            "<{}@{}>",
            row.message_id,
            mailer.message_id_domain()
        )))
        .from(mailer.from.clone())
        .to(to)
        .subject(header_text(&row.subject))
        .multipart(MultiPart::alternative_plain_html(parts.text, parts.html))
        .map_err(|err| ComposeError::Pointless(format!("the message cannot be built: {err}")))
}

/// Text fit for a header: no control characters (CR and LF above all: a line break would
/// start a header of the sender's choosing), spaces collapsed, at most 200 characters.
pub fn header_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::domain::collapse_spaces(&cleaned)
        .chars()
        .take(200)
        .collect()
}

fn render(text: impl Template, html: impl Template) -> Result<(String, String), ComposeError> {
    let failed = |err: askama::Error| ComposeError::Pointless(format!("template: {err}"));
    Ok((
        text.render().map_err(failed)?,
        html.render().map_err(failed)?,
    ))
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub struct OrderMail {
    name: String,
    order_id: OrderId,
    placed_at: String,
    lines: Vec<OrderMailLine>,
    total: String,
    link: String,
}

pub struct OrderMailLine {
    title: String,
    quantity: i32,
    unit_price: String,
    total: String,
}

#[derive(Template)]
#[template(path = "mail/order_confirmation.txt")]
struct OrderText<'a> {
    mail: &'a OrderMail,
}

#[derive(Template)]
#[template(path = "mail/order_confirmation.html")]
struct OrderHtml<'a> {
    mail: &'a OrderMail,
}

fn order(
    conn: &mut PgConnection,
    start: Start,
    user: &User,
) -> Result<(String, String), ComposeError> {
    let Start { mailer, row, name } = start;
    let order: OrderId = data_id(row, "order")?;
    let detail = orders::order_of(conn, user.id, order)?
        .ok_or_else(|| ComposeError::Pointless(format!("order {order} no longer exists")))?;
    let mail = OrderMail {
        name,
        order_id: detail.id,
        placed_at: when(detail.placed_at),
        lines: detail
            .lines
            .iter()
            .map(|line| OrderMailLine {
                title: line.title.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price.to_string(),
                total: line.line_total().to_string(),
            })
            .collect(),
        total: detail.total.to_string(),
        link: mailer.link(&format!("/orders/{}", detail.id)),
    };
    render(OrderText { mail: &mail }, OrderHtml { mail: &mail })
}

pub struct ResetMail {
    name: String,
    login: String,
    link: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct ResetText<'a> {
    mail: &'a ResetMail,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct ResetHtml<'a> {
    mail: &'a ResetMail,
}

/// Makes the link now (earlier links of the account stop working): the token exists only in
/// this mail, never in the outbox or the task's parameters.
fn reset(
    conn: &mut PgConnection,
    start: Start,
    user: &User,
    task: TaskId,
) -> Result<(String, String), ComposeError> {
    let Start { mailer, name, .. } = start;
    let login = Login::parse(&user.login).map_err(ComposeError::Pointless)?;
    let context = AuditContext::new(Actor::Task(task), None);
    let link =
        resets::create_link(conn, &context, &login, LinkIssuer::Mail).map_err(|err| match err {
            resets::CreateLinkError::Database(err) => ComposeError::Database(err),
            other => ComposeError::Pointless(other.to_string()),
        })?;
    let mail = ResetMail {
        name,
        login: user.login.clone(),
        link: mailer.link(&link.path()),
        expires: when(link.expires_at),
    };
    render(ResetText { mail: &mail }, ResetHtml { mail: &mail })
}

pub struct ConfirmationMail {
    name: String,
    login: String,
    email: String,
    link: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "mail/email_confirmation.txt")]
struct ConfirmationText<'a> {
    mail: &'a ConfirmationMail,
}

#[derive(Template)]
#[template(path = "mail/email_confirmation.html")]
struct ConfirmationHtml<'a> {
    mail: &'a ConfirmationMail,
}

fn confirmation(
    conn: &mut PgConnection,
    start: Start,
    user: &User,
) -> Result<(String, String), ComposeError> {
    let Start { mailer, row, name } = start;
    let confirmation: EmailConfirmationId = data_id(row, "confirmation")?;
    let (token, expires_at) = email::issue_token(conn, confirmation)?.ok_or_else(|| {
        ComposeError::Pointless("the address was confirmed already or its request expired".into())
    })?;
    let mail = ConfirmationMail {
        name,
        login: user.login.clone(),
        email: row.recipient.clone(),
        link: mailer.link(&format!("/account/email/{}", token.to_text())),
        expires: when(expires_at),
    };
    render(
        ConfirmationText { mail: &mail },
        ConfirmationHtml { mail: &mail },
    )
}

/// What the low-stock digest put in its mails' data: the list as it was when the digest ran.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct LowStockData {
    pub threshold: i32,
    pub date: String,
    pub books: Vec<LowStockBook>,
    /// Books beyond those listed.
    pub more: i64,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct LowStockBook {
    pub id: BookId,
    pub title: String,
    pub stock: i32,
}

pub struct LowStockMail {
    name: String,
    threshold: i32,
    date: String,
    books: Vec<LowStockLine>,
    more: i64,
    books_link: String,
}

pub struct LowStockLine {
    title: String,
    stock: i32,
    link: String,
}

#[derive(Template)]
#[template(path = "mail/low_stock.txt")]
struct LowStockText<'a> {
    mail: &'a LowStockMail,
}

#[derive(Template)]
#[template(path = "mail/low_stock.html")]
struct LowStockHtml<'a> {
    mail: &'a LowStockMail,
}

fn low_stock(start: Start) -> Result<(String, String), ComposeError> {
    let Start { mailer, row, name } = start;
    let data: LowStockData = data(row)?;
    let mail = LowStockMail {
        name,
        threshold: data.threshold,
        date: data.date,
        books: data
            .books
            .into_iter()
            .map(|book| LowStockLine {
                link: mailer.link(&format!("/books/{}", book.id)),
                title: book.title,
                stock: book.stock,
            })
            .collect(),
        more: data.more,
        books_link: mailer.link("/admin/books"),
    };
    render(LowStockText { mail: &mail }, LowStockHtml { mail: &mail })
}

fn data<T: serde::de::DeserializeOwned>(row: &MailRow) -> Result<T, ComposeError> {
    from_data(row.data.clone())
}

/// The id the row's data name under `key` (an order's mail has `{"order": 7}`).
fn data_id<T: serde::de::DeserializeOwned>(row: &MailRow, key: &str) -> Result<T, ComposeError> {
    from_data(row.data.get(key).cloned().unwrap_or_default())
}

fn from_data<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ComposeError> {
    serde_json::from_value(value)
        .map_err(|err| ComposeError::Pointless(format!("its data do not fit: {err}")))
}
