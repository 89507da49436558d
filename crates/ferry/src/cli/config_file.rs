//! `--config FILE` for `ferry server` and `ferry agent`: a TOML file whose every key is one
//! of the command's long flags (`listen = "0.0.0.0:7070"`, `tls = true`,
//! `tls-name = ["ferry.example.com"]`). Its values become the flags' defaults, so a flag on
//! the command line wins, then the flag's environment variable, then the file. Values are
//! checked by the same parsers as the flags; every problem is reported with its line and
//! column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::ArgAction;
use toml::{Spanned, Value};

/// One setting of a config file: a flag and what it is given.
#[derive(Debug)]
struct Setting {
    key: Spanned<String>,
    values: Vec<String>,
    /// `FILE:LINE:COLUMN` of its key.
    at: String,
}

/// A config file read and checked against the command it configures.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    settings: Vec<Setting>,
}

/// What is wrong with a config file: each problem as `FILE:LINE:COLUMN: what`, in the
/// order of the file.
#[derive(Debug)]
pub struct ConfigError {
    path: PathBuf,
    problems: Vec<String>,
}

impl ConfigError {
    /// A problem of the file as a whole, such as a setting the command refuses.
    pub fn whole(path: &Path, problem: impl fmt::Display) -> ConfigError {
        ConfigError {
            path: path.to_owned(),
            problems: vec![format!("{}: {problem}", path.display())],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not valid:", self.path.display())?;
        for problem in &self.problems {
            write!(f, "\n{problem}")?;
        }
        Ok(())
    }
}

impl ConfigFile {
    /// Reads `path` and checks it against `command` (the `server` or `agent` subcommand as
    /// the command-line definition has it): syntax, keys, values, and flags that conflict.
    pub fn read(path: &Path, command: &clap::Command) -> Result<ConfigFile, ConfigError> {
        let fail = |problems| ConfigError {
            path: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::whole(path, format!("cannot read the config file: {e}")))?;
        let at = |(offset, message): (usize, String)| {
            let (line, column) = line_and_column(&text, offset);
            format!("{}:{line}:{column}: {message}", path.display())
        };
        let table: BTreeMap<Spanned<String>, Spanned<Value>> =
            toml::from_str(&text).map_err(|e| {
                let offset = e.span().map_or(0, |span| span.start);
                let message = e.message().trim().lines().collect::<Vec<_>>().join("; ");
                fail(vec![at((offset, message))])
            })?;
        let mut settings = Vec::new();
        let mut problems = Vec::new();
        let base = path.parent().unwrap_or(Path::new("."));
        for (key, value) in table {
            let value_at = value.span().start;
            match setting_of(command, key.get_ref(), value.into_inner(), base) {
                Ok(values) => {
                    let (line, column) = line_and_column(&text, key.span().start);
                    let at = format!("{}:{line}:{column}", path.display());
                    settings.push(Setting { key, values, at })
                }
                Err(Problem::Key(message)) => problems.push((key.span().start, message)),
                Err(Problem::Value(message)) => problems.push((value_at, message)),
            }
        }
        let file = ConfigFile {
            path: path.to_owned(),
            settings,
        };
        if problems.is_empty() {
            if let Err(problem) = file.conflicts(command) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            return Ok(file);
        }
        problems.sort();
        Err(fail(problems.into_iter().map(at).collect()))
    }

    /// `problem`, found in the settings as a whole (a value the command refuses), at the
    /// key of the first setting it names, by its flag (`--heartbeat-every`) or its quoted
    /// value, or of the file.
    pub fn problem(&self, problem: &str) -> ConfigError {
        let named = self.settings.iter().find(|s| {
            problem.contains(&format!("--{}", s.key.get_ref()))
                || s.values.iter().any(|v| problem.contains(&format!("{v:?}")))
        });
        match named {
            Some(setting) => ConfigError {
                path: self.path.clone(),
                problems: vec![format!("{}: {problem}", setting.at)],
            },
            None => ConfigError::whole(&self.path, problem),
        }
    }

    /// The value of `key` in the file, when it holds one value.
    pub fn value(&self, key: &str) -> Option<&str> {
        match self
            .settings
            .iter()
            .find(|s| s.key.get_ref() == key)?
            .values
            .as_slice()
        {
            [value] => Some(value),
            _ => None,
        }
    }

    /// How many settings the file holds.
    pub fn len(&self) -> usize {
        self.settings.len()
    }

    /// `command` with the file's values as its flags' defaults: a flag given on the command
    /// line or by its environment variable wins over the file.
    pub fn apply(&self, command: clap::Command) -> clap::Command {
        command.mut_args(|arg| {
            let Some(setting) = self
                .settings
                .iter()
                .find(|s| arg.get_long() == Some(s.key.get_ref().as_str()))
            else {
                return arg;
            };
            // A required flag the file gives is no longer required on the command line.
            arg.required(false).default_values(setting.values.clone())
        })
    }

    /// The first pair of settings that may not go together (`tls` and `insecure`), as clap
    /// would say it were they flags, at the later one's key.
    fn conflicts(&self, command: &clap::Command) -> Result<(), (usize, String)> {
        let mut args = vec![command.get_name().to_owned()];
        for setting in &self.settings {
            let flag = format!("--{}", setting.key.get_ref());
            if is_flag(command, setting.key.get_ref()) {
                if setting.values == ["true"] {
                    args.push(flag);
                }
                continue;
            }
            for value in &setting.values {
                args.push(format!("{flag}={value}"));
            }
        }
        let Err(error) = command.clone().try_get_matches_from(args) else {
            return Ok(());
        };
        if error.kind() == clap::error::ErrorKind::MissingRequiredArgument {
            // What the file leaves out may come from the command line.
            return Ok(());
        }
        let named = |setting: &&Setting| {
            error
                .get(clap::error::ContextKind::InvalidArg)
                .is_some_and(|arg| {
                    arg.to_string()
                        .contains(&format!("--{}", setting.key.get_ref()))
                })
        };
        let offset = self
            .settings
            .iter()
            .filter(named)
            .map(|s| s.key.span().start)
            .max()
            .unwrap_or(0);
        let message = first_line(&error.render().to_string());
        Err((offset, message.trim_start_matches("error: ").to_owned()))
    }
}

/// What a key's problem is about: the key itself or its value.
enum Problem {
    Key(String),
    Value(String),
}

/// The flag values `key = value` stands for, checked by the flag's own parser; a relative
/// path is relative to `base`, the file's directory.
fn setting_of(
    command: &clap::Command,
    key: &str,
    value: Value,
    base: &Path,
) -> Result<Vec<String>, Problem> {
    let keys = keys(command);
    let Some(arg) = command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(key) && keys.contains(&key))
    else {
        return Err(Problem::Key(format!(
            "unknown key `{key}`: the keys are {}{}",
            keys.join(", "),
            suggestion(key, &keys)
        )));
    };
    let many = matches!(arg.get_action(), ArgAction::Append);
    let flag = is_flag(command, key);
    let values = match value {
        Value::Boolean(b) if flag => vec![b.to_string()],
        Value::String(s) if !flag => vec![s],
        Value::Integer(i) if !flag => vec![i.to_string()],
        Value::Array(items) if many => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(Problem::Value(format!(
                    "`{key}` takes a list of strings, not {}",
                    other.type_str()
                ))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            let expected = if flag {
                "true or false"
            } else if many {
                "a string or a list of strings"
            } else {
                "a string"
            };
            return Err(Problem::Value(format!(
                "`{key}` takes {expected}, not {}",
                other.type_str()
            )));
        }
    };
    if flag {
        return Ok(values);
    }
    for value in &values {
        parse_alone(command, key, value).map_err(Problem::Value)?;
    }
    let is_path =
        arg.get_value_parser().type_id() == clap::builder::ValueParser::path_buf().type_id();
    if !is_path {
        return Ok(values);
    }
    Ok(values
        .into_iter()
        .map(|value| match Path::new(&value).is_relative() {
            true => base.join(&value).display().to_string(),
            false => value,
        })
        .collect())
}

/// Parses `--key=value` alone, as clap would on the command line: the flag's own parser
/// says whether it takes `value`.
fn parse_alone(command: &clap::Command, key: &str, value: &str) -> Result<(), String> {
    let line = [command.get_name().to_owned(), format!("--{key}={value}")];
    match command.clone().try_get_matches_from(line) {
        Ok(_) => Ok(()),
        // What other flags must come with it is not this value's problem.
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => Ok(()),
        Err(e) => Err(format!(
            "`{key}`: {}",
            first_line(&e.render().to_string()).trim_start_matches("error: ")
        )),
    }
}

/// The keys a config file for `command` may hold: its long flags, except the hidden ones and
/// those that are not settings (`--config`, `--check-upgrade`).
pub fn keys(command: &clap::Command) -> Vec<&str> {
    command
        .get_arguments()
        .filter(|arg| (!arg.is_hide_set() && !arg.is_global_set()) || reads_global(command, arg))
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "config" | "check-upgrade" | "help" | "version"))
        .collect()
}

/// Whether `command` (the agent) reads the global flag `arg` (`--server`).
fn reads_global(command: &clap::Command, arg: &clap::Arg) -> bool {
    command.get_name() == "agent" && arg.get_long() == Some("server")
}

/// Whether `--key` is a switch, given or not, rather than a flag with a value.
fn is_flag(command: &clap::Command, key: &str) -> bool {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(key))
        .is_some_and(|arg| matches!(arg.get_action(), ArgAction::SetTrue))
}

/// "; did you mean `listen`?" when one key is a letter or two from `key`.
fn suggestion(key: &str, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let replaced = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        for (offset, expected) in [(0, (1, 1)), (4, (1, 5)), (6, (2, 1)), (11, (2, 5))] {
            assert_eq!(line_and_column(text, offset), expected, "offset {offset}");
        }
    }

    #[test]
    fn a_near_miss_is_suggested() {
        let keys = ["listen", "data", "tls"];
        for (key, expected) in [
            ("lisen", "; did you mean `listen`?"),
            ("dta", "; did you mean `data`?"),
            ("database-url", ""),
        ] {
            assert_eq!(suggestion(key, &keys), expected, "{key}");
        }
    }
}
