//! Printing results: aligned tables for people, exactly one JSON document with `--json`.

use serde::Serialize;

use crate::error::CliError;

/// How results are printed.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON with `--json`, else calls `human` to print it for people.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce(&T)) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("API values serialize")
            );
        } else {
            human(value);
        }
    }

    /// Prints a failure: one `error: ` line on stderr, and with `--json` the error document
    /// on stdout.
    pub fn error(&self, error: &CliError) {
        eprintln!("error: {}", error.message);
        if self.json {
            let document = serde_json::json!({
                "error": { "code": error.code, "message": error.message }
            });
            println!("{document}");
        }
    }
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(header, rows));
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let rows = vec![
            vec!["shop".to_owned(), "developer".to_owned(), "x".to_owned()],
            vec![
                "customer-portal".to_owned(),
                "lead".to_owned(),
                "".to_owned(),
            ],
        ];
        assert_eq!(
            table(&["NAME", "ROLE", "TEAMS"], &rows),
            "NAME             ROLE       TEAMS\n\
             shop             developer  x\n\
             customer-portal  lead\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(table(&["NAME"], &[]), "NAME\n");
    }
}
