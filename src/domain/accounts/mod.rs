//! Accounts: registration, log-in checks with throttling, roles, staff bootstrap.

pub mod devices;
pub mod email;
pub mod forgot;
pub mod login;
pub mod password;
pub mod resets;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use chrono::{DateTime, Utc};
use diesel::{prelude::*, result::DatabaseErrorKind};
use serde_json::json;

use crate::db::schema::users;
use crate::{
    audit::{self, Actor, AuditAction, AuditContext},
    ids::UserId,
};

use self::throttle::ThrottlePolicy;

pub use self::login::{LoginError, PasswordChangeError, change_password, log_in};
pub use self::password::{hash_password, verify_password};

/// A login name that passed the rules: trimmed, 3-32 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub fn parse(input: &str) -> Result<Login, String> {
        let login = input.trim();
        if login.chars().count() < 3 || login.chars().count() > 32 {
            return Err("A login has 3 to 32 characters.".into());
        }
        if !login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("Use only letters, digits, dots, dashes and underscores.".into());
        }
        Ok(Login(login.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name shown in the header: trimmed, 1-100 characters, no control characters (the web's
/// input guard refuses them already; the type holds for every other caller too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<DisplayName, String> {
        let name = crate::domain::collapse_spaces(input);
        if name.chars().any(char::is_control) {
            return Err("A name cannot contain control characters.".into());
        }
        match name.chars().count() {
            0 => Err("Tell us the name to show.".into()),
            1..=100 => Ok(DisplayName(name)),
            _ => Err("A name has at most 100 characters.".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 1,024 characters (hashing stays cheap), and not guessable: zxcvbn,
/// which knows common passwords, words, names, dates, keyboard patterns and what the person
/// told us about themselves (`user_inputs`: their login and name), must score it at least 3 of
/// 4 ("safely unguessable: moderate protection from offline attacks").
#[derive(Clone)]
pub struct NewPassword(String);

/// The lowest zxcvbn score accepted.
const MIN_PASSWORD_SCORE: u8 = 3;

impl NewPassword {
    pub fn parse(input: &str, user_inputs: &[&str]) -> Result<NewPassword, String> {
        match input.chars().count() {
            0..=7 => return Err("A password has at least 8 characters.".into()),
            8..=1024 => {}
            _ => return Err("A password has at most 1,024 characters.".into()),
        }
        // Judging the first 100 characters is enough (and keeps the estimate fast).
        let judged: String = input.chars().take(100).collect();
        let estimate = zxcvbn::zxcvbn(&judged, user_inputs);
        if u8::from(estimate.score()) >= MIN_PASSWORD_SCORE {
            return Ok(NewPassword(input.to_owned()));
        }
        let mut message = String::from("This password is too easy to guess");
        match estimate.feedback().and_then(|feedback| feedback.warning()) {
            Some(warning) => message.push_str(&format!(": {warning}")),
            None => message.push('.'),
        }
        if let Some(feedback) = estimate.feedback() {
            for suggestion in feedback.suggestions() {
                message.push_str(&format!(" {suggestion}"));
            }
        }
        Err(message)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Staff => "staff",
        }
    }

    fn from_db(text: &str) -> Role {
        // The CHECK constraint allows only these two.
        if text == "staff" {
            Role::Staff
        } else {
            Role::Customer
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub login: String,
    pub display_name: String,
    pub role: Role,
}

impl User {
    pub fn is_staff(&self) -> bool {
        self.role == Role::Staff
    }

    /// Who this user is in the audit log when they act.
    pub fn actor(&self) -> Actor {
        if self.is_staff() {
            Actor::Staff(self.login.clone())
        } else {
            Actor::Customer(self.login.clone())
        }
    }
}

type UserColumns = (users::id, users::login, users::display_name, users::role);
const USER_COLUMNS: UserColumns = (users::id, users::login, users::display_name, users::role);

fn user_from_row((id, login, display_name, role): (UserId, String, String, String)) -> User {
    User {
        id,
        login,
        display_name,
        role: Role::from_db(&role),
    }
}

pub fn find_user(conn: &mut PgConnection, id: UserId) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(USER_COLUMNS)
        .first(conn)
        .optional()
        .map(|row| row.map(user_from_row))
}

/// The user with this login (any case) and their password hash.
pub fn find_by_login(conn: &mut PgConnection, login: &str) -> QueryResult<Option<(User, String)>> {
    users::table
        .filter(lower(users::login).eq(login.to_lowercase()))
        .select((USER_COLUMNS, users::password_hash))
        .first(conn)
        .optional()
        .map(|row| row.map(|(user, hash)| (user_from_row(user), hash)))
}

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("That login is taken.")]
    LoginTaken,
    /// This address created too many accounts lately.
    #[error("Too many accounts were created from your network lately.")]
    Throttled { until: DateTime<Utc> },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Hashing(#[from] anyhow::Error),
}

impl From<email::EmailChangeError> for RegisterError {
    fn from(err: email::EmailChangeError) -> Self {
        match err {
            email::EmailChangeError::Database(err) => RegisterError::Database(err),
            // A new account has no address and no earlier requests.
            other => RegisterError::Hashing(anyhow::anyhow!(other)),
        }
    }
}

/// Creates an account. The unique index on `lower(login)` decides races between two sign-ups.
pub fn register(
    conn: &mut PgConnection,
    login: &Login,
    display_name: &DisplayName,
    password: &NewPassword,
    role: Role,
) -> Result<User, RegisterError> {
    let hash = hash_password(password.as_str())?;
    insert_user(conn, login, display_name, hash, role)
}

fn insert_user(
    conn: &mut PgConnection,
    login: &Login,
    display_name: &DisplayName,
    hash: String,
    role: Role,
) -> Result<User, RegisterError> {
    diesel::insert_into(users::table)
        .values((
            users::login.eq(login.as_str()),
            users::display_name.eq(display_name.as_str()),
            users::password_hash.eq(hash),
            users::role.eq(role.as_str()),
        ))
        .returning(USER_COLUMNS)
        .get_result(conn)
        .map(user_from_row)
        .map_err(|err| match err {
            diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                RegisterError::LoginTaken
            }
            other => other.into(),
        })
}

/// What a visitor signs up with.
pub struct SignUp {
    pub login: Login,
    pub display_name: DisplayName,
    pub password: NewPassword,
    pub email: email::EmailAddress,
}

/// A visitor signing up: [`register`] as a customer, at most
/// `policy.max_registrations_per_address` from one address in the throttle window, and a
/// confirmation link mailed to the address given (it becomes the account's when opened), in
/// one transaction.
pub fn sign_up(
    conn: &mut PgConnection,
    policy: &ThrottlePolicy,
    address: &str,
    form: &SignUp,
) -> Result<User, RegisterError> {
    // Hashing is slow: done before the transaction, so no lock waits on it.
    let hash = hash_password(form.password.as_str())?;
    conn.transaction(|conn| {
        if let Some(until) = throttle::registration_locked_until(conn, policy, address)? {
            return Err(RegisterError::Throttled { until });
        }
        let user = insert_user(conn, &form.login, &form.display_name, hash, Role::Customer)?;
        throttle::record_registration(conn, policy, address)?;
        let context = AuditContext::new(user.actor(), Some(address.to_owned()));
        email::request_change(conn, &context, &user, &form.email)?;
        Ok(user)
    })
}

pub fn change_display_name(
    conn: &mut PgConnection,
    user_id: UserId,
    name: &DisplayName,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::display_name.eq(name.as_str()))
        .execute(conn)?;
    Ok(())
}

/// `bookstore create-staff`: makes `login` a staff account, creating it when it does not exist
/// (then a password is required), and records it as done by `context`. An existing account
/// keeps its password unless one is given.
pub fn create_or_promote_staff(
    conn: &mut PgConnection,
    context: &AuditContext,
    login: &Login,
    password: Option<&NewPassword>,
) -> anyhow::Result<(User, bool)> {
    conn.transaction(|conn| {
        let (user, created) = promote_or_create(conn, login, password)?;
        let subject = format!("user {}", user.login);
        audit::record(
            conn,
            context,
            AuditAction::StaffGranted,
            &subject,
            json!({}),
        )?;
        Ok((user, created))
    })
}

fn promote_or_create(
    conn: &mut PgConnection,
    login: &Login,
    password: Option<&NewPassword>,
) -> anyhow::Result<(User, bool)> {
    if let Some((user, _)) = find_by_login(conn, login.as_str())? {
        let target = users::table.find(user.id);
        match password {
            Some(password) => diesel::update(target)
                .set((
                    users::role.eq(Role::Staff.as_str()),
                    users::password_hash.eq(hash_password(password.as_str())?),
                ))
                .execute(conn)?,
            None => diesel::update(target)
                .set(users::role.eq(Role::Staff.as_str()))
                .execute(conn)?,
        };
        let user = find_user(conn, user.id)?.expect("the user was just updated");
        return Ok((user, false));
    }
    let password = password.ok_or_else(|| {
        anyhow::anyhow!(
            "{} does not exist yet: a password is needed to create it",
            login.as_str()
        )
    })?;
    let name = DisplayName::parse(login.as_str()).map_err(anyhow::Error::msg)?;
    let user = register(conn, login, &name, password, Role::Staff)?;
    Ok((user, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_follow_the_rules() {
        assert_eq!(
            Login::parse("  alice.b-c_d ").unwrap().as_str(),
            "alice.b-c_d"
        );
        for bad in ["ab", "a b c", "émile", "x".repeat(33).as_str(), "bob!"] {
            assert!(Login::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_passwords_follow_the_rules() {
        assert_eq!(
            DisplayName::parse("  Ann   Lee ").unwrap().as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("bell\u{7}").is_err());
        assert!(DisplayName::parse(&"n".repeat(101)).is_err());
        assert!(NewPassword::parse("short", &[]).is_err());
        assert!(NewPassword::parse("a good long password", &[]).is_ok());
        assert!(NewPassword::parse(&"p".repeat(1025), &[]).is_err());
        for guessable in ["password", "12345678", "qwertyuiop", "iloveyou1"] {
            let refused = NewPassword::parse(guessable, &[]).unwrap_err();
            assert!(
                refused.starts_with("This password is too easy to guess"),
                "{guessable}: {refused}"
            );
        }
        // Built from the person's own login or name.
        assert!(NewPassword::parse("nora.reader2026", &["nora.reader", "Nora Reader"]).is_err());
        assert!(NewPassword::parse("SamStaff2026", &["samstaff", "Sam Staff"]).is_err());
    }
}
