//! A table result as the task page shows it: 100 rows a page, sortable by any column (numbers
//! as numbers), numbers right-aligned, ids linked, a totals row. Sorting and paging are links
//! (`?sort=2&dir=desc&rows=3`), so the page works without script.

use serde::Deserialize;

use crate::tasks::table::ResultTable;

pub const ROWS_PER_PAGE: usize = 100;

/// The task page's query string for its result table.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResultParams {
    /// Column index to sort by.
    #[serde(default)]
    sort: Option<String>,
    /// `asc` or `desc`.
    #[serde(default)]
    dir: Option<String>,
    /// 1-based page of rows.
    #[serde(default)]
    rows: Option<String>,
}

pub struct HeaderCell {
    pub name: String,
    pub href: String,
    /// `ascending`/`descending` when sorted by it (for aria-sort).
    pub sorted: Option<&'static str>,
    pub numeric: bool,
}

pub struct ViewCell {
    pub text: String,
    pub href: Option<String>,
    pub numeric: bool,
}

pub struct ResultView {
    pub headers: Vec<HeaderCell>,
    pub rows: Vec<Vec<ViewCell>>,
    pub totals: Option<Vec<ViewCell>>,
    pub note: Option<String>,
    pub total_rows: usize,
    pub first: usize,
    pub last: usize,
    pub page: usize,
    pub page_count: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl ResultView {
    pub fn new(table: &ResultTable, params: &ResultParams, base: &str) -> ResultView {
        let numeric = table.numeric_columns();
        let sort = params
            .sort
            .as_deref()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|column| *column < table.columns.len());
        let descending = params.dir.as_deref() == Some("desc");
        let page_count = table.rows.len().div_ceil(ROWS_PER_PAGE).max(1);
        let page = params
            .rows
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, page_count);
        let link = |sort: Option<usize>, descending: bool, page: usize| {
            let mut query = Vec::new();
            if let Some(column) = sort {
                query.push(format!("sort={column}"));
                if descending {
                    query.push("dir=desc".to_owned());
                }
            }
            if page > 1 {
                query.push(format!("rows={page}"));
            }
            if query.is_empty() {
                format!("{base}#result")
            } else {
                format!("{base}?{}#result", query.join("&"))
            }
        };
        let headers = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let sorted = (sort == Some(i)).then_some(if descending {
                    "descending"
                } else {
                    "ascending"
                });
                // A click sorts by this column; a second click reverses it. Numbers start
                // with the largest.
                let next_descending = match sorted {
                    Some("ascending") => true,
                    Some(_) => false,
                    None => numeric[i],
                };
                HeaderCell {
                    name: name.clone(),
                    href: link(Some(i), next_descending, 1),
                    sorted,
                    numeric: numeric[i],
                }
            })
            .collect();
        let ordered: Vec<&Vec<String>> = match sort {
            Some(column) => table.sorted_rows(column, descending),
            None => table.rows.iter().collect(),
        };
        let start = (page - 1) * ROWS_PER_PAGE;
        let to_view = |row: &[String]| {
            table
                .cells(row, &numeric)
                .into_iter()
                .map(|cell| ViewCell {
                    text: cell.text.to_owned(),
                    href: cell.href,
                    numeric: cell.numeric,
                })
                .collect::<Vec<_>>()
        };
        let rows: Vec<Vec<ViewCell>> = ordered
            .iter()
            .skip(start)
            .take(ROWS_PER_PAGE)
            .map(|row| to_view(row))
            .collect();
        let shown = rows.len();
        ResultView {
            headers,
            totals: table.totals.as_ref().map(|totals| {
                totals
                    .iter()
                    .zip(&numeric)
                    .map(|(text, numeric)| ViewCell {
                        text: text.clone(),
                        href: None,
                        numeric: *numeric,
                    })
                    .collect()
            }),
            note: table.note.clone(),
            rows,
            total_rows: table.rows.len(),
            first: if shown == 0 { 0 } else { start + 1 },
            last: start + shown,
            page,
            page_count,
            previous: (page > 1).then(|| link(sort, descending, page - 1)),
            next: (page < page_count).then(|| link(sort, descending, page + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: usize) -> ResultTable {
        let mut table = ResultTable::new(&["id", "title", "stock"]).link("id", "/books/");
        for i in 1..=rows {
            table.push(vec![
                i.to_string(),
                format!("Book {i}"),
                (i % 7).to_string(),
            ]);
        }
        table
    }

    #[test]
    fn a_big_table_pages_by_a_hundred_rows() {
        let view = ResultView::new(&table(2454), &ResultParams::default(), "/admin/tasks/1");
        assert_eq!(
            (view.rows.len(), view.page_count, view.first, view.last),
            (100, 25, 1, 100)
        );
        assert_eq!(view.rows[0][0].href.as_deref(), Some("/books/1"));
        assert!(view.rows[0][2].numeric && !view.rows[0][1].numeric);
        let last = ResultView::new(
            &table(2454),
            &ResultParams {
                rows: Some("25".into()),
                ..Default::default()
            },
            "/admin/tasks/1",
        );
        assert_eq!(
            (last.first, last.last, last.next.is_none()),
            (2401, 2454, true)
        );
    }

    #[test]
    fn sorting_by_a_column_orders_numbers_as_numbers() {
        let view = ResultView::new(
            &table(20),
            &ResultParams {
                sort: Some("0".into()),
                dir: Some("desc".into()),
                ..Default::default()
            },
            "/t",
        );
        assert_eq!(view.rows[0][0].text, "20");
        assert_eq!(view.headers[0].sorted, Some("descending"));
        assert_eq!(
            view.headers[0].href, "/t?sort=0#result",
            "a second click reverses"
        );
    }
}
