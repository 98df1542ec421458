//! Table results: stored as columns and rows (for HTML and CSV) and as aligned text like psql
//! prints (for `get_task_result` in psql).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct ResultTable {
    pub columns: Vec<String>,
    /// Numbers are written plainly ("29.99", not "$29.99"), so CSV and sorting see numbers.
    pub rows: Vec<Vec<String>>,
    /// A totals row under the table (empty cells where a total means nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<Vec<String>>,
    /// Per column, a link prefix: a cell `7` under "/books/" links to /books/7.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Option<String>>,
    /// How to read the table (shown above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One cell as a page shows it.
pub struct Cell<'a> {
    pub text: &'a str,
    pub href: Option<String>,
    pub numeric: bool,
}

impl ResultTable {
    pub fn new(columns: &[&str]) -> ResultTable {
        ResultTable {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            ..ResultTable::default()
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Cells of `column` link to `prefix` + the cell.
    pub fn link(mut self, column: &str, prefix: &str) -> ResultTable {
        self.links.resize(self.columns.len(), None);
        if let Some(i) = self.columns.iter().position(|c| c == column) {
            self.links[i] = Some(prefix.to_owned());
        }
        self
    }

    /// Whether every cell of each column is a number (such columns align right and sort as
    /// numbers).
    pub fn numeric_columns(&self) -> Vec<bool> {
        (0..self.columns.len())
            .map(|i| !self.rows.is_empty() && self.rows.iter().all(|row| looks_numeric(&row[i])))
            .collect()
    }

    /// A row's cells with their links, for the page.
    pub fn cells<'a>(&'a self, row: &'a [String], numeric: &[bool]) -> Vec<Cell<'a>> {
        row.iter()
            .enumerate()
            .map(|(i, text)| Cell {
                text,
                href: self
                    .links
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|_| !text.is_empty())
                    .map(|prefix| format!("{prefix}{text}")),
                numeric: numeric.get(i).copied().unwrap_or(false),
            })
            .collect()
    }

    /// The rows ordered by one column (numbers as numbers), ties kept in their order.
    pub fn sorted_rows(&self, column: usize, descending: bool) -> Vec<&Vec<String>> {
        let numeric = self.numeric_columns().get(column).copied().unwrap_or(false);
        let mut rows: Vec<&Vec<String>> = self.rows.iter().collect();
        rows.sort_by(|a, b| {
            let (a, b) = (&a[column], &b[column]);
            let order = if numeric {
                let number = |s: &str| s.replace(',', "").parse::<f64>().unwrap_or(0.0);
                number(a).total_cmp(&number(b))
            } else {
                a.to_lowercase().cmp(&b.to_lowercase())
            };
            if descending { order.reverse() } else { order }
        });
        rows
    }

    /// Like psql: headers centred, numbers right-aligned, a row count at the end.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric = self.numeric_columns();
        let mut text = String::new();
        let header: Vec<String> = self
            .columns
            .iter()
            .zip(&widths)
            .map(|(name, width)| {
                let pad = width - name.chars().count();
                format!(
                    " {}{}{} ",
                    " ".repeat(pad / 2),
                    name,
                    " ".repeat(pad - pad / 2)
                )
            })
            .collect();
        text.push_str(header.join("|").trim_end());
        text.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        text.push_str(&rule.join("+"));
        text.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&numeric)
                .map(|((cell, width), numeric)| {
                    if *numeric {
                        format!(" {cell:>width$} ")
                    } else {
                        format!(" {cell:<width$} ")
                    }
                })
                .collect();
            text.push_str(cells.join("|").trim_end());
            text.push('\n');
        }
        let count = self.rows.len();
        text.push_str(&format!(
            "({count} row{})",
            if count == 1 { "" } else { "s" }
        ));
        text
    }

    /// CSV for spreadsheets: numbers as numbers, and any other cell that a spreadsheet would
    /// run as a formula (it begins with =, +, -, @, a tab or a carriage return) gets a leading
    /// apostrophe (OWASP's advice), so it is shown as text.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let safe = |cell: &String| spreadsheet_safe(cell);
        // Writing to memory cannot fail.
        let _ = writer.write_record(self.columns.iter().map(safe));
        for row in self.rows.iter().chain(self.totals.iter()) {
            let _ = writer.write_record(row.iter().map(safe));
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

fn spreadsheet_safe(cell: &String) -> String {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && cell.parse::<f64>().is_err() {
        format!("'{cell}")
    } else {
        cell.clone()
    }
}

fn looks_numeric(cell: &str) -> bool {
    let digits = cell.trim_start_matches('-').replace([',', '.'], "");
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_psql() {
        let mut table = ResultTable::new(&["title", "units", "revenue"]);
        table.push(vec!["Dune".into(), "3".into(), "29.97".into()]);
        table.push(vec!["Les Misérables".into(), "12".into(), "1200.00".into()]);
        assert_eq!(
            table.to_text(),
            "     title      | units | revenue\n\
             ----------------+-------+---------\n \
             Dune           |     3 |   29.97\n \
             Les Misérables |    12 | 1200.00\n\
             (2 rows)"
        );
        assert_eq!(
            table.to_csv(),
            "title,units,revenue\nDune,3,29.97\nLes Misérables,12,1200.00\n"
        );
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_text() {
        let mut table = ResultTable::new(&["name", "change"]);
        for cell in [
            "=HYPERLINK(\"x\")",
            "+1+1",
            "@SUM(A1)",
            "-2+3",
            "\tx",
            "\rx",
        ] {
            table.push(vec![cell.into(), "-3".into()]);
        }
        let csv = table.to_csv();
        for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
            assert!(line.starts_with('\'') || line.starts_with("\"'"), "{line}");
            assert!(
                line.ends_with(",-3"),
                "a negative number stays a number: {line}"
            );
        }
    }

    #[test]
    fn numbers_sort_as_numbers() {
        let mut table = ResultTable::new(&["title", "units"]);
        for (title, units) in [("b", "9"), ("a", "10"), ("c", "1,200")] {
            table.push(vec![title.into(), units.into()]);
        }
        let order: Vec<&str> = table
            .sorted_rows(1, true)
            .iter()
            .map(|row| row[0].as_str())
            .collect();
        assert_eq!(order, ["c", "a", "b"]);
    }
}
