//! Program schedules: "every 15 minutes" (also seconds, hours, days), "hourly at :05", "daily
//! at 03:00" (UTC), or a five-field cron line ("0 3 * * *"). Pages show a schedule in those
//! words whenever a cron line says the same ([`in_words`]).

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use croner::Cron;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<Cron>),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        if let ["every", count, unit] = words.as_slice() {
            let count: u64 = count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{count:?} is not a positive whole number"))?;
            let seconds = match unit.trim_end_matches('s') {
                "second" => 1,
                "minute" => 60,
                "hour" => 3600,
                "day" => 86_400,
                _ => {
                    return Err(format!(
                        "unknown unit {unit:?}: use seconds, minutes, hours or days"
                    ));
                }
            };
            return Ok(Schedule::Every(Duration::from_secs(count * seconds)));
        }
        if let Some(cron) = words_as_cron(&words) {
            return Cron::from_str(&cron)
                .map(|cron| Schedule::Cron(Box::new(cron)))
                .map_err(|err| format!("not a valid time: {err}"));
        }
        if words.len() == 5 {
            return Cron::from_str(text)
                .map(|cron| Schedule::Cron(Box::new(cron)))
                .map_err(|err| format!("not a valid cron line: {err}"));
        }
        Err("use \"every N minutes\" (or seconds, hours, days), \"hourly at :05\", \"daily at 03:00\" or a five-field cron line like \"0 3 * * *\"".into())
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => chrono::Duration::from_std(*period).ok().map(|p| after + p),
            Schedule::Cron(cron) => cron.find_next_occurrence(&after, false).ok(),
        }
    }
}

/// "hourly at :05" and "daily at 03:00" as the cron lines they stand for.
fn words_as_cron(words: &[&str]) -> Option<String> {
    let number = |text: &str, max: u32| {
        (text.len() == 2)
            .then(|| text.parse::<u32>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    match words {
        ["hourly", "at", minute] => {
            let minute = number(minute.strip_prefix(':')?, 59)?;
            Some(format!("{minute} * * * *"))
        }
        ["daily", "at", time] => {
            let (hour, minute) = time.split_once(':')?;
            Some(format!(
                "{} {} * * *",
                number(minute, 59)?,
                number(hour, 23)?
            ))
        }
        _ => None,
    }
}

/// A schedule as people read it: a cron line that fires hourly or daily at one time in those
/// words (which parse back to the same firings), anything else as written.
pub fn in_words(text: &str) -> String {
    let text = text.trim();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let number = |field: &str, max: u32| field.parse::<u32>().ok().filter(|n| *n <= max);
    match fields.as_slice() {
        [minute, "*", "*", "*", "*"] => {
            if let Some(minute) = number(minute, 59) {
                return format!("hourly at :{minute:02}");
            }
        }
        [minute, hour, "*", "*", "*"] => {
            if let (Some(minute), Some(hour)) = (number(minute, 59), number(hour, 23)) {
                return format!("daily at {hour:02}:{minute:02}");
            }
        }
        _ => {}
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_both_forms() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 10, 7, 0).unwrap();
        let every = Schedule::parse("every 15 minutes").unwrap();
        assert_eq!(
            every.next_after(start),
            Some(start + chrono::Duration::minutes(15))
        );
        let daily = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            daily.next_after(start),
            Some(Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap())
        );
        let hourly = Schedule::parse("hourly at :05").unwrap();
        assert_eq!(
            hourly.next_after(start),
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 11, 5, 0).unwrap())
        );
        let at_three = Schedule::parse("daily at 03:00").unwrap();
        assert_eq!(at_three.next_after(start), daily.next_after(start));
        for bad in [
            "daily at 25:00",
            "daily at 3pm",
            "hourly at :60",
            "every 0 minutes",
            "every 5 fortnights",
            "sometimes",
            "99 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_lines_read_in_words_where_they_can() {
        for (cron, words) in [
            ("0 3 * * *", "daily at 03:00"),
            ("30 14 * * *", "daily at 14:30"),
            ("5 * * * *", "hourly at :05"),
            ("*/15 * * * *", "*/15 * * * *"),
            ("every 15 minutes", "every 15 minutes"),
            ("0 3 * * 1", "0 3 * * 1"),
            ("0 3,15 * * *", "0 3,15 * * *"),
        ] {
            assert_eq!(in_words(cron), words, "{cron}");
            // What it says is a schedule that fires at the same times.
            let start = Utc.with_ymd_and_hms(2026, 11, 25, 10, 7, 0).unwrap();
            assert_eq!(
                Schedule::parse(&in_words(cron)).unwrap().next_after(start),
                Schedule::parse(cron).unwrap().next_after(start),
                "{cron}"
            );
        }
    }
}
