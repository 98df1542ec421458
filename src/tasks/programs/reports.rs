//! Reports for staff, as tables. Transactional: each reads one snapshot and its result is
//! recorded in the same transaction.

use std::time::Duration;

use chrono::NaiveDate;
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{BigInt, Date, Integer, Text},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    domain::money::Cents,
    tasks::{
        TaskOutput,
        params::specs_of,
        program::{ProgramFn, ProgramFunction},
        table::ResultTable,
    },
};

#[derive(QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    units: i64,
    #[diesel(sql_type = BigInt)]
    revenue_cents: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Per {
    #[default]
    Book,
    Author,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SalesReportParams {
    /// First day.
    from: NaiveDate,
    /// Last day.
    to: NaiveDate,
    /// Group by book or by author.
    #[serde(default)]
    per: Per,
}

pub fn sales_report(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "sales_report",
        description: "Units sold and revenue per book or per author over a date range (UTC days, both included).",
        params: specs_of::<SalesReportParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let SalesReportParams { from, to, per } = ctx.params()?;
            let per_author = per == Per::Author;
            // An author's revenue is the revenue of their books (co-authors each count it).
            let sql = if per_author {
                "SELECT a.name AS name, sum(l.quantity)::bigint AS units, \
                        sum(l.quantity::bigint * l.unit_price_cents)::bigint AS revenue_cents \
                   FROM order_lines l JOIN orders o ON o.id = l.order_id \
                   JOIN book_authors ba ON ba.book_id = l.book_id JOIN authors a ON a.id = ba.author_id \
                  WHERE o.created_at >= $1::date AND o.created_at < $2::date + 1 \
                  GROUP BY a.name ORDER BY revenue_cents DESC, name"
            } else {
                "SELECT l.title AS name, sum(l.quantity)::bigint AS units, \
                        sum(l.quantity::bigint * l.unit_price_cents)::bigint AS revenue_cents \
                   FROM order_lines l JOIN orders o ON o.id = l.order_id \
                  WHERE o.created_at >= $1::date AND o.created_at < $2::date + 1 \
                  GROUP BY l.book_id, l.title ORDER BY revenue_cents DESC, name"
            };
            let rows: Vec<SalesRow> = sql_query(sql)
                .bind::<Date, _>(from)
                .bind::<Date, _>(to)
                .load(conn)?;
            let mut table = ResultTable::new(&[
                if per_author { "author" } else { "book" },
                "units",
                "revenue",
            ]);
            for row in rows {
                table.push(vec![
                    row.name,
                    row.units.to_string(),
                    Cents(row.revenue_cents).to_string(),
                ]);
            }
            Ok(TaskOutput::Table(table))
        }),
    }
}

#[derive(QueryableByName)]
struct LowStockRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    authors: String,
    #[diesel(sql_type = Integer)]
    stock: i32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LowStockParams {
    /// Stock at or below this is low.
    #[serde(default = "three")]
    #[schemars(range(min = 0, max = 100_000))]
    threshold: i32,
}

fn three() -> i32 {
    3
}

pub fn low_stock(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "low_stock",
        description: "Books to reorder: stock at or below a threshold, lowest first.",
        params: specs_of::<LowStockParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let LowStockParams { threshold } = ctx.params()?;
            let rows: Vec<LowStockRow> = sql_query(
                "SELECT b.id, b.title, coalesce(string_agg(a.name, ', ' ORDER BY ba.position), '') AS authors, b.stock \
                   FROM books b LEFT JOIN book_authors ba ON ba.book_id = b.id LEFT JOIN authors a ON a.id = ba.author_id \
                  WHERE b.stock <= $1 GROUP BY b.id ORDER BY b.stock, b.title, b.id",
            )
            .bind::<Integer, _>(threshold)
            .load(conn)?;
            let mut table = ResultTable::new(&["id", "title", "authors", "stock"]);
            for row in rows {
                table.push(vec![
                    row.id.to_string(),
                    row.title,
                    row.authors,
                    row.stock.to_string(),
                ]);
            }
            Ok(TaskOutput::Table(table))
        }),
    }
}
