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

use crate::ids::BookId;
use crate::{
    domain::money::Cents,
    tasks::{
        TaskError, TaskOutput,
        params::specs_of,
        program::{ProgramFn, ProgramFunction},
        refusal::ParamRefusal,
        table::ResultTable,
    },
};

#[derive(QueryableByName)]
struct SalesRow {
    /// A book's id or an author's, as `per` groups: the report only shows it.
    #[diesel(sql_type = BigInt)]
    id: i64,
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
    #[schemars(extend("x-default-days-ago" = 30))]
    from: NaiveDate,
    /// Last day.
    #[schemars(extend("x-default-days-ago" = 0))]
    to: NaiveDate,
    /// Group by book or by author.
    #[serde(default)]
    per: Per,
}

/// A rule across two parameters: a sentence of its own.
fn from_after_to(from: NaiveDate, to: NaiveDate) -> String {
    format!("The start date {from} is after the end date {to}.")
}

/// `from` must not be after `to`.
pub fn check_sales_params(params: &serde_json::Value) -> Result<(), ParamRefusal> {
    match serde_json::from_value::<SalesReportParams>(params.clone()) {
        Ok(SalesReportParams { from, to, .. }) if from > to => {
            Err(ParamRefusal::sentence("from", from_after_to(from, to)))
        }
        _ => Ok(()),
    }
}

pub fn sales_report(timeout: Duration) -> ProgramFunction {
    ProgramFunction {
        name: "sales_report",
        description: "Units sold and revenue per book or per author over a date range (UTC days, both included).",
        params: specs_of::<SalesReportParams>(),
        timeout,
        max_attempts: 3,
        default_schedule: None,
        default_max_running: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let SalesReportParams { from, to, per } = ctx.params()?;
            if from > to {
                return Err(TaskError::failed(from_after_to(from, to)));
            }
            let per_author = per == Per::Author;
            // Per author, each book's sales go to its first-named author only: crediting every
            // name (illustrators, translators) would count a sale several times, and the
            // authors' totals would exceed the shop's revenue.
            let sql = if per_author {
                "SELECT a.id, a.name AS name, sum(l.quantity)::bigint AS units, \
                        sum(l.quantity::bigint * l.unit_price_cents)::bigint AS revenue_cents \
                   FROM order_lines l JOIN orders o ON o.id = l.order_id \
                   JOIN book_authors ba ON ba.book_id = l.book_id AND ba.position = 0 \
                   JOIN authors a ON a.id = ba.author_id \
                  WHERE o.created_at >= $1::date AND o.created_at < $2::date + 1 \
                  GROUP BY a.id, a.name ORDER BY revenue_cents DESC, name"
            } else {
                "SELECT l.book_id AS id, l.title AS name, sum(l.quantity)::bigint AS units, \
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
                "id",
                if per_author { "author" } else { "book" },
                "units",
                "revenue (USD)",
            ]);
            if per_author {
                table.note = Some(
                    "Each book's sales are credited to its first-named author, so the authors' \
                     totals add up to the shop's."
                        .to_owned(),
                );
            } else {
                table = table.link("id", "/books/");
            }
            let (mut units, mut revenue) = (0i64, 0i64);
            for row in rows {
                units += row.units;
                revenue += row.revenue_cents;
                table.push(vec![
                    row.id.to_string(),
                    row.name,
                    row.units.to_string(),
                    Cents(row.revenue_cents).plain(),
                ]);
            }
            table.totals = Some(vec![
                String::new(),
                "Total".to_owned(),
                units.to_string(),
                Cents(revenue).plain(),
            ]);
            Ok(TaskOutput::Table(table))
        }),
    }
}

#[derive(QueryableByName)]
struct LowStockRow {
    #[diesel(sql_type = BigInt)]
    id: BookId,
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
        default_max_running: None,
        run: ProgramFn::Transactional(|ctx, conn| {
            let LowStockParams { threshold } = ctx.params()?;
            let rows: Vec<LowStockRow> = sql_query(
                "SELECT b.id, b.title, coalesce(string_agg(a.name, ', ' ORDER BY ba.position), '') AS authors, b.stock \
                   FROM books b LEFT JOIN book_authors ba ON ba.book_id = b.id LEFT JOIN authors a ON a.id = ba.author_id \
                  WHERE b.stock <= $1 GROUP BY b.id ORDER BY b.stock, b.title, b.id",
            )
            .bind::<Integer, _>(threshold)
            .load(conn)?;
            let mut table =
                ResultTable::new(&["id", "title", "authors", "stock"]).link("id", "/books/");
            let (books, mut copies) = (rows.len(), 0i64);
            for row in rows {
                copies += i64::from(row.stock);
                table.push(vec![
                    row.id.to_string(),
                    row.title,
                    row.authors,
                    row.stock.to_string(),
                ]);
            }
            table.totals = Some(vec![
                String::new(),
                format!("{books} book{}", if books == 1 { "" } else { "s" }),
                String::new(),
                copies.to_string(),
            ]);
            Ok(TaskOutput::Table(table))
        }),
    }
}
