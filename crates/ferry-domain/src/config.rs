//! Configuration per application and environment: the rules that need no I/O. Keys are
//! `[A-Z_][A-Z0-9_]*` (environment-variable names, which is how hooks and the application
//! see them), values bounded in size; `KEY=VALUE` as typed on the command line and in an
//! env file; and what differs between two environments' configurations, which names keys,
//! never values. Putting values into a release's files: `render.rs`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

mod render;

pub use render::{
    check_template, missing_required, render_env_file, render_template, TemplateError,
    MAX_RENDERED_BYTES, MAX_TEMPLATE_BYTES,
};

/// The longest key.
pub const MAX_KEY_LEN: usize = 128;
/// The largest value: a certificate or a JSON document fits, a file does not.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A configuration key, checked: `[A-Z_][A-Z0-9_]*`, at most [`MAX_KEY_LEN`] characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigKey(String);

impl ConfigKey {
    /// `text` as a key; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<ConfigKey, String> {
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if text.is_empty() {
            return Err("a configuration key cannot be empty".to_owned());
        }
        if text.len() > MAX_KEY_LEN {
            let start: String = text.chars().take(16).collect();
            return Err(format!(
                "configuration key {start:?}… is {} bytes long: at most {MAX_KEY_LEN}",
                text.len()
            ));
        }
        if !first_ok || !rest_ok {
            return Err(format!(
                "{text:?} is not a configuration key: use capital letters, digits and _, not starting with a digit (like DATABASE_URL)"
            ));
        }
        Ok(ConfigKey(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ConfigKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ConfigKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConfigKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Refuses a value of `key` over [`MAX_VALUE_BYTES`] or holding a NUL byte (which no
/// environment variable can carry); the error never quotes the value, which may be secret.
pub fn check_value(key: &ConfigKey, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the value of {key} is {} bytes: at most {MAX_VALUE_BYTES}",
            value.len()
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of {key} holds a NUL byte, which no environment variable can carry"
        ));
    }
    Ok(())
}

/// `KEY=VALUE` as typed on the command line: the value is everything after the first `=`,
/// as it is (it may be empty, and may hold `=`).
pub fn parse_assignment(text: &str) -> Result<(ConfigKey, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(format!(
            "{:?} is not KEY=VALUE: name the key, then = and the value",
            text.split('=').next().unwrap_or_default()
        ));
    };
    let key = ConfigKey::parse(key)?;
    check_value(&key, value)?;
    Ok((key, value.to_owned()))
}

/// The assignments of an env file (`--from-env-file`): one `KEY=VALUE` per line, blank lines
/// and `#` comments skipped, an optional `export ` before the key, and a value in matching
/// double or single quotes taken without them; inside double quotes, `\\`, `\"`, `\$` and
/// `` \` `` stand for the character after the backslash and `\n` for a newline (as
/// [`render_env_file`] writes them), any other backslash is kept. A key given twice is
/// refused, naming both lines. Errors name the line, never a value.
pub fn parse_env_file(text: &str) -> Result<Vec<(ConfigKey, String)>, String> {
    let mut seen: BTreeMap<ConfigKey, usize> = BTreeMap::new();
    let mut assignments = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if let Some((key, _)) = line
            .split_once('=')
            .filter(|(k, _)| k.ends_with([' ', '\t']))
        {
            return Err(format!(
                "line {number}: write {}=VALUE without spaces around =, as a shell reads it",
                key.trim_end()
            ));
        }
        let (key, value) = parse_assignment(line).map_err(|e| format!("line {number}: {e}"))?;
        let value = unquote(value.trim());
        if let Some(first) = seen.insert(key.clone(), number) {
            return Err(format!(
                "line {number}: {key} is given on line {first} already"
            ));
        }
        assignments.push((key, value.into_owned()));
    }
    Ok(assignments)
}

/// `value` without one pair of matching surrounding quotes, a double-quoted one with its
/// escapes undone.
fn unquote(value: &str) -> Cow<'_, str> {
    let quoted = |quote: char| {
        (value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote))
            .then(|| &value[1..value.len() - 1])
    };
    if let Some(inner) = quoted('"') {
        return Cow::Owned(unescape(inner));
    }
    Cow::Borrowed(quoted('\'').unwrap_or(value))
}

/// The text of a double-quoted value with `\\`, `\"`, `\$`, `` \` `` and `\n` undone.
fn unescape(inner: &str) -> String {
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next @ ('\\' | '"' | '$' | '`'))) => {
                value.push(next);
                chars.next();
            }
            ('\\', Some('n')) => {
                value.push('\n');
                chars.next();
            }
            (c, _) => value.push(c),
        }
    }
    value
}

/// One environment's configuration as a comparison sees it: each key with a fingerprint of
/// its value (a hash, never the value), so secrets can be compared without being shown.
pub type Fingerprints = BTreeMap<ConfigKey, String>;

/// How two environments' configurations differ, by key only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Keys the first has and the second lacks.
    pub only_in_first: Vec<ConfigKey>,
    /// Keys the second has and the first lacks.
    pub only_in_second: Vec<ConfigKey>,
    /// Keys both have, with different values.
    pub differ: Vec<ConfigKey>,
    /// Keys both have, with the same value.
    pub same: Vec<ConfigKey>,
}

/// What differs between `first` and `second`, each list sorted by key.
pub fn diff(first: &Fingerprints, second: &Fingerprints) -> ConfigDiff {
    let mut found = ConfigDiff::default();
    for (key, value) in first {
        match second.get(key) {
            None => found.only_in_first.push(key.clone()),
            Some(other) if other != value => found.differ.push(key.clone()),
            Some(_) => found.same.push(key.clone()),
        }
    }
    found.only_in_second = second
        .keys()
        .filter(|key| !first.contains_key(*key))
        .cloned()
        .collect();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ConfigKey {
        ConfigKey::parse(text).unwrap()
    }

    #[test]
    fn keys_are_environment_variable_names() {
        for good in ["A", "_", "DATABASE_URL", "API_KEY_2", "_PRIVATE"] {
            assert_eq!(ConfigKey::parse(good).unwrap().as_str(), good);
        }
        let long = "K".repeat(MAX_KEY_LEN + 1);
        let long_wide = "É".repeat(MAX_KEY_LEN);
        for (bad, says) in [
            ("", "cannot be empty"),
            ("database_url", "capital letters"),
            ("2FA", "not starting with a digit"),
            ("API-KEY", "capital letters"),
            ("KEY ", "capital letters"),
            ("ÉTÉ", "capital letters"),
            (long.as_str(), "at most 128"),
            (long_wide.as_str(), "at most 128"),
        ] {
            let error = ConfigKey::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn assignments_take_everything_after_the_first_equals_sign() {
        for (text, expected_key, expected_value) in [
            ("A=1", "A", "1"),
            ("EMPTY=", "EMPTY", ""),
            (
                "URL=postgres://u:p@h/db?x=1",
                "URL",
                "postgres://u:p@h/db?x=1",
            ),
            ("SPACED= a b ", "SPACED", " a b "),
        ] {
            let (key, value) = parse_assignment(text).unwrap();
            assert_eq!(
                (key.as_str(), value.as_str()),
                (expected_key, expected_value)
            );
        }
        for (bad, says) in [
            ("NOVALUE", "not KEY=VALUE"),
            ("lower=1", "capital letters"),
            ("=1", "cannot be empty"),
            ("NUL=a\0b", "NUL byte"),
        ] {
            let error = parse_assignment(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
        let big = format!("BIG={}", "x".repeat(MAX_VALUE_BYTES + 1));
        let error = parse_assignment(&big).unwrap_err();
        assert!(
            error.contains("at most 65536") && !error.contains("xxx"),
            "{error}"
        );
    }

    #[test]
    fn an_env_file_reads_like_a_shell_would_and_names_lines() {
        let text = "# database\nDATABASE_URL=postgres://db/shop\n\nexport API_KEY='s3cr=t'\nGREETING=\"hello world\"\nEMPTY=\nESCAPED=\"a\\\\b\\\"c\\$d\\`e\\nf\\tg\\\"\n";
        let read = parse_env_file(text).unwrap();
        let pairs: Vec<(&str, &str)> = read.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("DATABASE_URL", "postgres://db/shop"),
                ("API_KEY", "s3cr=t"),
                ("GREETING", "hello world"),
                ("EMPTY", ""),
                ("ESCAPED", "a\\b\"c$d`e\nf\\tg\\"),
            ]
        );
        for (bad, says) in [
            ("A=1\nA=2\n", "line 2: A is given on line 1 already"),
            ("A=1\nnot an assignment\n", "line 2:"),
            ("ok=1\n", "line 1:"),
            (
                "SPACED = no\n",
                "line 1: write SPACED=VALUE without spaces around =",
            ),
        ] {
            let error = parse_env_file(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_diff_names_keys_never_values() {
        let prints = |pairs: &[(&str, &str)]| -> Fingerprints {
            pairs.iter().map(|(k, v)| (key(k), v.to_string())).collect()
        };
        for (first, second, expected) in [
            (vec![], vec![], ConfigDiff::default()),
            (
                vec![("A", "h1"), ("B", "h2"), ("C", "h3")],
                vec![("B", "h2"), ("C", "h9"), ("D", "h4")],
                ConfigDiff {
                    only_in_first: vec![key("A")],
                    only_in_second: vec![key("D")],
                    differ: vec![key("C")],
                    same: vec![key("B")],
                },
            ),
            (
                vec![("A", "h1")],
                vec![("A", "h1")],
                ConfigDiff {
                    same: vec![key("A")],
                    ..ConfigDiff::default()
                },
            ),
        ] {
            assert_eq!(diff(&prints(&first), &prints(&second)), expected);
        }
    }
}
