//! Engine v3's options as staff type them: the run form's "Advanced" section (priority, a
//! unique key and how long it stays taken, tasks to wait for) and a program's options form
//! (default priority, limits). Each parses into `queueing`'s types or gives a message per
//! field, so a bad value is named next to its field and never reaches the database as a 500.
//! The SQL functions check the same ranges again: psql and the API go through them too.

use std::collections::{BTreeMap, HashMap};

use chrono::Duration;
use serde::Deserialize;

use crate::{
    ids::TaskId,
    tasks::{
        queueing::{ProgramOptions, RunOptions},
        refusal::FieldProblem,
    },
    web::forms::FieldErrors,
};

/// Priorities run from -100 to 100 (higher first), as `run_program` and the claim know them.
const PRIORITY: std::ops::RangeInclusive<i32> = -100..=100;
const MAX_RUNNING: std::ops::RangeInclusive<i32> = 1..=10_000;
const PER_MINUTE: std::ops::RangeInclusive<i32> = 1..=100_000;
const UNIQUE_KEY_MAX_CHARS: usize = 200;
/// How long a key may stay taken after its task ended (the SQL function's own bound).
const UNIQUE_FOR_MAX_DAYS: i64 = 366;
/// A task waits for at most this many others.
const AFTER_MAX: usize = 1_000;

/// The unit of "unique for".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
}

impl Unit {
    pub const ALL: [Unit; 3] = [Unit::Minutes, Unit::Hours, Unit::Days];

    pub fn key(self) -> &'static str {
        match self {
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
        }
    }

    fn parse(key: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|unit| unit.key() == key.trim())
    }

    fn times(self, count: i64) -> Duration {
        match self {
            Unit::Minutes => Duration::minutes(count),
            Unit::Hours => Duration::hours(count),
            Unit::Days => Duration::days(count),
        }
    }
}

/// The run form's advanced fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdvancedInput {
    pub priority: String,
    pub unique_key: String,
    pub unique_for: String,
    pub unique_for_unit: String,
    pub after: String,
}

/// A whole number in `range`, or `None` when empty.
fn number_in(
    text: &str,
    range: std::ops::RangeInclusive<i32>,
    message: &str,
) -> Result<Option<i32>, String> {
    match text.trim() {
        "" => Ok(None),
        value => match value.parse::<i32>() {
            Ok(number) if range.contains(&number) => Ok(Some(number)),
            _ => Err(message.to_owned()),
        },
    }
}

/// A priority as both forms take it (empty: the program's own, or none).
fn priority(text: &str) -> Result<Option<i32>, String> {
    number_in(
        text,
        PRIORITY,
        "Priority must be a whole number from -100 to 100 (higher runs first).",
    )
}

/// "12, 13 #14": task ids, in the order given, each once.
fn task_ids(text: &str) -> Result<Vec<TaskId>, String> {
    if text.chars().count() > AFTER_MAX * 21 {
        return Err(format!("At most {AFTER_MAX} tasks can be waited for."));
    }
    let mut ids: Vec<TaskId> = Vec::new();
    for word in text.split(|c: char| c == ',' || c.is_whitespace()) {
        let word = word.trim().trim_start_matches('#');
        if word.is_empty() {
            continue;
        }
        match word.parse::<i64>() {
            Ok(id) if id > 0 => {
                if !ids.contains(&TaskId(id)) {
                    ids.push(TaskId(id));
                }
            }
            _ => {
                let shown: String = word.chars().take(20).collect();
                return Err(format!(
                    "“{shown}” is not a task number: give task ids separated by commas, like 12, 13."
                ));
            }
        }
    }
    if ids.len() > AFTER_MAX {
        return Err(format!("At most {AFTER_MAX} tasks can be waited for."));
    }
    Ok(ids)
}

fn unique_key(text: &str) -> Result<Option<String>, String> {
    let key = text.trim();
    if key.is_empty() {
        Ok(None)
    } else if key.chars().any(char::is_control) {
        Err("The unique key cannot contain control characters.".to_owned())
    } else if key.chars().count() > UNIQUE_KEY_MAX_CHARS {
        Err(format!(
            "The unique key must be at most {UNIQUE_KEY_MAX_CHARS} characters."
        ))
    } else {
        Ok(Some(key.to_owned()))
    }
}

impl AdvancedInput {
    /// The advanced fields of a submitted run form (the parameters are `param_*`).
    pub fn from_form(form: &HashMap<String, String>) -> AdvancedInput {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        AdvancedInput {
            priority: field("priority"),
            unique_key: field("unique_key"),
            unique_for: field("unique_for"),
            unique_for_unit: field("unique_for_unit"),
            after: field("after"),
        }
    }

    /// Something was typed in the section: it is shown open.
    pub fn is_used(&self) -> bool {
        [
            &self.priority,
            &self.unique_key,
            &self.unique_for,
            &self.after,
        ]
        .iter()
        .any(|value| !value.trim().is_empty())
    }

    pub fn is_unit(&self, unit: &Unit) -> bool {
        match Unit::parse(&self.unique_for_unit) {
            Some(chosen) => chosen == *unit,
            None => *unit == Unit::Hours,
        }
    }

    pub fn parse(&self) -> Result<RunOptions, FieldErrors> {
        let mut errors = FieldErrors::default();
        let priority = errors.check("priority", priority(&self.priority));
        let unique_key = errors.check("unique_key", unique_key(&self.unique_key));
        let has_key = matches!(unique_key, Some(Some(_)));
        let unique_for = errors.check("unique_for", self.unique_for(has_key));
        let after = errors.check("after", task_ids(&self.after));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RunOptions {
            priority: priority.flatten(),
            unique_key: unique_key.flatten(),
            unique_for: unique_for.flatten(),
            after: after.unwrap_or_default(),
        })
    }

    fn unique_for(&self, has_key: bool) -> Result<Option<Duration>, String> {
        let count = match self.unique_for.trim() {
            "" => return Ok(None),
            value => value.parse::<i64>().ok().filter(|count| *count >= 0),
        };
        let unit = Unit::parse(&self.unique_for_unit).ok_or("Choose minutes, hours or days.")?;
        let duration = count
            .map(|count| unit.times(count.min(UNIQUE_FOR_MAX_DAYS * 24 * 60 + 1)))
            .filter(|duration| *duration <= Duration::days(UNIQUE_FOR_MAX_DAYS))
            .ok_or(format!(
                "“Unique for” must be a whole number of {}, up to {UNIQUE_FOR_MAX_DAYS} days.",
                unit.key()
            ))?;
        if !has_key {
            return Err("Give a unique key too: this is how long that key stays taken.".into());
        }
        Ok(Some(duration))
    }
}

/// The run form's advanced section: what was typed, and what was wrong with it.
#[derive(Debug)]
pub struct AdvancedSection {
    pub input: AdvancedInput,
    pub errors: FieldErrors,
    /// The program's default priority, shown where the field is empty.
    pub default_priority: i32,
}

impl AdvancedSection {
    pub fn new(input: AdvancedInput, default_priority: i32) -> AdvancedSection {
        AdvancedSection {
            input,
            errors: FieldErrors::default(),
            default_priority,
        }
    }

    pub fn units(&self) -> [Unit; 3] {
        Unit::ALL
    }

    /// Opened when something is typed in it or wrong with it.
    pub fn open(&self) -> bool {
        self.input.is_used() || !self.errors.is_empty()
    }

    /// Takes the messages a refusal gave for the advanced fields (the rest are parameters').
    pub fn take_refusals(&mut self, fields: &mut BTreeMap<String, FieldProblem>) {
        for (name, label) in [
            ("priority", "Priority"),
            ("unique_key", "The unique key"),
            ("unique_for", "“Unique for”"),
            ("after", "It cannot wait for that:"),
        ] {
            if let Some(problem) = fields.remove(name) {
                self.errors.add(name, problem.sentence(label));
            }
        }
    }
}

/// A program's options form, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OptionsInput {
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub max_running: String,
    #[serde(default)]
    pub per_minute: String,
}

impl OptionsInput {
    /// The form filled with the program's options now.
    pub fn of(options: ProgramOptions) -> OptionsInput {
        let text = |limit: Option<i32>| limit.map(|n| n.to_string()).unwrap_or_default();
        OptionsInput {
            priority: options.priority.to_string(),
            max_running: text(options.max_running),
            per_minute: text(options.per_minute),
        }
    }

    pub fn parse(&self) -> Result<ProgramOptions, FieldErrors> {
        let mut errors = FieldErrors::default();
        let priority = errors.check("priority", priority(&self.priority));
        let max_running = errors.check(
            "max_running",
            number_in(
                &self.max_running,
                MAX_RUNNING,
                "At most running must be a whole number from 1 to 10000; leave it empty for no limit.",
            ),
        );
        let per_minute = errors.check(
            "per_minute",
            number_in(
                &self.per_minute,
                PER_MINUTE,
                "Starts a minute must be a whole number from 1 to 100000; leave it empty for no limit.",
            ),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ProgramOptions {
            priority: priority.flatten().unwrap_or(0),
            max_running: max_running.flatten(),
            per_minute: per_minute.flatten(),
        })
    }
}

/// "one at a time", "at most 4 at once" or "no limit".
pub fn running_limit(max_running: &Option<i32>) -> String {
    match max_running {
        None => "no limit".to_owned(),
        Some(1) => "one at a time".to_owned(),
        Some(n) => format!("at most {n} at once"),
    }
}

/// "60 starts a minute" or "no limit".
pub fn rate_limit(per_minute: &Option<i32>) -> String {
    match per_minute {
        None => "no limit".to_owned(),
        Some(1) => "1 start a minute".to_owned(),
        Some(n) => format!("{n} starts a minute"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advanced(fields: &[(&str, &str)]) -> AdvancedInput {
        let form: HashMap<String, String> = fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        AdvancedInput::from_form(&form)
    }

    #[test]
    fn the_advanced_section_reads_what_staff_type() {
        let options = advanced(&[
            ("priority", " 10 "),
            ("unique_key", " order-42 "),
            ("unique_for", "2"),
            ("unique_for_unit", "hours"),
            ("after", "12, #13 12\n14"),
        ])
        .parse()
        .unwrap();
        assert_eq!(
            options,
            RunOptions {
                priority: Some(10),
                unique_key: Some("order-42".into()),
                unique_for: Some(Duration::hours(2)),
                after: vec![TaskId(12), TaskId(13), TaskId(14)],
            }
        );
        assert_eq!(advanced(&[]).parse().unwrap(), RunOptions::default());
        assert!(!advanced(&[("unique_for_unit", "hours")]).is_used());
    }

    #[test]
    fn each_bad_field_gets_its_own_message() {
        let errors = advanced(&[
            ("priority", "101"),
            ("unique_key", "a\u{85}b"),
            ("unique_for", "400"),
            ("unique_for_unit", "days"),
            ("after", "12, x"),
        ])
        .parse()
        .unwrap_err();
        for field in ["priority", "unique_key", "unique_for", "after"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        let errors = advanced(&[("unique_for", "5"), ("unique_for_unit", "weeks")])
            .parse()
            .unwrap_err();
        assert_eq!(
            errors.get("unique_for"),
            Some("Choose minutes, hours or days.")
        );
        let needs_key = advanced(&[("unique_for", "5"), ("unique_for_unit", "minutes")]);
        assert!(needs_key.parse().unwrap_err().get("unique_for").is_some());
        let long = "k".repeat(201);
        assert!(advanced(&[("unique_key", &long)]).parse().is_err());
        let huge = advanced(&[
            ("unique_key", "k"),
            ("unique_for", "99999999999999999"),
            ("unique_for_unit", "minutes"),
        ]);
        assert!(huge.parse().is_err());
        let many: Vec<String> = (1..=1001).map(|n| n.to_string()).collect();
        assert!(advanced(&[("after", &many.join(","))]).parse().is_err());
    }

    #[test]
    fn program_options_take_empty_limits_as_none() {
        let input = OptionsInput {
            priority: "5".into(),
            max_running: "".into(),
            per_minute: "60".into(),
        };
        assert_eq!(
            input.parse().unwrap(),
            ProgramOptions {
                priority: 5,
                max_running: None,
                per_minute: Some(60),
            }
        );
        assert_eq!(OptionsInput::of(input.parse().unwrap()), input);
        let bad = OptionsInput {
            priority: "high".into(),
            max_running: "0".into(),
            per_minute: "-1".into(),
        };
        let errors = bad.parse().unwrap_err();
        for field in ["priority", "max_running", "per_minute"] {
            assert!(errors.get(field).is_some(), "{field}");
        }
        assert_eq!(running_limit(&Some(1)), "one at a time");
        assert_eq!(running_limit(&None), "no limit");
    }
}
