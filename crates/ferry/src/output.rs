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
        if self.json && !error.reported {
            let mut document = serde_json::json!({
                "error": { "code": error.code, "message": error.message }
            });
            if let Some(details) = &error.details {
                document["error"]["details"] = details.clone();
            }
            println!("{document}");
        }
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `190.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A progress bar on stderr for people; hidden under `--json` or without a terminal.
pub fn progress(output: Output, total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if output.json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print_out(format_args!("{}", table(header, rows)));
}

/// Writes `text` to stdout. A reader that went away (`ferry audit --json | head`) ends the
/// process quietly with status 141, as a Unix tool stopped by SIGPIPE does; ferry keeps
/// SIGPIPE ignored, so that its sockets report a closed peer as an error instead.
pub fn print_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => panic!("failed printing to stdout: {e}"),
    }
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
    fn sizes_for_people() {
        use super::human_bytes;
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 * 1024 * 1024), "200.0 MiB");
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(table(&["NAME"], &[]), "NAME\n");
    }
}
