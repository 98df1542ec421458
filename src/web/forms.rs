//! Per-field validation messages for re-rendering a form with the user's input kept, and the
//! form of a button that sends nothing but its CSRF token.

/// A form with no fields of its own (a button: cancel, log out, revoke).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

use actix_web::web;

use crate::{domain::accounts::NewPassword, web::error::WebError};

/// Judges a new password (zxcvbn: milliseconds of CPU) on the blocking pool, never on a web
/// worker. The inner result is the parse's, for [`FieldErrors::check`].
pub async fn judge_new_password(
    password: &str,
    user_inputs: &[&str],
) -> Result<Result<NewPassword, String>, WebError> {
    let password = password.to_owned();
    let inputs: Vec<String> = user_inputs
        .iter()
        .map(|input| (*input).to_owned())
        .collect();
    web::block(move || {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        NewPassword::parse(&password, &inputs)
    })
    .await
    .map_err(WebError::internal)
}

#[derive(Debug, Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Records the error of a parse, if any, and passes the value on.
    pub fn check<T>(&mut self, field: &'static str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|message| self.add(field, message)).ok()
    }

    /// The message for `field`, for the template.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `aria-describedby` of `field`'s input: its help (`{field}-help`, when the form shows
    /// one) and its error (`{field}-error`, when it has one), so a screen reader reads both
    /// with the field. `None` when there is nothing to point at.
    pub fn described_by(&self, field: &str, has_help: bool) -> Option<String> {
        described_by(field, has_help, self.get(field).is_some())
    }
}

/// The `aria-describedby` of the input with id `input`, whose help and error (when shown) have
/// the ids `{input}-help` and `{input}-error`.
pub fn described_by(input: &str, has_help: bool, has_error: bool) -> Option<String> {
    let ids: Vec<String> = [
        has_help.then(|| format!("{input}-help")),
        has_error.then(|| format!("{input}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_described_by_its_help_and_its_error() {
        let mut errors = FieldErrors::default();
        errors.add("login", "Taken.");
        assert_eq!(
            errors.described_by("login", true).as_deref(),
            Some("login-help login-error")
        );
        assert_eq!(
            errors.described_by("login", false).as_deref(),
            Some("login-error")
        );
        assert_eq!(
            errors.described_by("name", true).as_deref(),
            Some("name-help")
        );
        assert_eq!(errors.described_by("name", false), None);
    }
}

/// A day typed as `2026-11-25`, in years PostgreSQL and people use (1 to 9999): chrono alone
/// also reads `-5000-01-01`, which the database then refuses.
pub fn parse_day(text: &str) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .filter(|day| (1..=9999).contains(&day.year()))
}

/// A "from"/"to" pair of days as UTC instants: from the first day's midnight, until (not
/// including) the midnight after the last day, so "to" includes its whole day.
pub fn day_bounds(
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    let midnight = |day: chrono::NaiveDate| day.and_time(chrono::NaiveTime::MIN).and_utc();
    (
        from.map(midnight),
        to.and_then(|day| day.succ_opt()).map(midnight),
    )
}

#[cfg(test)]
mod day_tests {
    #[test]
    fn only_ordinary_years_are_days() {
        assert!(super::parse_day("2026-11-25").is_some());
        for text in [
            "-5000-01-01",
            "0000-01-01",
            "12026-01-01",
            "2026-02-30",
            "yesterday",
        ] {
            assert!(super::parse_day(text).is_none(), "{text}");
        }
    }
}
