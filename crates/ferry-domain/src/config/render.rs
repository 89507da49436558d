//! An environment's configuration put into a release's files: the env file ferry writes
//! (`[config] env_file` in `ferry.toml`) and templates with `{{ KEY }}` placeholders
//! (`[config] templates`). Pure: the agent reads each template and writes what comes out;
//! here text becomes text, bounded. Errors name keys, templates, lines and columns, never a
//! value.

use std::collections::{BTreeMap, BTreeSet};

use super::ConfigKey;

/// The largest template ferry renders: a configuration file, not data.
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;
/// The most a rendered template may hold: a template repeating a large value many times
/// stops here rather than filling the target's memory and disk.
pub const MAX_RENDERED_BYTES: usize = 4 * 1024 * 1024;
/// The most missing keys one error names (a template naming thousands of unknown keys gets
/// a readable error; the rest are counted).
const MAX_NAMED_KEYS: usize = 50;

/// An env file holding `values`: one `KEY=VALUE` line per key, sorted by key, each value
/// (as checked by [`super::check_value`]) quoted by this rule:
///
/// - made only of `A-Z a-z 0-9 _ . / : @ % + , = -` (or empty): written bare, `KEY=value`;
/// - else, holding no `'` and no newline: in single quotes, as it is, `KEY='a b #c $d'`;
/// - else in double quotes, with `\` written `\\`, `"` as `\"`, `$` as `\$`, `` ` `` as
///   `` \` `` and a newline as `\n`: `KEY="it's"`.
///
/// A bare or single-quoted value, which is every value without a `'` or a newline, reads
/// back as the same value in dotenv readers (PHP's vlucas/phpdotenv, Node's dotenv,
/// Python's python-dotenv), systemd's `EnvironmentFile=` and `set -a; . ./.env` in `sh`,
/// and in [`super::parse_env_file`]. A double-quoted value is read back exactly by
/// `parse_env_file`, `sh` and systemd, except that these two read `\n` as a backslash and
/// an `n` (dotenv readers read it as a newline); dotenv readers differ in which other
/// escapes they undo. Sourcing the file in `sh` never runs anything: `$` and `` ` `` are
/// written quoted or escaped.
pub fn render_env_file(values: &BTreeMap<ConfigKey, String>) -> String {
    let mut file = String::new();
    for (key, value) in values {
        file.push_str(key.as_str());
        file.push('=');
        push_quoted(&mut file, value);
        file.push('\n');
    }
    file
}

/// Whether `c` may appear in a value written without quotes.
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./:@%+,=-".contains(c)
}

fn push_quoted(file: &mut String, value: &str) {
    if value.chars().all(is_bare) {
        file.push_str(value);
    } else if !value.contains(['\'', '\n']) {
        file.push('\'');
        file.push_str(value);
        file.push('\'');
    } else {
        file.push('"');
        for c in value.chars() {
            match c {
                '\\' => file.push_str("\\\\"),
                '"' => file.push_str("\\\""),
                '$' => file.push_str("\\$"),
                '`' => file.push_str("\\`"),
                '\n' => file.push_str("\\n"),
                c => file.push(c),
            }
        }
        file.push('"');
    }
}

/// The keys of `required` that `values` lacks, in the order given.
pub fn missing_required(
    required: &[ConfigKey],
    values: &BTreeMap<ConfigKey, String>,
) -> Vec<ConfigKey> {
    required
        .iter()
        .filter(|key| !values.contains_key(*key))
        .cloned()
        .collect()
}

/// `template` (the file `name`, for errors) with each placeholder replaced:
///
/// - `{{ KEY }}`, with any spaces or tabs (or none) inside the braces, by the value of
///   `KEY`, verbatim (no escaping: the template decides the quoting its format needs);
/// - `{{ "{{" }}` by a literal `{{`; a `}}` outside a placeholder is written as it is.
///
/// A placeholder lies on one line. Values are never scanned again: a value holding
/// `{{ X }}` is written as it is. Refused: an unclosed `{{`, a placeholder that names no
/// key, a key `values` lacks (every such key is named, with the line and column of its
/// first use, and how to set it), a template over [`MAX_TEMPLATE_BYTES`] and a result over
/// [`MAX_RENDERED_BYTES`]. Errors never hold a value.
pub fn render_template(
    name: &str,
    template: &str,
    values: &BTreeMap<ConfigKey, String>,
) -> Result<String, TemplateError> {
    render(name, template, values).map_err(TemplateError::Broken)?
}

/// Refuses a template that could never render, whatever the configuration: too large, an
/// unclosed `{{`, or one that is no placeholder. Keys are not checked (each environment
/// has its own). For the release's checks, before it is deployed anywhere.
pub fn check_template(name: &str, template: &str) -> Result<(), String> {
    render(name, template, &BTreeMap::new()).map(|_| ())
}

/// Why a template did not render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// The template itself cannot be rendered (unclosed, not a placeholder, too large): it
    /// is fixed in a new release.
    Broken(String),
    /// It names keys the configuration lacks (each with where it is first used): they are
    /// set with `ferry config set`.
    MissingKeys(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Broken(why) | TemplateError::MissingKeys(why) => f.write_str(why),
        }
    }
}

/// [`render_template`]: the outer error is the template's own; the inner one, keys missing.
fn render(
    name: &str,
    template: &str,
    values: &BTreeMap<ConfigKey, String>,
) -> Result<Result<String, TemplateError>, String> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "template {name} holds {} bytes: a template may hold at most {MAX_TEMPLATE_BYTES} \
             bytes (1 MiB); keep data out of it",
            template.len()
        ));
    }
    let mut rendered = Rendered {
        name,
        text: String::with_capacity(template.len()),
    };
    let mut positions = Positions::default();
    let mut missing: Vec<(ConfigKey, Position)> = Vec::new();
    let mut named: BTreeSet<ConfigKey> = BTreeSet::new();
    let mut rest = 0;
    while let Some(found) = template[rest..].find("{{") {
        let open = rest + found;
        rendered.push(&template[rest..open])?;
        let after = &template[open + 2..];
        let at = |positions: &mut Positions| positions.advance(template, open);
        // Only as far as the placeholder's end: a long line is read once, not once per `{{`.
        let close = after
            .find("}}")
            .filter(|close| !after[..*close].contains('\n'));
        let Some(close) = close else {
            let Position { line, column } = at(&mut positions);
            return Err(format!(
                "template {name} line {line}, column {column}: this {{{{ is not closed by }}}} \
                 on its line: close the placeholder, as in {{{{ KEY }}}}, or write a literal \
                 {{{{ as {{{{ \"{{{{\" }}}}"
            ));
        };
        let inner = after[..close].trim_matches([' ', '\t']);
        if inner == "\"{{\"" {
            rendered.push("{{")?;
        } else {
            let Ok(key) = ConfigKey::parse(inner) else {
                let Position { line, column } = at(&mut positions);
                return Err(format!(
                    "template {name} line {line}, column {column}: {} is not a placeholder: \
                     write {{{{ KEY }}}} with a configuration key (capital letters, digits \
                     and _, like DATABASE_URL), or {{{{ \"{{{{\" }}}} for a literal {{{{",
                    shown(&template[open..open + 2 + close + 2])
                ));
            };
            match values.get(&key) {
                Some(value) => rendered.push(value)?,
                None if named.insert(key.clone()) => missing.push((key, at(&mut positions))),
                None => {}
            }
        }
        rest = open + 2 + close + 2;
    }
    rendered.push(&template[rest..])?;
    Ok(match missing.is_empty() {
        true => Ok(rendered.text),
        false => Err(TemplateError::MissingKeys(missing_keys_error(
            name, &missing,
        ))),
    })
}

/// The text rendered so far, refused past [`MAX_RENDERED_BYTES`].
struct Rendered<'a> {
    name: &'a str,
    text: String,
}

impl Rendered<'_> {
    fn push(&mut self, piece: &str) -> Result<(), String> {
        if self.text.len() + piece.len() > MAX_RENDERED_BYTES {
            return Err(format!(
                "template {} renders to more than {MAX_RENDERED_BYTES} bytes (4 MiB), the most \
                 ferry writes for one file: use each large value fewer times, or keep data out \
                 of the configuration",
                self.name
            ));
        }
        self.text.push_str(piece);
        Ok(())
    }
}

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    line: usize,
    column: usize,
}

/// Lines and columns of increasing offsets, each character counted once however many
/// positions a long line asks for.
struct Positions {
    offset: usize,
    at: Position,
}

impl Default for Positions {
    fn default() -> Positions {
        Positions {
            offset: 0,
            at: Position { line: 1, column: 1 },
        }
    }
}

impl Positions {
    /// The position of byte `offset` of `text`, at or after the last one asked for.
    fn advance(&mut self, text: &str, offset: usize) -> Position {
        for c in text[self.offset..offset].chars() {
            if c == '\n' {
                self.at = Position {
                    line: self.at.line + 1,
                    column: 1,
                };
            } else {
                self.at.column += 1;
            }
        }
        self.offset = offset;
        self.at
    }
}

/// A placeholder's text for an error, its start only when it is long.
fn shown(placeholder: &str) -> String {
    const MAX_CHARS: usize = 40;
    if placeholder.chars().count() <= MAX_CHARS {
        format!("{placeholder:?}")
    } else {
        let start: String = placeholder.chars().take(MAX_CHARS).collect();
        format!("{start:?}…")
    }
}

fn missing_keys_error(name: &str, missing: &[(ConfigKey, Position)]) -> String {
    if let [(key, Position { line, column })] = missing {
        return format!(
            "template {name} line {line}, column {column}: {key} is not set in this environment"
        );
    }
    let mut listed: Vec<String> = missing
        .iter()
        .take(MAX_NAMED_KEYS)
        .map(|(key, Position { line, column })| format!("{key} (line {line}, column {column})"))
        .collect();
    if missing.len() > MAX_NAMED_KEYS {
        listed.push(format!("and {} more", missing.len() - MAX_NAMED_KEYS));
    }
    format!(
        "template {name}: {} keys are not set in this environment: {}",
        missing.len(),
        listed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::parse_env_file;
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<ConfigKey, String> {
        pairs
            .iter()
            .map(|(key, value)| (ConfigKey::parse(key).unwrap(), value.to_string()))
            .collect()
    }

    #[test]
    fn env_file_values_are_quoted_by_what_they_hold() {
        // (name, value, how it is written)
        let cases = [
            ("empty", "", "A=\n"),
            ("word", "shop", "A=shop\n"),
            (
                "url",
                "postgres://u:p%40@db:5432/shop,x=1+2",
                "A=postgres://u:p%40@db:5432/shop,x=1+2\n",
            ),
            ("path", "/var/run/app.sock", "A=/var/run/app.sock\n"),
            ("query", "https://x/?a=1", "A='https://x/?a=1'\n"),
            ("space", "hello world", "A='hello world'\n"),
            ("leading space", " x", "A=' x'\n"),
            ("dollar", "$HOME", "A='$HOME'\n"),
            ("command", "$(rm -rf /)`id`", "A='$(rm -rf /)`id`'\n"),
            ("hash", "#not a comment", "A='#not a comment'\n"),
            ("double quote", "say \"hi\"", "A='say \"hi\"'\n"),
            ("backslash", "C:\\dir", "A='C:\\dir'\n"),
            ("unicode", "héllo ✓", "A='héllo ✓'\n"),
            ("tilde", "~/x", "A='~/x'\n"),
            ("tab", "a\tb", "A='a\tb'\n"),
            ("single quote", "it's", "A=\"it's\"\n"),
            (
                "single quote and escapes",
                "it's \"$x\" `id` \\",
                "A=\"it's \\\"\\$x\\\" \\`id\\` \\\\\"\n",
            ),
            ("newline", "line 1\nline 2", "A=\"line 1\\nline 2\"\n"),
            (
                "certificate",
                "-----BEGIN-----\nMIIB\n-----END-----\n",
                "A=\"-----BEGIN-----\\nMIIB\\n-----END-----\\n\"\n",
            ),
            ("backslash n", "a\\nb'", "A=\"a\\\\nb'\"\n"),
        ];
        for (name, value, written) in cases {
            assert_eq!(render_env_file(&values(&[("A", value)])), written, "{name}");
        }
    }

    #[test]
    fn an_env_file_has_one_sorted_line_per_key() {
        assert_eq!(render_env_file(&BTreeMap::new()), "");
        assert_eq!(
            render_env_file(&values(&[("B", "2"), ("A_2", "x y"), ("A", "1")])),
            "A=1\nA_2='x y'\nB=2\n"
        );
    }

    #[test]
    fn every_value_written_reads_back_the_same() {
        let mut cases: Vec<String> = [
            "",
            " ",
            "  both  ",
            "plain",
            "a=b=c",
            "'",
            "\"",
            "''",
            "\"\"",
            "'\"",
            "\"'\"",
            "it's",
            "\\",
            "\\\\",
            "\\n",
            "\\'",
            "a\\",
            "$",
            "${HOME}",
            "\\$",
            "`",
            "#",
            "a #b",
            "#'",
            "=",
            "\n",
            "\n\n",
            "a\nb",
            "a\r\nb",
            "\r",
            "end\\\n",
            "\t",
            "é",
            "日本語 'quoted'",
            "🦀\n🦀",
            "\u{a0}",
            "export X=1",
        ]
        .map(str::to_owned)
        .to_vec();
        // Every pair of the awkward characters, so no two of them combine badly.
        let awkward = ["'", "\"", "\\", "$", "`", "\n", " ", "#", "=", "n", "é"];
        for first in awkward {
            for second in awkward {
                cases.push(format!("{first}{second}"));
                cases.push(format!("x{first}y{second}z"));
            }
        }
        for value in cases {
            let file = render_env_file(&values(&[("K", &value)]));
            let read = parse_env_file(&file).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(read.len(), 1, "{value:?} as {file:?}");
            assert_eq!(read[0].1, value, "{value:?} as {file:?}");
        }
        let all = values(&[("A", "it's"), ("B", "x\ny"), ("C", ""), ("D", "$d")]);
        let read = parse_env_file(&render_env_file(&all)).unwrap();
        assert_eq!(read.into_iter().collect::<BTreeMap<_, _>>(), all);
    }

    #[test]
    fn missing_required_keys_are_named_in_order() {
        let key = |k: &str| ConfigKey::parse(k).unwrap();
        let set = values(&[("A", "1"), ("C", "")]);
        for (required, missing) in [
            (vec![], vec![]),
            (vec!["A", "C"], vec![]),
            (vec!["D", "A", "B"], vec!["D", "B"]),
        ] {
            let required: Vec<ConfigKey> = required.into_iter().map(key).collect();
            let missing: Vec<ConfigKey> = missing.into_iter().map(key).collect();
            assert_eq!(missing_required(&required, &set), missing, "{required:?}");
        }
    }

    #[test]
    fn templates_put_values_in_place() {
        let set = values(&[
            ("DB", "postgres://db/shop"),
            ("EMPTY", ""),
            ("BRACES", "{{ DB }}"),
            ("QUOTE", "it's \"x\" $y \\"),
            ("UNICODE", "日本語"),
        ]);
        let long_line = format!("{}{{{{DB}}}}{}", "é".repeat(100_000), "x".repeat(100_000));
        let long_rendered = format!(
            "{}postgres://db/shop{}",
            "é".repeat(100_000),
            "x".repeat(100_000)
        );
        let many = "{{ UNICODE }}".repeat(MAX_TEMPLATE_BYTES / 13);
        let many_rendered = "日本語".repeat(MAX_TEMPLATE_BYTES / 13);
        // (name, template, rendered)
        let cases = [
            ("nothing", "", ""),
            ("no placeholder", "just text\n", "just text\n"),
            ("spaced", "url = {{ DB }}\n", "url = postgres://db/shop\n"),
            ("tight", "{{DB}}", "postgres://db/shop"),
            ("tabs and spaces", "{{\t DB  \t}}", "postgres://db/shop"),
            (
                "twice",
                "{{DB}}{{ DB }}",
                "postgres://db/shoppostgres://db/shop",
            ),
            ("empty value", "[{{ EMPTY }}]", "[]"),
            ("verbatim", "'{{ QUOTE }}'", "'it's \"x\" $y \\'"),
            ("not scanned again", "{{ BRACES }}", "{{ DB }}"),
            ("unicode around", "é{{UNICODE}}✓", "é日本語✓"),
            ("literal braces", "{{ \"{{\" }} x }}", "{{ x }}"),
            ("literal braces tight", "{{\"{{\"}}", "{{"),
            ("closing alone", "}} and }", "}} and }"),
            ("single braces", "{ DB } {x}", "{ DB } {x}"),
            ("brace after", "{{ DB }}}", "postgres://db/shop}"),
            ("brace before", "{ {{ DB }}", "{ postgres://db/shop"),
            ("long line", &long_line, &long_rendered),
            ("one long line of placeholders", &many, &many_rendered),
        ];
        for (name, template, rendered) in cases {
            assert_eq!(
                render_template("app.tmpl", template, &set).as_deref(),
                Ok(rendered),
                "{name}"
            );
        }
    }

    #[test]
    fn broken_templates_are_refused_where_they_break() {
        let set = values(&[("DB", "s3cret-value")]);
        let long_tag = format!("{{{{ {} }}}}", "x".repeat(1000));
        // (name, template, what the error says)
        let cases = [
            (
                "unclosed",
                "a\nb {{ DB",
                vec![
                    "template app.tmpl line 2, column 3:",
                    "not closed",
                    "{{ \"{{\" }}",
                ],
            ),
            (
                "closed on another line",
                "{{ DB\n}}",
                vec!["line 1, column 1", "not closed"],
            ),
            (
                "triple",
                "{{{ DB }}",
                vec!["line 1, column 1", "\"{{{ DB }}\" is not a placeholder"],
            ),
            (
                "nested",
                "x {{ {{ DB }} }}",
                vec!["column 3", "\"{{ {{ DB }}\" is not a placeholder"],
            ),
            ("empty", "{{}}", vec!["\"{{}}\" is not a placeholder"]),
            ("spaces only", "{{   }}", vec!["is not a placeholder"]),
            (
                "lower case",
                "{{ db }}",
                vec!["\"{{ db }}\" is not a placeholder", "capital letters"],
            ),
            ("two keys", "{{ DB DB }}", vec!["is not a placeholder"]),
            ("filter", "{{ DB | upper }}", vec!["is not a placeholder"]),
            (
                "single-quoted literal",
                "{{ '{{' }}",
                vec!["is not a placeholder"],
            ),
            ("unicode key", "{{ ÉTÉ }}", vec!["is not a placeholder"]),
            ("unicode before", "éé\téé {{ x }}", vec!["line 1, column 7"]),
            ("long", &long_tag, vec!["…", "is not a placeholder"]),
            (
                "missing",
                "a\n  {{ API_KEY }}",
                vec!["template app.tmpl line 2, column 3: API_KEY is not set in this environment"],
            ),
            (
                "several missing",
                "{{ B }} {{ DB }}\n{{ A }} {{ B }}\n{{ C }}",
                vec![
                    "template app.tmpl: 3 keys are not set in this environment: \
                     B (line 1, column 1), A (line 2, column 1), C (line 3, column 1)",
                ],
            ),
            (
                "missing before a broken one",
                "{{ A }} {{ b }}",
                vec!["column 9", "is not a placeholder"],
            ),
        ];
        for (name, template, says) in cases {
            let error = render_template("app.tmpl", template, &set).unwrap_err();
            let missing = matches!(error, TemplateError::MissingKeys(_));
            assert_eq!(
                missing,
                name.contains("missing") && !name.contains("broken"),
                "{name}"
            );
            let error = error.to_string();
            for part in says {
                assert!(error.contains(part), "{name}: {error}");
            }
            assert!(!error.contains("s3cret"), "{name}: {error}");
        }
    }

    #[test]
    fn a_template_is_checked_without_values() {
        assert_eq!(check_template("t", "a {{ KEY }} {{ \"{{\" }} b"), Ok(()));
        for (broken, says) in [
            ("{{ KEY", "is not closed"),
            ("{{ lower }}", "is not a placeholder"),
        ] {
            let error = check_template("t", broken).unwrap_err();
            assert!(error.contains(says), "{broken}: {error}");
        }
    }

    #[test]
    fn many_missing_keys_are_counted_past_the_first_fifty() {
        let template: String = (0..60).map(|i| format!("{{{{ K{i} }}}}\n")).collect();
        let error = render_template("t", &template, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("template t: 60 keys are not set"),
            "{error}"
        );
        assert!(
            error.contains("K49 (line 50, column 1), and 10 more"),
            "{error}"
        );
        assert!(!error.contains("K50 "), "{error}");
    }

    #[test]
    fn templates_and_their_results_are_bounded() {
        let big = values(&[("BIG", &"v".repeat(64 * 1024))]);
        // (name, template, what the error says; empty: rendered)
        let cases = [
            ("largest template", "x".repeat(MAX_TEMPLATE_BYTES), ""),
            (
                "template too large",
                "x".repeat(MAX_TEMPLATE_BYTES + 1),
                "holds 1048577 bytes: a template may hold at most 1048576 bytes (1 MiB)",
            ),
            ("largest result", "{{BIG}}".repeat(64), ""),
            (
                "result too large",
                "{{BIG}}".repeat(65),
                "renders to more than 4194304 bytes (4 MiB)",
            ),
            (
                "many small values",
                "{{BIG}}".repeat(MAX_TEMPLATE_BYTES / 7),
                "renders to more than 4194304 bytes (4 MiB)",
            ),
        ];
        for (name, template, says) in cases {
            match render_template("t", &template, &big) {
                Ok(rendered) => assert!(
                    says.is_empty() && rendered.len() <= MAX_RENDERED_BYTES,
                    "{name}"
                ),
                Err(error) => assert!(
                    !says.is_empty()
                        && error.to_string().contains(says)
                        && !error.to_string().contains("vvv"),
                    "{name}: {error}"
                ),
            }
        }
    }
}
