//! What a deploy's hooks and health check printed, as kept with the deployment: one entry
//! per step a target ran, its output bounded to the last [`MAX_OUTPUT_BYTES`] and cut at a
//! character boundary, saying how much was cut. The agent bounds what it sends; the server
//! checks it again ([`check_report`]), since an agent may send anything.

use serde::{Deserialize, Serialize};

/// The most output kept per step: the end of it, where a failure usually shows.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The most steps one report may carry (a deploy runs at most two hooks and a health check).
pub const MAX_STEPS_PER_REPORT: usize = 8;

/// The longest command (or URL) kept for a step; a longer one is cut, ending in `…`.
pub const MAX_COMMAND_BYTES: usize = 4096;

/// The longest step name or account of how it ended.
pub const MAX_LABEL_BYTES: usize = 1024;

/// Room for the `[… N bytes cut]` line above bounded output.
const MAX_CUT_NOTE_BYTES: usize = 64;

/// One step a target ran while deploying: a hook or the health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepLog {
    /// `hook before_switch`, `hook after_switch` or `health check`.
    pub step: String,
    /// The command run, or the URL the health check asked.
    pub command: String,
    /// How it ended, for people: `exited with status 0`, `answered 503`, `killed after
    /// running past its timeout of 30s`; a health check adds how many attempts it took.
    pub ended: String,
    pub succeeded: bool,
    /// What it printed (stdout and stderr together; for a URL check, a line per attempt):
    /// the last 64 KiB at most, starting with `[… N bytes cut]` when cut.
    pub output: String,
}

/// Output kept as it arrives, only its last [`MAX_OUTPUT_BYTES`], counting what was cut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputTail {
    text: String,
    cut: u64,
}

impl OutputTail {
    /// Notes that `bytes` bytes before what follows were not kept.
    pub fn note_cut(&mut self, bytes: u64) {
        self.cut += bytes;
    }

    /// Adds `text` at the end, dropping the oldest output past the bound.
    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
        // Trimmed only once twice the bound arrived: pushing line by line stays linear.
        if self.text.len() > 2 * MAX_OUTPUT_BYTES {
            self.trim();
        }
    }

    /// The kept output: the last [`MAX_OUTPUT_BYTES`] at most (starting at a character
    /// boundary), after a `[… N bytes cut]` line when anything was cut.
    pub fn finish(mut self) -> String {
        self.trim();
        match self.cut {
            0 => self.text,
            cut => format!("{}\n{}", cut_note(cut), self.text),
        }
    }

    fn trim(&mut self) {
        if self.text.len() <= MAX_OUTPUT_BYTES {
            return;
        }
        let mut start = self.text.len() - MAX_OUTPUT_BYTES;
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        self.cut += start as u64;
        self.text.drain(..start);
    }
}

/// The line above output that was cut.
pub fn cut_note(bytes: u64) -> String {
    format!("[… {bytes} bytes cut]")
}

/// `bytes` read from the end of a longer output (`total` bytes in all) as text: a character
/// cut in half at the start is dropped, invalid UTF-8 replaced, and the result bounded.
pub fn tail_of_output(total: u64, bytes: &[u8]) -> String {
    let mut start = 0;
    if total > bytes.len() as u64 {
        // Continuation bytes of a character that began before what was read.
        start = bytes
            .iter()
            .take(3)
            .take_while(|b| *b & 0b1100_0000 == 0b1000_0000)
            .count();
    }
    let mut tail = OutputTail::default();
    tail.note_cut(total.saturating_sub(bytes.len() as u64) + start as u64);
    tail.push(&String::from_utf8_lossy(&bytes[start..]));
    tail.finish()
}

/// `text` at most `max` bytes long: cut at a character boundary, ending in `…` when cut.
pub fn bounded_label(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Checks the steps an agent reported: at most [`MAX_STEPS_PER_REPORT`], each within the
/// bounds an agent keeps to. The error names the step and what is too long.
pub fn check_report(steps: &[StepLog]) -> Result<(), String> {
    if steps.len() > MAX_STEPS_PER_REPORT {
        return Err(format!(
            "the report carries {} step logs; an agent sends at most {MAX_STEPS_PER_REPORT}",
            steps.len()
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let which = || format!("step log {} ({:?})", i + 1, bounded_label(&step.step, 64));
        let fields = [
            ("step", &step.step, MAX_LABEL_BYTES),
            ("command", &step.command, MAX_COMMAND_BYTES),
            ("ended", &step.ended, MAX_LABEL_BYTES),
            (
                "output",
                &step.output,
                MAX_OUTPUT_BYTES + MAX_CUT_NOTE_BYTES,
            ),
        ];
        for (field, value, max) in fields {
            if value.len() > max {
                return Err(format!(
                    "{}: its {field} is {} bytes, more than the {max} an agent sends (output is cut to its last {MAX_OUTPUT_BYTES} bytes)",
                    which(),
                    value.len()
                ));
            }
        }
        if step.step.trim().is_empty() {
            return Err(format!("{}: it names no step", which()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut tail = OutputTail::default();
        tail.push("one\n");
        tail.push("two\n");
        assert_eq!(tail.finish(), "one\ntwo\n");
        assert_eq!(tail_of_output(3, b"abc"), "abc");
        assert_eq!(tail_of_output(0, b""), "");
    }

    #[test]
    fn long_output_keeps_its_end_and_says_how_much_was_cut() {
        let mut tail = OutputTail::default();
        let line = "x".repeat(999) + "\n";
        for _ in 0..200 {
            tail.push(&line);
        }
        tail.push("the end\n");
        let kept = tail.finish();
        let (note, text) = kept.split_once('\n').unwrap();
        let cut = 200 * 1000 + 8 - MAX_OUTPUT_BYTES;
        assert_eq!(note, format!("[… {cut} bytes cut]"));
        assert_eq!(text.len(), MAX_OUTPUT_BYTES);
        assert!(text.ends_with("x\nthe end\n"));
    }

    #[test]
    fn the_cut_falls_on_a_character_boundary() {
        // 'é' is two bytes: a bound in the middle of one moves past it.
        for prefix in ["", "a"] {
            let text = format!("{prefix}{}", "é".repeat(MAX_OUTPUT_BYTES));
            let mut tail = OutputTail::default();
            tail.push(&text);
            let kept = tail.finish();
            let (note, body) = kept.split_once('\n').unwrap();
            assert!(body.chars().all(|c| c == 'é'), "{prefix:?}");
            assert!(body.len() <= MAX_OUTPUT_BYTES);
            let cut: usize = note
                .trim_start_matches("[… ")
                .trim_end_matches(" bytes cut]")
                .parse()
                .unwrap();
            assert_eq!(cut + body.len(), text.len(), "{prefix:?}");
        }
    }

    #[test]
    fn a_tail_read_from_the_middle_of_a_character_drops_its_rest() {
        // "€" is E2 82 AC; the read began after its first byte.
        let bytes = [0x82, 0xAC, b'o', b'k'];
        assert_eq!(tail_of_output(10, &bytes), "[… 8 bytes cut]\nok");
        // Invalid bytes further on are replaced, not refused.
        assert_eq!(tail_of_output(2, &[b'a', 0xFF]), "a\u{FFFD}");
    }

    #[test]
    fn labels_are_cut_at_a_character_boundary() {
        assert_eq!(bounded_label("short", 10), "short");
        let cut = bounded_label(&"é".repeat(10), 8);
        assert!(cut.len() <= 8 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, "éé…");
    }

    fn step(output: &str) -> StepLog {
        StepLog {
            step: "hook before_switch".into(),
            command: "./migrate".into(),
            ended: "exited with status 0".into(),
            succeeded: true,
            output: output.into(),
        }
    }

    #[test]
    fn reports_within_the_bounds_pass_and_others_are_refused_by_name() {
        let mut bounded = OutputTail::default();
        bounded.push(&"y".repeat(3 * MAX_OUTPUT_BYTES));
        let cases: Vec<(Vec<StepLog>, Option<&str>)> = vec![
            (vec![], None),
            (vec![step("ok\n"), step(&bounded.finish())], None),
            (
                vec![step(&"y".repeat(MAX_OUTPUT_BYTES + 100))],
                Some("step log 1 (\"hook before_switch\"): its output is 65636 bytes"),
            ),
            (
                vec![step(""); MAX_STEPS_PER_REPORT + 1],
                Some("carries 9 step logs; an agent sends at most 8"),
            ),
            (
                vec![StepLog {
                    command: "c".repeat(MAX_COMMAND_BYTES + 1),
                    ..step("")
                }],
                Some("its command is 4097 bytes"),
            ),
            (
                vec![StepLog {
                    step: " ".into(),
                    ..step("")
                }],
                Some("names no step"),
            ),
        ];
        for (steps, refused) in cases {
            match (check_report(&steps), refused) {
                (Ok(()), None) => {}
                (Err(error), Some(expected)) => assert!(error.contains(expected), "{error}"),
                (result, expected) => panic!("{result:?}, expected {expected:?}"),
            }
        }
    }
}
