//! The gauges read from the database when scraped. Each read is bounded: a status with at
//! most [`crate::db::counting::EXACT_UP_TO`] tasks is counted per program from its index; a bigger one (nearly
//! always `finished`) is split by the planner's estimates, as the overview's counts are; the
//! queue's age looks at the longest-queued tasks only. Nothing counts a big table.

use std::fmt::Write;

use diesel::{
    prelude::*,
    sql_query,
    sql_types::{BigInt, Double, Text},
};

use crate::{
    db::{
        PgPool,
        counting::{self, Count},
        schema::{programs, tasks},
    },
    ids::ProgramId,
    tasks::{stats, status::TaskStatus},
};

/// How many of the longest-queued tasks the queue's age looks at.
const OLDEST_LOOKED_AT: i64 = 10_000;

#[derive(QueryableByName)]
struct ProgramCount {
    #[diesel(sql_type = Text)]
    program: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct ProgramAge {
    #[diesel(sql_type = Text)]
    program: String,
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// Appends the database's gauges to `text` in Prometheus' text format.
pub fn render(conn: &mut PgConnection, pool: &PgPool, text: &mut String) -> QueryResult<()> {
    let programs: Vec<(ProgramId, String)> = programs::table
        .select((programs::id, programs::name))
        .order(programs::name)
        .load(conn)?;
    header(
        text,
        "bookstore_tasks",
        "tasks kept, by program and status (beyond 10,000 of a status, PostgreSQL's estimate)",
    );
    for (status, count) in stats::status_counts(conn)? {
        let per_program = match count {
            Count::Exact(_) => counted(conn, status)?,
            Count::About(_) | Count::MoreThan(_) => estimated(conn, status, &programs)?,
        };
        // Every program and status, zeros too: a series that comes and goes breaks rates
        // and alerts.
        for (_, program) in &programs {
            let count = per_program
                .iter()
                .find(|(name, _)| name == program)
                .map_or(0, |(_, count)| *count);
            let labels = [("program", program.as_str()), ("status", status.as_str())];
            sample(text, "bookstore_tasks", &labels, count as f64);
        }
    }
    header(
        text,
        "bookstore_queue_oldest_seconds",
        "how long the longest-waiting due task of each program has waited to start",
    );
    let ages = oldest_waits(conn)?;
    for (_, program) in &programs {
        let seconds = ages
            .iter()
            .find(|age| &age.program == program)
            .map_or(0.0, |age| age.seconds.max(0.0));
        sample(
            text,
            "bookstore_queue_oldest_seconds",
            &[("program", program)],
            seconds,
        );
    }
    let state = pool.state();
    header(
        text,
        "bookstore_db_pool_connections",
        "this node's pooled database connections, by state",
    );
    let idle = f64::from(state.idle_connections);
    let in_use = f64::from(state.connections - state.idle_connections);
    sample(
        text,
        "bookstore_db_pool_connections",
        &[("state", "idle")],
        idle,
    );
    sample(
        text,
        "bookstore_db_pool_connections",
        &[("state", "in_use")],
        in_use,
    );
    header(
        text,
        "bookstore_db_pool_max_connections",
        "the most connections this node's pool opens (BOOKSTORE_POOL_SIZE)",
    );
    let max = f64::from(pool.max_size());
    sample(text, "bookstore_db_pool_max_connections", &[], max);
    Ok(())
}

/// A status known to have few tasks: counted per program (reads at most that many entries).
fn counted(conn: &mut PgConnection, status: TaskStatus) -> QueryResult<Vec<(String, i64)>> {
    let rows: Vec<ProgramCount> = sql_query(
        "SELECT p.name AS program, count(*) AS count FROM tasks t \
           JOIN programs p ON p.id = t.program_id WHERE t.status = $1 GROUP BY p.name",
    )
    .bind::<Text, _>(status.as_str())
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.program, r.count)).collect())
}

/// A big status: the planner's estimate for each program (one EXPLAIN each, nothing read).
fn estimated(
    conn: &mut PgConnection,
    status: TaskStatus,
    programs: &[(ProgramId, String)],
) -> QueryResult<Vec<(String, i64)>> {
    let mut counts = Vec::new();
    for (id, name) in programs {
        let query = tasks::table
            .filter(tasks::status.eq(status.as_str()))
            .filter(tasks::program_id.eq(*id))
            .select(tasks::id);
        counts.push((name.clone(), counting::estimated_rows(conn, query)?));
    }
    Ok(counts)
}

/// Each program's longest wait among the due queued tasks, looking at the
/// [`OLDEST_LOOKED_AT`] queued longest (the status and creation index, read from its old end).
/// A program with nothing among them is not late by more than they are.
fn oldest_waits(conn: &mut PgConnection) -> QueryResult<Vec<ProgramAge>> {
    sql_query(
        "SELECT p.name AS program, \
                extract(epoch FROM now() - min(t.run_after))::float8 AS seconds \
           FROM (SELECT program_id, run_after FROM tasks WHERE status = 'scheduled' \
                  ORDER BY created_at LIMIT $1) t \
           JOIN programs p ON p.id = t.program_id \
          WHERE t.run_after <= now() GROUP BY p.name",
    )
    .bind::<BigInt, _>(OLDEST_LOOKED_AT)
    .load(conn)
}

fn header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn sample(text: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    text.push_str(name);
    if !labels.is_empty() {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
            .collect();
        let _ = write!(text, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(text, " {value}");
}

/// A label value in the text format: backslash, double quote and line feed escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        let mut text = String::new();
        super::sample(&mut text, "m", &[("a", "x\"y\\z\n")], 1.0);
        assert_eq!(text, "m{a=\"x\\\"y\\\\z\\n\"} 1\n");
    }
}
