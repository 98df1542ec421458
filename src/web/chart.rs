//! The overview's chart: tasks created per hour over the last day, stacked by status, as
//! server-rendered SVG (no script, so the CSP holds).

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::tasks::{stats::HourlyCounts, status::TaskStatus};

pub struct Segment {
    pub y: i64,
    pub height: i64,
    pub status: &'static str,
    pub count: i64,
}

pub struct Bar {
    pub x: i64,
    pub label: String,
    pub total: i64,
    /// Its hour was sampled (a busy hour of a busy day): the counts are estimates.
    pub estimated: bool,
    pub segments: Vec<Segment>,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    pub max: i64,
    /// Some bar is an estimate.
    pub estimated: bool,
    pub width: i64,
    pub height: i64,
    pub bar_width: i64,
}

const HEIGHT: i64 = 120;
const BAR: i64 = 18;
const GAP: i64 = 4;

/// 24 hourly bars ending with the current hour.
pub fn hourly(hourly: &HourlyCounts, now: DateTime<Utc>) -> Chart {
    let counts = &hourly.buckets;
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let hours: Vec<DateTime<Utc>> = (0..24)
        .rev()
        .map(|back| this_hour - Duration::hours(back))
        .collect();
    let total_at = |hour: &DateTime<Utc>| {
        counts
            .iter()
            .filter(|(h, _, _)| h == hour)
            .map(|(_, _, n)| n)
            .sum::<i64>()
    };
    let max = hours.iter().map(total_at).max().unwrap_or(0).max(1);
    let bars = hours
        .iter()
        .enumerate()
        .map(|(index, hour)| {
            let mut top = HEIGHT;
            let segments = TaskStatus::ALL
                .iter()
                .filter_map(|status| {
                    let count = counts
                        .iter()
                        .find(|(h, s, _)| h == hour && s == status.as_str())
                        .map_or(0, |(_, _, n)| *n);
                    (count > 0).then(|| {
                        let height = (count * HEIGHT / max).max(1);
                        top -= height;
                        Segment {
                            y: top,
                            height,
                            status: status.as_str(),
                            count,
                        }
                    })
                })
                .collect();
            Bar {
                x: index as i64 * (BAR + GAP),
                label: hour.format("%H:00").to_string(),
                total: total_at(hour),
                estimated: hourly.estimated.contains(hour),
                segments,
            }
        })
        .collect();
    Chart {
        bars,
        max,
        estimated: !hourly.estimated.is_empty(),
        width: 24 * (BAR + GAP),
        height: HEIGHT,
        bar_width: BAR,
    }
}
