//! A release's `ferry.toml`: shared paths, backup paths, paths the application changes
//! itself, hooks and the health check. Optional: a release without one gets the defaults.
//! Anything unknown or unsafe is refused with an error naming the key, before anything on
//! the target is touched.

use std::time::Duration;

use ferry_cas::manifest::validate_path;
use ferry_domain::duration::parse_duration;
use serde::Deserialize;

use crate::glob::Glob;
use crate::http::HttpUrl;

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

/// A `ferry.toml` that cannot be used; `key` names the offending setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ferry.toml: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
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
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            before_switch: None,
            after_switch: None,
            pre_backup: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    before_switch: Option<String>,
    after_switch: Option<String>,
    pre_backup: Option<String>,
    timeout: Option<String>,
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
    shared: Vec<String>,
    #[serde(default)]
    backup: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    hooks: RawHooks,
    health: Option<RawHealth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    command: Option<String>,
    url: Option<String>,
    timeout: Option<String>,
}

impl ReleaseConfig {
    /// Parses and checks the text of a `ferry.toml`.
    pub fn parse(text: &str) -> Result<ReleaseConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml names the key in its message ("unknown field `x`", "invalid type ...").
            let message = e.message().trim().to_owned();
            let key = e
                .span()
                .map(|span| line_of(text, span.start))
                .map_or_else(|| "(file)".to_owned(), |line| format!("line {line}"));
            ConfigError::new(key, message)
        })?;
        Ok(ReleaseConfig {
            shared: check_shared(raw.shared)?,
            backup: check_paths("backup", raw.backup)?,
            ignore: check_ignore(raw.ignore)?,
            hooks: check_hooks(raw.hooks)?,
            health: raw.health.map(check_health).transpose()?,
        })
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

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn check_paths(key: &str, paths: Vec<String>) -> Result<Vec<String>, ConfigError> {
    for (i, path) in paths.iter().enumerate() {
        validate_path(path).map_err(|reason| {
            ConfigError::new(format!("{key}[{i}]"), format!("{path:?}: {reason}"))
        })?;
    }
    Ok(paths)
}

fn check_shared(paths: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut paths = check_paths("shared", paths)?;
    for (i, path) in paths.iter().enumerate() {
        if path == CONFIG_FILE {
            return Err(ConfigError::new(
                format!("shared[{i}]"),
                "ferry.toml itself cannot be shared: it is part of the release",
            ));
        }
        if let Some(other) = paths
            .iter()
            .enumerate()
            .find(|(j, other)| *j != i && is_within(path, other))
        {
            return Err(ConfigError::new(
                format!("shared[{i}]"),
                format!("{path:?} lies within {:?}, also shared", other.1),
            ));
        }
    }
    paths.sort();
    Ok(paths)
}

fn check_ignore(patterns: Vec<String>) -> Result<Vec<Glob>, ConfigError> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, pattern)| {
            let key = || format!("ignore[{i}]");
            if pattern.starts_with('/') || pattern.split('/').any(|c| c == "..") {
                return Err(ConfigError::new(
                    key(),
                    format!("{pattern:?}: patterns are relative to the release, without '..'"),
                ));
            }
            Glob::new(pattern).ok_or_else(|| ConfigError::new(key(), "the pattern is empty"))
        })
        .collect()
}

fn check_hooks(hooks: RawHooks) -> Result<Hooks, ConfigError> {
    for (key, command) in [
        ("hooks.before_switch", &hooks.before_switch),
        ("hooks.after_switch", &hooks.after_switch),
        ("hooks.pre_backup", &hooks.pre_backup),
    ] {
        if command.as_ref().is_some_and(|c| c.trim().is_empty()) {
            return Err(ConfigError::new(key, "the command is empty"));
        }
    }
    Ok(Hooks {
        timeout: check_timeout("hooks.timeout", hooks.timeout, DEFAULT_HOOK_TIMEOUT)?,
        before_switch: hooks.before_switch,
        after_switch: hooks.after_switch,
        pre_backup: hooks.pre_backup,
    })
}

/// A `timeout` setting: a duration more than zero and at most [`MAX_STEP_TIMEOUT`];
/// `default` when not given.
fn check_timeout(
    key: &str,
    text: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let timeout = parse_duration(&text).map_err(|reason| ConfigError::new(key, reason))?;
    if timeout.is_zero() {
        return Err(ConfigError::new(
            key,
            format!("{text:?}: the duration must be more than zero"),
        ));
    }
    if timeout > MAX_STEP_TIMEOUT {
        return Err(ConfigError::new(
            key,
            format!(
                "{text:?} is longer than ferry allows for one step, 10m: a deployment must not \
                 wait on one check or hook for longer; shorten it, and start longer work in the \
                 background from a hook"
            ),
        ));
    }
    Ok(timeout)
}

fn check_health(raw: RawHealth) -> Result<HealthCheck, ConfigError> {
    let probe = match (raw.command, raw.url) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "health",
                "set one of `command` or `url`, not both",
            ))
        }
        (None, None) => return Err(ConfigError::new("health", "set one of `command` or `url`")),
        (Some(command), None) if command.trim().is_empty() => {
            return Err(ConfigError::new("health.command", "the command is empty"))
        }
        (Some(command), None) => Probe::Command(command),
        (None, Some(url)) => Probe::Url(
            HttpUrl::parse(&url).map_err(|reason| ConfigError::new("health.url", reason))?,
        ),
    };
    let timeout = check_timeout("health.timeout", raw.timeout, DEFAULT_HEALTH_TIMEOUT)?;
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
        ];
        for (text, key, reason) in cases {
            let error = ReleaseConfig::parse(text).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
            assert!(error.reason.contains(reason), "{text}: {error}");
            assert!(error.to_string().starts_with("ferry.toml: "));
        }
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
