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

/// Prints rows under a header, each column as wide as its widest cell; at a terminal too
/// narrow for it, the last column's cells wrap onto lines of their own under that column.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    print_out(format_args!("{}", table(header, rows, terminal_width())));
}

/// The width of the terminal stdout is, if it is one.
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(&stdout).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// The narrowest the last column is wrapped to: narrower, wrapping helps no one.
const NARROWEST_LAST_COLUMN: usize = 20;

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

fn table(header: &[&str], rows: &[Vec<String>], terminal: Option<usize>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Where the last column starts, and how wide it may be on this terminal.
    let start: usize = widths.iter().rev().skip(1).map(|w| w + 2).sum();
    let room = terminal
        .map(|width| width.saturating_sub(start))
        .filter(|room| *room >= NARROWEST_LAST_COLUMN);
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 < cells.len() {
                text.push_str(&format!("{cell:<width$}  "));
                continue;
            }
            let wrapped = match room {
                Some(room) => wrap(cell, room),
                None => vec![cell.to_string()],
            };
            let indent = format!("\n{:start$}", "");
            text.push_str(&wrapped.join(&indent));
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// `text` in lines of at most `width` characters, broken at spaces where it can be.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        // A word longer than the line is cut.
        while line.chars().count() > width {
            let cut: String = line.chars().take(width).collect();
            line = line.chars().skip(width).collect();
            lines.push(cut);
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::{table, wrap};

    #[test]
    fn a_table_too_wide_for_the_terminal_wraps_its_last_column() {
        let rows = vec![
            vec!["1".to_owned(), "one two three four five six".to_owned()],
            vec!["22".to_owned(), "short".to_owned()],
        ];
        let header = ["ID", "REASON"];
        for (terminal, expected) in [
            (
                None,
                "ID  REASON\n1   one two three four five six\n22  short\n",
            ),
            (
                Some(80),
                "ID  REASON\n1   one two three four five six\n22  short\n",
            ),
            (
                Some(24),
                "ID  REASON\n1   one two three four\n    five six\n22  short\n",
            ),
            // Too narrow for wrapping to help: as it is.
            (
                Some(10),
                "ID  REASON\n1   one two three four five six\n22  short\n",
            ),
        ] {
            assert_eq!(table(&header, &rows, terminal), expected, "{terminal:?}");
        }
    }

    #[test]
    fn words_wrap_at_spaces_and_a_long_one_is_cut() {
        for (text, width, expected) in [
            ("a b c", 3, &["a b", "c"][..]),
            ("abcdef", 4, &["abcd", "ef"]),
            ("", 5, &[""]),
            (
                "dev-1=1.0.0(succeeded) dev-2=1.0.0(succeeded)",
                25,
                &["dev-1=1.0.0(succeeded)", "dev-2=1.0.0(succeeded)"],
            ),
        ] {
            assert_eq!(wrap(text, width), expected, "{text:?} in {width}");
        }
    }

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
            table(&["NAME", "ROLE", "TEAMS"], &rows, None),
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
        assert_eq!(table(&["NAME"], &[], None), "NAME\n");
    }
}
