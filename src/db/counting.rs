//! Reading tables of millions of rows. `count(*)` reads every row it counts (two seconds for
//! ten million tasks), so a page counts exactly only up to a threshold, with a count that
//! stops after threshold + 1 rows, and beyond it shows PostgreSQL's own estimate: the
//! planner's row estimate for the same query (`EXPLAIN`), which comes from the table's
//! statistics (`pg_class.reltuples`, the column's most common values), kept by autovacuum.
//! And the statements of such a page are planned for their own values
//! ([`planned_for_values`]).

use std::fmt;

use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{BigInt, Json},
};

/// Below this many rows a count is exact.
pub const EXACT_UP_TO: i64 = 10_000;

/// How many rows a query has, as exactly as is cheap to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(i64),
    /// More than [`EXACT_UP_TO`]: the planner's estimate.
    About(i64),
    /// More than this were found, and the estimate said fewer (statistics behind the table).
    MoreThan(i64),
}

impl Count {
    pub fn value(self) -> i64 {
        match self {
            Count::Exact(n) | Count::About(n) | Count::MoreThan(n) => n,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Count::Exact(_))
    }

    /// "exact", "about" or "more_than": what the number is, for the API.
    pub fn kind(self) -> &'static str {
        match self {
            Count::Exact(_) => "exact",
            Count::About(_) => "about",
            Count::MoreThan(_) => "more_than",
        }
    }
}

/// "4", "about 10.0M", "about 52K", "more than 10000".
impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::MoreThan(n) => write!(f, "more than {n}"),
            Count::About(n) if n >= 1_000_000 => write!(f, "about {:.1}M", n as f64 / 1e6),
            Count::About(n) if n >= 10_000 => write!(f, "about {}K", (n + 500) / 1000),
            Count::About(n) => write!(f, "about {n}"),
        }
    }
}

/// Runs `read` in a transaction whose statements are each planned for their own values
/// (`plan_cache_mode = force_custom_plan`), without JIT compilation. Diesel keeps prepared
/// statements, and after five runs PostgreSQL may give one a generic plan, made for any
/// value: for `program_id = $1` that is "a ninth of the tasks", and the plan that suits an
/// average program walks a million newer tasks of another one (75 ms instead of 1). JIT pays
/// off for long queries only, and misestimated short ones trigger it (1.4 s instead of 10 ms
/// for the overview's chart).
pub fn planned_for_values<T>(
    conn: &mut PgConnection,
    read: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    conn.transaction(|conn| {
        diesel::sql_query(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), \
                    set_config('jit', 'off', true)",
        )
        .execute(conn)?;
        read(conn)
    })
}

/// Exact up to [`EXACT_UP_TO`], the planner's estimate beyond. `query` is a complete SELECT;
/// its rows are counted, not loaded.
pub fn count<Q>(conn: &mut PgConnection, query: Q) -> QueryResult<Count>
where
    Q: QueryFragment<Pg> + QueryId,
{
    let query = Wrapped(query);
    let found = count_up_to(conn, &query, EXACT_UP_TO)?;
    if found <= EXACT_UP_TO {
        return Ok(Count::Exact(found));
    }
    beyond_exact(conn, &query)
}

/// The count of a query known to have more than [`EXACT_UP_TO`] rows: the planner's
/// estimate, or "more than" when the statistics are behind and say fewer.
pub fn beyond_exact<Q>(conn: &mut PgConnection, query: Q) -> QueryResult<Count>
where
    Q: QueryFragment<Pg> + QueryId,
{
    let estimate = estimated_rows(conn, query)?;
    Ok(if estimate > EXACT_UP_TO {
        Count::About(estimate)
    } else {
        Count::MoreThan(EXACT_UP_TO)
    })
}

/// How many rows `query` has, reading at most `cap + 1` of them: `cap + 1` means "more".
pub fn count_up_to<Q>(conn: &mut PgConnection, query: Q, cap: i64) -> QueryResult<i64>
where
    Q: QueryFragment<Pg> + QueryId,
{
    CountUpTo {
        query,
        limit: cap + 1,
    }
    .get_result(conn)
}

/// The planner's estimate of how many rows `query` returns (`EXPLAIN`, nothing run).
pub fn estimated_rows<Q>(conn: &mut PgConnection, query: Q) -> QueryResult<i64>
where
    Q: QueryFragment<Pg> + QueryId,
{
    let plan: serde_json::Value = Explain(query).get_result(conn)?;
    Ok(plan[0]["Plan"]["Plan Rows"]
        .as_f64()
        .map_or(0, |rows| rows.round() as i64))
}

/// A query by reference, so one built query can be counted and estimated.
struct Wrapped<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Wrapped<Q> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

impl<Q> QueryId for Wrapped<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// `SELECT count(*) FROM (query LIMIT n) AS counted`
struct CountUpTo<Q> {
    query: Q,
    limit: i64,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for CountUpTo<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT count(*) FROM (");
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(") AS counted");
        Ok(())
    }
}

impl<Q> QueryId for CountUpTo<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for CountUpTo<Q> {
    type SqlType = BigInt;
}

impl<Q> RunQueryDsl<PgConnection> for CountUpTo<Q> {}

/// `EXPLAIN (FORMAT JSON) query`: one row, the plan as JSON.
struct Explain<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Json;
}

impl<Q> RunQueryDsl<PgConnection> for Explain<Q> {}

#[cfg(test)]
mod tests {
    use super::Count;

    #[test]
    fn labels_say_which_counts_are_estimates() {
        assert_eq!(Count::Exact(4).to_string(), "4");
        assert_eq!(Count::About(10_012_345).to_string(), "about 10.0M");
        assert_eq!(Count::About(52_400).to_string(), "about 52K");
        assert_eq!(Count::MoreThan(10_000).to_string(), "more than 10000");
    }
}
