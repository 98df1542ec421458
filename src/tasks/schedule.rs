//! Program schedules: "every 15 minutes" (also seconds, hours, days) or a five-field cron line
//! ("0 3 * * *": 03:00 UTC every day).

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
        if words.len() == 5 {
            return Cron::from_str(text)
                .map(|cron| Schedule::Cron(Box::new(cron)))
                .map_err(|err| format!("not a valid cron line: {err}"));
        }
        Err("use \"every N minutes\" (or seconds, hours, days) or a five-field cron line like \"0 3 * * *\"".into())
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => chrono::Duration::from_std(*period).ok().map(|p| after + p),
            Schedule::Cron(cron) => cron.find_next_occurrence(&after, false).ok(),
        }
    }
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
        for bad in [
            "every 0 minutes",
            "every 5 fortnights",
            "sometimes",
            "99 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
