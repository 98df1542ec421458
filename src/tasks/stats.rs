//! The overview's figures over any number of kept tasks: how many tasks have each status, and
//! how many were created each hour of the last day. Both are exact while that is cheap and
//! estimates, labelled so, beyond: a year of tasks must not be read to draw a chart.

use chrono::{DateTime, Duration, DurationRound, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Array, BigInt, Double, Text, Timestamptz},
};

use crate::{
    db::{
        counting::{self, Count, EXACT_UP_TO},
        schema::tasks,
    },
    tasks::status::TaskStatus,
};

/// How many tasks have each status (every status listed, zeros included).
pub fn status_counts(conn: &mut PgConnection) -> QueryResult<Vec<(TaskStatus, Count)>> {
    counting::planned_for_values(conn, |conn| {
        TaskStatus::ALL
            .into_iter()
            .map(|status| Ok((status, status_count(conn, status)?)))
            .collect()
    })
}

/// Each status but "finished" has a partial index, so counting up to the threshold reads at
/// most that many index entries. Finished (nearly every kept task) has none: its count is the
/// planner's estimate unless that says it is small.
fn status_count(conn: &mut PgConnection, status: TaskStatus) -> QueryResult<Count> {
    let of_status = || {
        tasks::table
            .filter(tasks::status.eq(status))
            .select(tasks::id)
    };
    match status {
        TaskStatus::Finished => {
            let estimate = counting::estimated_rows(conn, of_status())?;
            if estimate > EXACT_UP_TO {
                Ok(Count::About(estimate))
            } else {
                counting::count(conn, of_status())
            }
        }
        // Plain and limited queued tasks are in two indexes, each whole only for its half.
        TaskStatus::Scheduled => {
            let mut found = 0;
            for limited in [false, true] {
                let half = of_status().filter(tasks::limited.eq(limited));
                found += counting::count_up_to(conn, half, EXACT_UP_TO)?;
            }
            if found <= EXACT_UP_TO {
                return Ok(Count::Exact(found));
            }
            counting::beyond_exact(conn, of_status())
        }
        _ => counting::count(conn, of_status()),
    }
}

/// Tasks created per hour and status over the last 24 hours (hour start, status, count).
#[derive(Debug, Clone, Default)]
pub struct HourlyCounts {
    pub buckets: Vec<(DateTime<Utc>, String, i64)>,
    /// The hours that were sampled rather than counted.
    pub estimated: Vec<DateTime<Utc>>,
}

/// Up to this many tasks in the whole day, every task is counted.
const EXACT_DAY: i64 = 20_000;
/// Beyond that, an hour of up to this many task ids is counted ...
const EXACT_HOUR: i64 = 2_000;
/// ... and a busier one is sampled: this many runs of consecutive ids, spread evenly over
/// the hour's ids (runs keep the reads on few pages; spreading them follows a queue that is
/// half done, older tasks finished and newer ones waiting).
const SAMPLE_RUNS: i64 = 10;
const SAMPLE_RUN_IDS: i64 = 100;

/// Where each hour's ids begin is found by `task_id_at` (ids grow with created_at). A day of
/// up to [`EXACT_DAY`] tasks is counted as it always was (the BRIN index on created_at finds
/// them); a busier day is counted hour by hour from those id ranges, sampling the busy hours,
/// so the chart reads at most about 48,000 rows however many tasks were queued.
pub fn hourly_counts(conn: &mut PgConnection, now: DateTime<Utc>) -> QueryResult<HourlyCounts> {
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let since = this_hour - Duration::hours(23);
    let hours: Vec<DateTime<Utc>> = (0..24).map(|h| since + Duration::hours(h)).collect();
    #[derive(QueryableByName)]
    struct Starts {
        #[diesel(sql_type = Array<BigInt>)]
        starts: Vec<i64>,
        #[diesel(sql_type = BigInt)]
        end: i64,
    }
    let Starts { mut starts, end } = sql_query(
        "SELECT array_agg(task_id_at(h) ORDER BY h) AS starts, \
                (SELECT coalesce(max(id), 0) + 1 FROM tasks) AS \"end\" \
           FROM unnest($1::timestamptz[]) AS h",
    )
    .bind::<Array<Timestamptz>, _>(&hours)
    .get_result(conn)?;
    starts.push(end);
    if end - starts[0] <= EXACT_DAY {
        let buckets = counting::planned_for_values(conn, |conn| exact_day(conn, since))?;
        return Ok(HourlyCounts {
            buckets: counts(buckets),
            estimated: Vec::new(),
        });
    }
    let mut ranges = Ranges::default();
    let mut estimated = Vec::new();
    for (hour, bounds) in hours.iter().zip(starts.windows(2)) {
        let (first, end) = (bounds[0], bounds[1]);
        if end - first <= EXACT_HOUR {
            ranges.push(first, end, 1.0);
            continue;
        }
        estimated.push(*hour);
        let weight = (end - first) as f64 / (SAMPLE_RUNS * SAMPLE_RUN_IDS) as f64;
        for run in 0..SAMPLE_RUNS {
            let start = first + (end - first - SAMPLE_RUN_IDS) * run / (SAMPLE_RUNS - 1);
            ranges.push(start, start + SAMPLE_RUN_IDS, weight);
        }
    }
    let buckets = counting::planned_for_values(conn, |conn| sampled_day(conn, since, &ranges))?;
    Ok(HourlyCounts {
        buckets: counts(buckets),
        estimated,
    })
}

#[derive(QueryableByName)]
struct Bucket {
    #[diesel(sql_type = Timestamptz)]
    hour: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Double)]
    count: f64,
}

fn counts(buckets: Vec<Bucket>) -> Vec<(DateTime<Utc>, String, i64)> {
    buckets
        .into_iter()
        .map(|b| (b.hour, b.status, b.count.round() as i64))
        .collect()
}

fn exact_day(conn: &mut PgConnection, since: DateTime<Utc>) -> QueryResult<Vec<Bucket>> {
    sql_query(
        "SELECT date_trunc('hour', created_at) AS hour, status, count(*)::float8 AS count \
           FROM tasks WHERE created_at >= $1 GROUP BY 1, 2 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(since)
    .load(conn)
}

/// Id ranges `[first, end)` to read, each row found in one counting as `weight` tasks.
#[derive(Default)]
struct Ranges {
    first: Vec<i64>,
    end: Vec<i64>,
    weight: Vec<f64>,
}

impl Ranges {
    fn push(&mut self, first: i64, end: i64, weight: f64) {
        self.first.push(first);
        self.end.push(end);
        self.weight.push(weight);
    }
}

/// No condition on created_at here: with one the planner reads the whole day through the
/// BRIN index and matches every row against every range (2 s instead of 15 ms). A row of an
/// hour's ids created outside the day (created_at set by hand) is left out afterwards.
fn sampled_day(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
    ranges: &Ranges,
) -> QueryResult<Vec<Bucket>> {
    let mut buckets: Vec<Bucket> = sql_query(
        "SELECT date_trunc('hour', t.created_at) AS hour, t.status, sum(r.weight) AS count \
           FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) AS r (first, \"end\", weight) \
           JOIN tasks t ON t.id >= r.first AND t.id < r.\"end\" \
          GROUP BY 1, 2 ORDER BY 1",
    )
    .bind::<Array<BigInt>, _>(&ranges.first)
    .bind::<Array<BigInt>, _>(&ranges.end)
    .bind::<Array<Double>, _>(&ranges.weight)
    .load(conn)?;
    buckets.retain(|bucket| bucket.hour >= since);
    Ok(buckets)
}
