//! A release's `ferry.toml`: shared paths, backup paths, paths the application changes
//! itself, hooks, the health check, and where the environment's configuration goes
//! (`[config]`, in `config_delivery.rs`). Optional: a release without one gets the defaults.
//! Anything unknown or unsafe is refused with an error naming the key, its line and column,
//! and (for an unknown key) the keys that are known.
//!
//! Pure parsing and checking, here so that every side reads the file the same way: the
//! client checks it before a release is made (`ferry check`, `ferry release create`), the
//! server checks it again when the release is created (it does not trust the client), and
//! the agent reads it to deploy.

use std::time::Duration;

use std::fmt;
use std::ops::Range;

use ferry_domain::duration::parse_duration;
use serde::Deserialize;
use toml::Spanned;

use crate::glob::Glob;
use crate::http_url::HttpUrl;
use crate::manifest::validate_path;

mod config_delivery;

use config_delivery::{check_config_delivery, RawConfigDelivery};
pub use config_delivery::{ConfigDelivery, Template};

/// The file's name, at the root of a release.
pub const CONFIG_FILE: &str = "ferry.toml";

/// The largest `ferry.toml` the agent reads: a few settings and commands take kilobytes,
/// and the file is read whole into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// How long a health check may take when `timeout` is not given.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a health check or a hook may be given: a release cannot keep a target (and
/// its deployment) busy for longer than this with one step. Longer work belongs outside the
/// deployment, started by a hook.
pub const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long each hook may run when `hooks.timeout` is not given: the most it may be given.
pub const DEFAULT_HOOK_TIMEOUT: Duration = MAX_STEP_TIMEOUT;

/// Where in a `ferry.toml` something is: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text`.
    fn of(text: &str, offset: usize) -> Location {
        let before = &text[..floor_char_boundary(text, offset)];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A `ferry.toml` that cannot be used: where, which setting (`key`, empty when the file
/// cannot be read as TOML at all) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub location: Option<Location>,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ferry.toml")?;
        if let Some(Location { line, column }) = self.location {
            write!(f, " line {line}, column {column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl ConfigError {
    /// An error about the file as a whole (its size, its encoding), not one setting.
    pub fn file(reason: impl Into<String>) -> ConfigError {
        ConfigError::new("", reason)
    }

    fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            location: None,
            key: key.into(),
            reason: reason.into(),
        }
    }

    fn at(mut self, text: &str, span: Range<usize>) -> ConfigError {
        self.location = Some(Location::of(text, span.start));
        self
    }
}

/// A release's configuration, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseConfig {
    /// Paths kept in `ROOT/apps/APP/shared/` and linked into every release.
    pub shared: Vec<String>,
    /// Paths inside `shared/` that backups cover.
    pub backup: Vec<String>,
    /// Patterns of paths the application changes itself: not drift, never hard-linked.
    pub ignore: Vec<Glob>,
    pub hooks: Hooks,
    /// `None`: no health check, the switch alone decides.
    pub health: Option<HealthCheck>,
    /// `[config]`: the files ferry writes into the release from the environment's
    /// configuration, and the keys it must have.
    pub config: ConfigDelivery,
}

/// Shell commands run with `sh -c` in the new release's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    pub before_switch: Option<String>,
    pub after_switch: Option<String>,
    pub pre_backup: Option<String>,
    /// How long each hook may run before it is killed and counts as failed (`timeout`, at
    /// most [`MAX_STEP_TIMEOUT`]).
    pub timeout: Duration,
    /// How long `pre_backup` may run (`pre_backup_timeout`, at most [`MAX_STEP_TIMEOUT`]):
    /// a database dump may take longer than a switch's hooks; `timeout` when not given.
    pub pre_backup_timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            before_switch: None,
            after_switch: None,
            pre_backup: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
            pre_backup_timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    before_switch: Option<Spanned<String>>,
    after_switch: Option<Spanned<String>>,
    pre_backup: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    pre_backup_timeout: Option<Spanned<String>>,
}

/// How to tell the new release works, and for how long to keep trying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub probe: Probe,
    /// `timeout`, written as every duration ferry reads (`ferry_domain::duration`, the
    /// README's "Durations"), more than zero.
    pub timeout: Duration,
}

/// One attempt of a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A shell command; exit status 0 is healthy.
    Command(String),
    /// A plain HTTP GET; a 2xx status is healthy.
    Url(HttpUrl),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    shared: Vec<Spanned<String>>,
    #[serde(default)]
    backup: Vec<Spanned<String>>,
    #[serde(default)]
    ignore: Vec<Spanned<String>>,
    #[serde(default)]
    hooks: RawHooks,
    health: Option<RawHealth>,
    #[serde(default)]
    config: RawConfigDelivery,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    command: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl ReleaseConfig {
    /// Parses and checks the content of a `ferry.toml` file: at most [`MAX_CONFIG_BYTES`],
    /// UTF-8, then [`ReleaseConfig::parse`].
    pub fn parse_bytes(data: &[u8]) -> Result<ReleaseConfig, ConfigError> {
        ReleaseConfig::check_size(data.len() as u64)?;
        let text = std::str::from_utf8(data)
            .map_err(|_| ConfigError::file("the file is not UTF-8 text"))?;
        ReleaseConfig::parse(text)
    }

    /// Refuses a `ferry.toml` of `len` bytes past [`MAX_CONFIG_BYTES`]: checked before it is
    /// read, wherever it comes from.
    pub fn check_size(len: u64) -> Result<(), ConfigError> {
        if len > MAX_CONFIG_BYTES {
            return Err(ConfigError::file(format!(
                "the file holds {len} bytes; a ferry.toml may hold at most {MAX_CONFIG_BYTES} \
                 bytes (1 MiB): keep data out of it"
            )));
        }
        Ok(())
    }

    /// Parses and checks the text of a `ferry.toml`.
    pub fn parse(text: &str) -> Result<ReleaseConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml names the key in its message, and serde the known ones ("unknown field
            // `x`, expected one of ...").
            let error = ConfigError::file(e.message().trim());
            match e.span() {
                Some(span) => error.at(text, span),
                None => error,
            }
        })?;
        let shared = check_shared(text, raw.shared)?;
        let backup = check_backup(text, raw.backup, &shared)?;
        let pre_backup_span = [
            ("hooks.pre_backup", &raw.hooks.pre_backup),
            ("hooks.pre_backup_timeout", &raw.hooks.pre_backup_timeout),
        ]
        .into_iter()
        .find_map(|(key, setting)| setting.as_ref().map(|s| (key, s.span())));
        let ignore = check_ignore(text, raw.ignore)?;
        let hooks = check_hooks(text, raw.hooks)?;
        if let (Some((key, span)), true) = (pre_backup_span, backup.is_empty()) {
            return Err(ConfigError::new(
                key,
                "no `backup` path is set, so no backup is ever taken and this would never run: \
                 list the paths to back up in `backup`, or remove it",
            )
            .at(text, span));
        }
        let mut config = ReleaseConfig {
            shared,
            backup,
            ignore,
            hooks,
            health: raw.health.map(|h| check_health(text, h)).transpose()?,
            config: ConfigDelivery::default(),
        };
        config.config = check_config_delivery(text, raw.config, &config)?;
        Ok(config)
    }

    /// Whether `path` is one of the shared paths or inside one.
    pub fn is_shared(&self, path: &str) -> bool {
        self.shared.iter().any(|shared| is_within(path, shared))
    }

    /// Whether `path` matches an `ignore` pattern.
    pub fn is_ignored(&self, path: &str) -> bool {
        self.ignore.iter().any(|glob| glob.matches(path))
    }

    /// Whether the application writes `path` itself (shared or ignored), so it keeps its
    /// write permission on the target.
    pub fn is_written_by_application(&self, path: &str) -> bool {
        self.is_shared(path) || self.is_ignored(path)
    }
}

/// Whether `path` is `ancestor` or lies below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn check_paths(
    text: &str,
    key: &str,
    paths: Vec<Spanned<String>>,
) -> Result<Vec<String>, ConfigError> {
    for (i, path) in paths.iter().enumerate() {
        validate_path(path.get_ref()).map_err(|reason| {
            ConfigError::new(
                format!("{key}[{i}]"),
                format!("{:?}: {reason}", path.get_ref()),
            )
            .at(text, path.span())
        })?;
    }
    Ok(paths.into_iter().map(Spanned::into_inner).collect())
}

fn check_shared(text: &str, paths: Vec<Spanned<String>>) -> Result<Vec<String>, ConfigError> {
    let spans: Vec<Range<usize>> = paths.iter().map(Spanned::span).collect();
    let mut paths = check_paths(text, "shared", paths)?;
    for (i, path) in paths.iter().enumerate() {
        let error = |reason: String| {
            ConfigError::new(format!("shared[{i}]"), reason).at(text, spans[i].clone())
        };
        if path == CONFIG_FILE {
            return Err(error(
                "ferry.toml itself cannot be shared: it is part of the release".into(),
            ));
        }
        if let Some(other) = paths
            .iter()
            .enumerate()
            .find(|(j, other)| *j != i && is_within(path, other))
        {
            return Err(error(format!(
                "{path:?} lies within {:?}, also shared",
                other.1
            )));
        }
    }
    paths.sort();
    Ok(paths)
}

/// Backup paths: checked like shared paths, and each one a shared path or inside one (a
/// backup covers `shared/` only; a path outside it would give empty backups, silently).
fn check_backup(
    text: &str,
    paths: Vec<Spanned<String>>,
    shared: &[String],
) -> Result<Vec<String>, ConfigError> {
    let spans: Vec<Range<usize>> = paths.iter().map(Spanned::span).collect();
    let paths = check_paths(text, "backup", paths)?;
    for (i, path) in paths.iter().enumerate() {
        if shared.iter().any(|shared| is_within(path, shared)) {
            continue;
        }
        let reason = if shared.is_empty() {
            format!(
                "{path:?} is not shared: backups cover paths inside shared/ only, and no \
                 `shared` path is set; add it to `shared`"
            )
        } else {
            format!(
                "{path:?} is not a shared path nor inside one: backups cover paths inside \
                 shared/ only, and the shared paths are {shared:?}; name one of them or a \
                 path inside it, or add it to `shared`"
            )
        };
        return Err(ConfigError::new(format!("backup[{i}]"), reason).at(text, spans[i].clone()));
    }
    Ok(paths)
}

fn check_ignore(text: &str, patterns: Vec<Spanned<String>>) -> Result<Vec<Glob>, ConfigError> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, spanned)| {
            let pattern = spanned.get_ref();
            let error = |reason: String| {
                ConfigError::new(format!("ignore[{i}]"), reason).at(text, spanned.span())
            };
            if pattern.starts_with('/') || pattern.split('/').any(|c| c == "..") {
                return Err(error(format!(
                    "{pattern:?}: patterns are relative to the release, without '..'"
                )));
            }
            Glob::new(pattern).ok_or_else(|| error("the pattern is empty".into()))
        })
        .collect()
}

fn check_hooks(text: &str, hooks: RawHooks) -> Result<Hooks, ConfigError> {
    for (key, command) in [
        ("hooks.before_switch", &hooks.before_switch),
        ("hooks.after_switch", &hooks.after_switch),
        ("hooks.pre_backup", &hooks.pre_backup),
    ] {
        if let Some(command) = command.as_ref().filter(|c| c.get_ref().trim().is_empty()) {
            return Err(ConfigError::new(key, "the command is empty").at(text, command.span()));
        }
    }
    let timeout = check_timeout(text, "hooks.timeout", hooks.timeout, DEFAULT_HOOK_TIMEOUT)?;
    Ok(Hooks {
        timeout,
        pre_backup_timeout: check_timeout(
            text,
            "hooks.pre_backup_timeout",
            hooks.pre_backup_timeout,
            timeout,
        )?,
        before_switch: hooks.before_switch.map(Spanned::into_inner),
        after_switch: hooks.after_switch.map(Spanned::into_inner),
        pre_backup: hooks.pre_backup.map(Spanned::into_inner),
    })
}

/// A `timeout` setting: a duration more than zero and at most [`MAX_STEP_TIMEOUT`];
/// `default` when not given.
fn check_timeout(
    file: &str,
    key: &str,
    setting: Option<Spanned<String>>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(setting) = setting else {
        return Ok(default);
    };
    let error = |reason: String| ConfigError::new(key, reason).at(file, setting.span());
    let text = setting.get_ref();
    let timeout = parse_duration(text).map_err(error)?;
    if timeout.is_zero() {
        return Err(error(format!(
            "{text:?}: the duration must be more than zero"
        )));
    }
    if timeout > MAX_STEP_TIMEOUT {
        return Err(error(format!(
            "{text:?} is longer than ferry allows for one step, 10m: a deployment must not \
                 wait on one check or hook for longer; shorten it, and start longer work in the \
                 background from a hook"
        )));
    }
    Ok(timeout)
}

fn check_health(text: &str, raw: RawHealth) -> Result<HealthCheck, ConfigError> {
    let probe = match (raw.command, raw.url) {
        (Some(_), Some(url)) => {
            return Err(
                ConfigError::new("health", "set one of `command` or `url`, not both")
                    .at(text, url.span()),
            )
        }
        (None, None) => {
            let error = ConfigError::new("health", "set one of `command` or `url`");
            return Err(match &raw.timeout {
                Some(timeout) => error.at(text, timeout.span()),
                None => error,
            });
        }
        (Some(command), None) if command.get_ref().trim().is_empty() => {
            return Err(
                ConfigError::new("health.command", "the command is empty").at(text, command.span())
            )
        }
        (Some(command), None) => Probe::Command(command.into_inner()),
        (None, Some(url)) => Probe::Url(
            HttpUrl::parse(url.get_ref())
                .map_err(|reason| ConfigError::new("health.url", reason).at(text, url.span()))?,
        ),
    };
    let timeout = check_timeout(text, "health.timeout", raw.timeout, DEFAULT_HEALTH_TIMEOUT)?;
    Ok(HealthCheck { probe, timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_example_parses() {
        let config = ReleaseConfig::parse(
            r#"
shared = ["uploads", "config/local.ini"]
backup = ["uploads"]
ignore = ["cache/**"]

[hooks]
before_switch = "./bin/migrate"
after_switch = "systemctl reload php-fpm"
pre_backup = "sqlite3 ../../shared/app.db '.backup ../../shared/app.db.bak'"

[health]
url = "http://127.0.0.1:8080/health"
timeout = "30s"
"#,
        )
        .unwrap();
        assert_eq!(config.shared, ["config/local.ini", "uploads"]);
        assert_eq!(config.backup, ["uploads"]);
        assert!(config.is_ignored("cache/x") && !config.is_ignored("src/x"));
        assert!(config.is_shared("uploads/a.png") && !config.is_shared("uploadsx"));
        assert_eq!(config.hooks.before_switch.as_deref(), Some("./bin/migrate"));
        assert_eq!(config.hooks.timeout, DEFAULT_HOOK_TIMEOUT);
        assert_eq!(config.hooks.pre_backup_timeout, DEFAULT_HOOK_TIMEOUT);
        let hooks = ReleaseConfig::parse(
            "shared = [\"db\"]\nbackup = [\"db\"]\n[hooks]\ntimeout = \"1m\"\npre_backup_timeout = \"5m\"",
        )
        .unwrap()
        .hooks;
        assert_eq!(
            (hooks.timeout, hooks.pre_backup_timeout),
            (Duration::from_secs(60), Duration::from_secs(300))
        );
        let hooks = ReleaseConfig::parse("[hooks]\ntimeout = \"1m\"")
            .unwrap()
            .hooks;
        assert_eq!(
            hooks.pre_backup_timeout,
            Duration::from_secs(60),
            "timeout by default"
        );
        let health = config.health.unwrap();
        assert_eq!(health.timeout, Duration::from_secs(30));
        assert!(matches!(
            health.probe,
            Probe::Url(HttpUrl { port: 8080, .. })
        ));
    }

    #[test]
    fn defaults() {
        assert_eq!(ReleaseConfig::parse("").unwrap(), ReleaseConfig::default());
        let config = ReleaseConfig::parse("[health]\ncommand = \"true\"").unwrap();
        assert_eq!(
            config.health,
            Some(HealthCheck {
                probe: Probe::Command("true".into()),
                timeout: DEFAULT_HEALTH_TIMEOUT
            })
        );
    }

    #[test]
    fn bad_files_are_refused_naming_the_key() {
        let cases = [
            ("sharde = []", "line 1", "unknown field `sharde`"),
            (
                "[hooks]\nbefore = \"x\"",
                "line 2",
                "unknown field `before`",
            ),
            (
                "[health]\ncommand = \"x\"\nretries = 3",
                "line 3",
                "unknown field `retries`",
            ),
            ("shared = \"uploads\"", "line 1", "invalid type"),
            ("shared = [\"/var/data\"]", "shared[0]", "absolute"),
            ("shared = [\"a\", \"../up\"]", "shared[1]", "'..'"),
            ("shared = [\"a/\"]", "shared[0]", "empty component"),
            (
                "shared = [\"a\", \"a/b\"]",
                "shared[1]",
                "lies within \"a\"",
            ),
            ("shared = [\"ferry.toml\"]", "shared[0]", "cannot be shared"),
            ("backup = [\"/etc\"]", "backup[0]", "absolute"),
            ("ignore = [\"../x\"]", "ignore[0]", "without '..'"),
            ("ignore = [\"\"]", "ignore[0]", "empty"),
            (
                "[hooks]\nafter_switch = \" \"",
                "hooks.after_switch",
                "empty",
            ),
            (
                "[health]\ncommand = \"a\"\nurl = \"http://x\"",
                "health",
                "not both",
            ),
            ("[health]\ntimeout = \"5s\"", "health", "one of"),
            (
                "[health]\nurl = \"https://x/\"",
                "health.url",
                "https is not supported",
            ),
            (
                "[health]\nurl = \"localhost:80\"",
                "health.url",
                "not an http:// URL",
            ),
            (
                "[health]\ncommand = \"x\"\ntimeout = \"30\"",
                "health.timeout",
                "not a duration",
            ),
            (
                "[health]\ncommand = \"x\"\ntimeout = \"0s\"",
                "health.timeout",
                "more than zero",
            ),
            (
                "[health]\ncommand = \"x\"\ntimeout = \"10m1s\"",
                "health.timeout",
                "longer than ferry allows for one step, 10m",
            ),
            (
                "[hooks]\nbefore_switch = \"x\"\ntimeout = \"1h\"",
                "hooks.timeout",
                "longer than ferry allows for one step, 10m",
            ),
            (
                "[hooks]\ntimeout = \"0s\"",
                "hooks.timeout",
                "more than zero",
            ),
            (
                "[hooks]\ntimeout = \"soon\"",
                "hooks.timeout",
                "invalid duration",
            ),
            (
                "shared = [\"db\"]\nbackup = [\"db\"]\n[hooks]\npre_backup = \"x\"\npre_backup_timeout = \"11m\"",
                "hooks.pre_backup_timeout",
                "longer than ferry allows for one step, 10m",
            ),
        ];
        for (text, key, reason) in cases {
            let error = ReleaseConfig::parse(text).unwrap_err();
            match key.strip_prefix("line ") {
                Some(line) => {
                    assert_eq!(error.key, "", "{text}: {error}");
                    assert_eq!(
                        error.location.map(|l| l.line.to_string()).as_deref(),
                        Some(line),
                        "{text}: {error}"
                    );
                }
                None => assert_eq!(error.key, key, "{text}: {error}"),
            }
            assert!(error.reason.contains(reason), "{text}: {error}");
            assert!(error.to_string().starts_with("ferry.toml"));
        }
    }

    #[test]
    fn backup_paths_are_shared_paths_or_inside_one() {
        let accepted = [
            (
                "shared = [\"uploads\"]\nbackup = [\"uploads\"]",
                vec!["uploads"],
            ),
            (
                "shared = [\"uploads\", \"db\"]\nbackup = [\"uploads/images\", \"db\"]",
                vec!["uploads/images", "db"],
            ),
            ("shared = [\"uploads\"]", vec![]),
            (
                "shared = [\"db\"]\nbackup = [\"db\"]\n[hooks]\npre_backup = \"dump\"",
                vec!["db"],
            ),
        ];
        for (text, backup) in accepted {
            let config = ReleaseConfig::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.backup, backup, "{text}");
        }
        // (file, key, line, column, what the reason says)
        let refused = [
            (
                "shared = [\"uploads\"]\nbackup = [\"upload\"]",
                "backup[0]",
                2,
                11,
                vec!["\"upload\" is not a shared path", "[\"uploads\"]"],
            ),
            (
                "backup = [\"data\"]",
                "backup[0]",
                1,
                11,
                vec!["\"data\" is not shared", "no `shared` path is set"],
            ),
            (
                "shared = [\"uploads\", \"db\"]\nbackup = [\"db\", \"uploadsx\"]",
                "backup[1]",
                2,
                17,
                vec!["\"uploadsx\"", "[\"db\", \"uploads\"]"],
            ),
            (
                "shared = [\"uploads/images\"]\nbackup = [\"uploads\"]",
                "backup[0]",
                2,
                11,
                vec!["\"uploads\" is not a shared path"],
            ),
            (
                "shared = [\"db\"]\n[hooks]\npre_backup = \"dump\"",
                "hooks.pre_backup",
                3,
                14,
                vec!["no `backup` path is set", "never run"],
            ),
            (
                "[hooks]\npre_backup_timeout = \"5m\"",
                "hooks.pre_backup_timeout",
                2,
                22,
                vec!["no `backup` path is set"],
            ),
        ];
        for (text, key, line, column, reasons) in refused {
            let error = ReleaseConfig::parse(text).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
            assert_eq!(
                error.location,
                Some(Location { line, column }),
                "{text}: {error}"
            );
            for reason in reasons {
                assert!(error.reason.contains(reason), "{text}: {error}");
            }
        }
    }

    #[test]
    fn errors_give_the_line_the_column_and_the_known_keys() {
        let error = ReleaseConfig::parse("shared = []\n[helth]\ncommand = \"x\"\n").unwrap_err();
        assert_eq!(error.location, Some(Location { line: 2, column: 2 }));
        assert!(
            error.to_string().contains(
                "unknown field `helth`, expected one of `shared`, `backup`, `ignore`, `hooks`, `health`, `config`"
            ),
            "{error}"
        );
        let error = ReleaseConfig::parse("[hooks]\n  before_swich = \"x\"").unwrap_err();
        assert_eq!(error.location, Some(Location { line: 2, column: 3 }));
        assert!(error.reason.contains("`before_switch`"), "{error}");
        let error =
            ReleaseConfig::parse("[health]\ncommand = \"x\"\ntimeout = \"11m\"").unwrap_err();
        assert_eq!(
            error.location,
            Some(Location {
                line: 3,
                column: 11
            })
        );
        assert!(
            error
                .to_string()
                .starts_with("ferry.toml line 3, column 11: health.timeout: \"11m\" is longer"),
            "{error}"
        );
        let error = ReleaseConfig::parse("# é\nshared = [\"é\", \"/x\"]").unwrap_err();
        assert_eq!(
            error.location,
            Some(Location {
                line: 2,
                column: 16
            })
        );
    }

    #[test]
    fn health_timeouts_are_durations_as_the_command_line_reads_them() {
        let timeout = |text: &str| {
            ReleaseConfig::parse(&format!("[health]\ncommand = \"x\"\ntimeout = {text:?}"))
                .map(|config| config.health.unwrap().timeout)
        };
        for (text, millis) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("10m", 600_000),
            ("10 s", 10_000),
            ("1m30s", 90_000),
        ] {
            assert_eq!(timeout(text), Ok(Duration::from_millis(millis)), "{text}");
        }
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "10",
            "10 days",
            "99999999999999999999h",
            "0s",
            "1h",
            "1d",
        ] {
            let error = timeout(bad).unwrap_err();
            assert_eq!(error.key, "health.timeout", "{bad}: {error}");
        }
    }
}
