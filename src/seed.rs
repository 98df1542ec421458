//! The demo catalog: the 10,000 real books of goodbooks-10k (CC BY-SA 4.0, see
//! `tests/data/goodbooks-10k/README.md`), compiled into the binary and loaded into an empty
//! catalog at start; `BOOKSTORE_SEED_DEMO=small` loads its first 300 only.

use anyhow::Context;
use diesel::prelude::*;

use crate::{
    config::SeedDemo,
    db::schema::books,
    domain::{
        accounts::{self, DisplayName, Login, NewPassword, Role, email::EmailAddress},
        catalog::{
            bulk::fill_empty_catalog,
            goodbooks::{CatalogEntry, GoodbooksRecord},
        },
    },
};

/// Demo accounts for local use: (login, name, role). Their passwords are random, made when the
/// accounts are created, and shown once (see `startup::prepare`): nothing is published.
/// Turn demo data off (`BOOKSTORE_SEED_DEMO=false`) anywhere real.
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 2] = [
    ("alice", "Alice Reader", Role::Customer),
    ("staff", "Sam Staff", Role::Staff),
];

/// A demo account this start created, with its password (to show once).
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub login: String,
    pub password: String,
    pub role: Role,
}

/// 24 characters from a 32-letter alphabet without look-alikes: 120 random bits.
fn random_password() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| u.as_bytes().to_vec())
        .collect();
    bytes
        .iter()
        .take(24)
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect()
}

/// Creates the demo accounts that do not exist yet, each with a new random password; returns
/// those it created.
pub fn load_demo_accounts(conn: &mut PgConnection) -> anyhow::Result<Vec<DemoAccount>> {
    let mut created = Vec::new();
    for (login, name, role) in DEMO_ACCOUNTS {
        if accounts::find_by_login(conn, login)?.is_some() {
            continue;
        }
        let password = random_password();
        let parsed_login = Login::parse(login).map_err(anyhow::Error::msg)?;
        let name = DisplayName::parse(name).map_err(anyhow::Error::msg)?;
        let parsed_password =
            NewPassword::parse(&password, &[login, name.as_str()]).map_err(anyhow::Error::msg)?;
        match accounts::register(conn, &parsed_login, &name, &parsed_password, role) {
            Ok(user) => {
                // An example address, confirmed: the demo's mails land in the outbox folder.
                let address = EmailAddress::parse(&format!("{login}@example.com"))
                    .map_err(anyhow::Error::msg)?;
                accounts::email::set_confirmed(conn, user.id, &address)?;
                created.push(DemoAccount {
                    login: login.to_owned(),
                    password,
                    role,
                });
            }
            // Another node created it meanwhile.
            Err(accounts::RegisterError::LoginTaken) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(created)
}

/// goodbooks-10k's `books.csv`, unmodified: the same file the import test and the benchmarks
/// read. 3 MB in the binary, so that a release binary started anywhere has its catalog.
const GOODBOOKS_CSV: &str = include_str!("../tests/data/goodbooks-10k/books.csv");

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub books_inserted: usize,
}

/// Loads the demo catalog (all of it, or the first 300 books for `small`) unless the shop
/// already has books: once it has, the catalog is the staff's to manage, and a restart must
/// neither duplicate nor resurrect anything.
pub fn load_demo_catalog(conn: &mut PgConnection, seed: SeedDemo) -> anyhow::Result<SeedReport> {
    let has_books: bool =
        diesel::select(diesel::dsl::exists(books::table.select(books::id))).get_result(conn)?;
    if has_books || seed == SeedDemo::Off {
        return Ok(SeedReport::default());
    }
    let entries = demo_entries(seed.book_limit())?;
    let books_inserted = conn.transaction(|conn| fill_empty_catalog(conn, &entries))?;
    Ok(SeedReport { books_inserted })
}

/// The parsed demo rows, the first `limit` of them (`None`: all). Every row of the file must
/// parse: a bad one is a bug.
pub fn demo_entries(limit: Option<usize>) -> anyhow::Result<Vec<CatalogEntry>> {
    let mut reader = csv::Reader::from_reader(GOODBOOKS_CSV.as_bytes());
    reader
        .deserialize::<GoodbooksRecord>()
        .take(limit.unwrap_or(usize::MAX))
        .enumerate()
        .map(|(index, record)| {
            let line = index + 2;
            let record = record.with_context(|| format!("books.csv line {line}"))?;
            CatalogEntry::try_from(record)
                .map_err(|reason| anyhow::anyhow!("books.csv line {line}: {reason}"))
        })
        .collect()
}
