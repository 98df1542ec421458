//! Table results: stored as columns and rows (for HTML and CSV) and as aligned text like psql
//! prints (for `get_task_result` in psql).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResultTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl ResultTable {
    pub fn new(columns: &[&str]) -> ResultTable {
        ResultTable {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
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
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| !self.rows.is_empty() && self.rows.iter().all(|row| looks_numeric(&row[i])))
            .collect();
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

    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        // Writing to memory cannot fail.
        let _ = writer.write_record(&self.columns);
        for row in &self.rows {
            let _ = writer.write_record(row);
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

fn looks_numeric(cell: &str) -> bool {
    let digits = cell.trim_start_matches(['-', '$']).replace([',', '.'], "");
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_psql() {
        let mut table = ResultTable::new(&["title", "units", "revenue"]);
        table.push(vec!["Dune".into(), "3".into(), "$29.97".into()]);
        table.push(vec![
            "Les Misérables".into(),
            "12".into(),
            "$1,200.00".into(),
        ]);
        assert_eq!(
            table.to_text(),
            "     title      | units |  revenue\n\
             ----------------+-------+-----------\n \
             Dune           |     3 |    $29.97\n \
             Les Misérables |    12 | $1,200.00\n\
             (2 rows)"
        );
        assert_eq!(
            table.to_csv(),
            "title,units,revenue\nDune,3,$29.97\nLes Misérables,12,\"$1,200.00\"\n"
        );
    }
}
