//! `[config]` in `ferry.toml`: where an environment's configuration goes in the release
//! when a target stages it, an env file, templates rendered with `{{ KEY }}` placeholders,
//! and the keys without which a deployment fails before anything switches. Checked when the
//! file is read (paths, keys), and against the release's files when a release is made
//! ([`ReleaseConfig::check_against_manifest`]). The values and their rendering:
//! `ferry_domain::config`.

use std::collections::BTreeMap;
use std::ops::Range;

use ferry_domain::config::ConfigKey;
use serde::Deserialize;
use toml::Spanned;

use super::{is_within, ConfigError, ReleaseConfig, CONFIG_FILE};
use crate::manifest::{validate_path, EntryKind, Manifest};

/// The `[config]` section, checked: the files ferry writes into a release from the
/// environment's configuration, and the keys it must have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDelivery {
    /// `env_file`: where the env file (every key, `KEY=VALUE`) is written, relative to the
    /// release's root; `None`: no env file.
    pub env_file: Option<String>,
    /// `templates`: each file rendered from a template of the release, sorted by output.
    pub templates: Vec<Template>,
    /// `required`: keys whose absence fails a deployment before anything switches, sorted.
    pub required: Vec<ConfigKey>,
}

/// One file rendered from a template: both paths relative to the release's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// Where the rendered file is written (not a path of the release).
    pub output: String,
    /// The template, a regular file of the release.
    pub source: String,
}

impl ConfigDelivery {
    /// Every path ferry writes into the release: the env file, then the templates' outputs.
    pub fn rendered_paths(&self) -> Vec<&str> {
        self.env_file
            .iter()
            .map(String::as_str)
            .chain(self.templates.iter().map(|t| t.output.as_str()))
            .collect()
    }

    /// Whether the section asks for nothing (no file written, no key required).
    pub fn is_empty(&self) -> bool {
        self == &ConfigDelivery::default()
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfigDelivery {
    env_file: Option<Spanned<String>>,
    #[serde(default)]
    templates: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
}

/// A path ferry writes, with the setting that names it and where.
struct Rendered {
    key: String,
    path: String,
    span: Range<usize>,
}

/// Checks `[config]` given the rest of the file (`release`: its shared and ignored paths).
pub(super) fn check_config_delivery(
    text: &str,
    raw: RawConfigDelivery,
    release: &ReleaseConfig,
) -> Result<ConfigDelivery, ConfigError> {
    let error = |key: &str, span: Range<usize>, reason: String| {
        ConfigError::new(key, reason).at(text, span)
    };
    let path_error = |key: &str, setting: &Spanned<String>| {
        validate_path(setting.get_ref()).map_err(|reason| {
            error(
                key,
                setting.span(),
                format!(
                    "{:?}: {reason}; give a path relative to the release's root",
                    setting.get_ref()
                ),
            )
        })
    };
    let mut rendered = Vec::new();
    if let Some(env_file) = &raw.env_file {
        path_error("config.env_file", env_file)?;
        rendered.push(Rendered {
            key: "config.env_file".into(),
            path: env_file.get_ref().clone(),
            span: env_file.span(),
        });
    }
    let mut templates = Vec::new();
    for (output, source) in &raw.templates {
        let key = format!("config.templates.{:?}", output.get_ref());
        path_error(&key, output)?;
        path_error(&key, source)?;
        if let Some(shared) = release
            .shared
            .iter()
            .find(|s| is_within(source.get_ref(), s))
        {
            return Err(error(
                &key,
                source.span(),
                format!(
                    "the template {:?} is in the shared path {shared:?}, which holds the \
                     application's data, not the release's files: keep templates in the release",
                    source.get_ref()
                ),
            ));
        }
        rendered.push(Rendered {
            key,
            path: output.get_ref().clone(),
            span: output.span(),
        });
        templates.push(Template {
            output: output.get_ref().clone(),
            source: source.get_ref().clone(),
        });
    }
    for (i, file) in rendered.iter().enumerate() {
        let refuse = |reason: String| Err(error(&file.key, file.span.clone(), reason));
        let path = &file.path;
        if path == CONFIG_FILE {
            return refuse(
                "ferry.toml holds the release's settings and cannot be written by ferry: \
                 choose another path"
                    .into(),
            );
        }
        if let Some(why) = written_by_application(release, path) {
            return refuse(format!(
                "{path:?} {why}, and ferry owns the files it writes into a release (read-only, \
                 checked for drift): choose a path outside the `shared` and `ignore` paths"
            ));
        }
        if let Some(other) = rendered[..i].iter().find(|other| &other.path == path) {
            return refuse(format!(
                "{path:?} is also {}: ferry would write both to one file; choose another path",
                other.key
            ));
        }
        if let Some(other) = rendered
            .iter()
            .find(|other| &other.path != path && is_within(path, &other.path))
        {
            return refuse(format!(
                "{path:?} lies within {:?}, which {} writes as a file: choose another path",
                other.path, other.key
            ));
        }
        if let Some(template) = templates.iter().find(|t| &t.source == path) {
            return refuse(format!(
                "{path:?} is the template of {:?}: ferry would write over a template it \
                 reads; choose another path",
                template.output
            ));
        }
    }
    let mut required: Vec<ConfigKey> = Vec::with_capacity(raw.required.len());
    for (i, setting) in raw.required.iter().enumerate() {
        let key = format!("config.required[{i}]");
        let parsed = ConfigKey::parse(setting.get_ref())
            .map_err(|reason| error(&key, setting.span(), reason))?;
        if let Some(first) = required.iter().position(|k| k == &parsed) {
            return Err(error(
                &key,
                setting.span(),
                format!("{parsed} is listed already, as config.required[{first}]: remove one"),
            ));
        }
        required.push(parsed);
    }
    required.sort();
    // A map is sorted by its keys: the outputs.
    Ok(ConfigDelivery {
        env_file: raw.env_file.map(Spanned::into_inner),
        templates,
        required,
    })
}

/// Why the application writes `path` itself, if it does: it is shared, ignored or inside
/// such a path, or a shared path lies inside it.
fn written_by_application(release: &ReleaseConfig, path: &str) -> Option<String> {
    if let Some(shared) = release.shared.iter().find(|shared| is_within(path, shared)) {
        return Some(if shared == path {
            "is shared".to_owned()
        } else {
            format!("lies within the shared path {shared:?}")
        });
    }
    if let Some(shared) = release.shared.iter().find(|shared| is_within(shared, path)) {
        return Some(format!("holds the shared path {shared:?}"));
    }
    let mut ancestors = std::iter::successors(Some(path), |p| p.rsplit_once('/').map(|(a, _)| a));
    ancestors
        .find(|p| release.is_ignored(p))
        .map(|ignored| match ignored == path {
            true => "is ignored (an `ignore` pattern matches it)".to_owned(),
            false => format!("lies within {ignored:?}, which an `ignore` pattern matches"),
        })
}

impl ReleaseConfig {
    /// Refuses `template` when its text (`text`, the content of its source) could never
    /// render, whatever an environment's values: not UTF-8, too large, an unclosed `{{` or
    /// one that is no placeholder. The client checks this before it uploads, the server
    /// again before the release exists.
    pub fn check_template(&self, template: &Template, text: &[u8]) -> Result<(), ConfigError> {
        let key = format!("config.templates.{:?}", template.output);
        let text = std::str::from_utf8(text).map_err(|_| {
            let reason = format!(
                "the template {:?} is not UTF-8 text: ferry renders text templates only",
                template.source
            );
            ConfigError::new(key.clone(), reason)
        })?;
        ferry_domain::config::check_template(&template.source, text)
            .map_err(|reason| ConfigError::new(key, reason))
    }

    /// Checks the settings that name the release's own files against its `manifest`: each
    /// template is a regular file of the release; no path ferry writes (env file, template
    /// output) is a path of the release; the directory holding each is a directory of the
    /// release (or its root). The client checks this before it uploads, the server again
    /// before the release exists.
    pub fn check_against_manifest(&self, manifest: &Manifest) -> Result<(), ConfigError> {
        let config = &self.config;
        for template in &config.templates {
            let key = format!("config.templates.{:?}", template.output);
            let source = &template.source;
            let reason = match manifest.get(source).map(|entry| &entry.kind) {
                Some(EntryKind::File { .. }) => continue,
                None => format!(
                    "the template {source:?} is not in the release: add it, or correct the path"
                ),
                Some(EntryKind::Dir { .. }) => {
                    format!("the template {source:?} is a directory in the release: name a file")
                }
                Some(EntryKind::Symlink { .. }) => format!(
                    "the template {source:?} is a symlink in the release: name the file itself"
                ),
            };
            return Err(ConfigError::new(key, reason));
        }
        let keys = config
            .env_file
            .iter()
            .map(|_| "config.env_file".to_owned())
            .chain(
                config
                    .templates
                    .iter()
                    .map(|t| format!("config.templates.{:?}", t.output)),
            );
        for (key, path) in keys.zip(config.rendered_paths()) {
            if manifest.get(path).is_some() {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{path:?} is in the release, and ferry writes it at staging from the \
                         environment's configuration: remove it from the release (keep its \
                         template under another name), or choose another path"
                    ),
                ));
            }
            let Some((parent, _)) = path.rsplit_once('/') else {
                continue;
            };
            let reason = match manifest.get(parent).map(|entry| &entry.kind) {
                Some(EntryKind::Dir { .. }) => continue,
                None => format!(
                    "the directory {parent:?} that would hold {path:?} is not in the release: \
                     add it (an empty directory, or one holding a placeholder such as \
                     .gitkeep), or choose another path"
                ),
                Some(_) => format!(
                    "{parent:?}, which would hold {path:?}, is not a directory in the release \
                     (a file or a symlink; ferry writes only into the release's own \
                     directories): choose another path"
                ),
            };
            return Err(ConfigError::new(key, reason));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ContentHash;
    use crate::manifest::Entry;
    use crate::release_config::Location;

    fn key(text: &str) -> ConfigKey {
        ConfigKey::parse(text).unwrap()
    }

    #[test]
    fn the_section_parses_into_sorted_typed_settings() {
        let config = ReleaseConfig::parse(
            r#"
shared = ["uploads"]
[config]
env_file = ".env"
templates = { "config/app.php" = "config/app.php.tmpl", "a.ini" = "templates/a.ini" }
required = ["DATABASE_URL", "API_KEY"]
"#,
        )
        .unwrap()
        .config;
        assert_eq!(
            config,
            ConfigDelivery {
                env_file: Some(".env".into()),
                templates: vec![
                    Template {
                        output: "a.ini".into(),
                        source: "templates/a.ini".into()
                    },
                    Template {
                        output: "config/app.php".into(),
                        source: "config/app.php.tmpl".into()
                    },
                ],
                required: vec![key("API_KEY"), key("DATABASE_URL")],
            }
        );
        assert_eq!(config.rendered_paths(), [".env", "a.ini", "config/app.php"]);
        let table = ReleaseConfig::parse(
            "[config]\nrequired = [\"A\"]\n[config.templates]\n\"out.conf\" = \"out.conf.tmpl\"\n",
        )
        .unwrap()
        .config;
        assert_eq!(table.rendered_paths(), ["out.conf"]);
        assert_eq!(table.env_file, None);
        for empty in ["", "[config]", "[config]\ntemplates = {}\nrequired = []"] {
            let config = ReleaseConfig::parse(empty).unwrap().config;
            assert!(
                config.is_empty() && config.rendered_paths().is_empty(),
                "{empty}"
            );
        }
    }

    #[test]
    fn bad_settings_are_refused_where_they_are() {
        // (file, key, line, column, what the reason says)
        let cases = [
            ("[config]\nenv = \".env\"", "", 2, 1, "unknown field `env`, expected one of `env_file`, `templates`, `required`"),
            ("[config]\nenv_file = \"/etc/app.env\"", "config.env_file", 2, 12, "absolute"),
            ("[config]\nenv_file = \"../.env\"", "config.env_file", 2, 12, "'..'"),
            ("[config]\nenv_file = \"\"", "config.env_file", 2, 12, "empty"),
            ("[config]\nenv_file = \"ferry.toml\"", "config.env_file", 2, 12, "ferry.toml holds the release's settings"),
            ("[config]\nenv_file = 3", "", 2, 12, "invalid type"),
            ("[config]\ntemplates = { \"a//b\" = \"a.tmpl\" }", "config.templates.\"a//b\"", 2, 15, "empty component"),
            ("[config]\ntemplates = { \"a\" = \"./a.tmpl\" }", "config.templates.\"a\"", 2, 21, "'.' component"),
            ("[config]\ntemplates = [\"a\"]", "", 2, 13, "invalid type"),
            ("[config]\ntemplates = { \"a\" = \"x\", \"a\" = \"y\" }", "", 2, 14, "duplicate key `a`"),
            (
                "[config]\nenv_file = \"app.env\"\ntemplates = { \"app.env\" = \"app.env.tmpl\" }",
                "config.templates.\"app.env\"",
                3,
                15,
                "\"app.env\" is also config.env_file",
            ),
            (
                "[config]\ntemplates = { \"conf\" = \"a\", \"conf/x\" = \"b\" }",
                "config.templates.\"conf/x\"",
                2,
                29,
                "lies within \"conf\", which config.templates.\"conf\" writes as a file",
            ),
            (
                "[config]\nenv_file = \"conf\"\ntemplates = { \"conf/x\" = \"b\" }",
                "config.templates.\"conf/x\"",
                3,
                15,
                "lies within \"conf\", which config.env_file writes",
            ),
            (
                "[config]\ntemplates = { \"a\" = \"b\", \"b\" = \"c\" }",
                "config.templates.\"b\"",
                2,
                26,
                "\"b\" is the template of \"a\": ferry would write over a template it reads",
            ),
            (
                "[config]\ntemplates = { \"a\" = \"a\" }",
                "config.templates.\"a\"",
                2,
                15,
                "\"a\" is the template of \"a\"",
            ),
            (
                "shared = [\"config\"]\n[config]\nenv_file = \"config/.env\"",
                "config.env_file",
                3,
                12,
                "\"config/.env\" lies within the shared path \"config\", and ferry owns the files",
            ),
            (
                "shared = [\".env\"]\n[config]\nenv_file = \".env\"",
                "config.env_file",
                3,
                12,
                "\".env\" is shared",
            ),
            (
                "shared = [\"conf/local.ini\"]\n[config]\ntemplates = { \"conf\" = \"conf.tmpl\" }",
                "config.templates.\"conf\"",
                3,
                15,
                "holds the shared path \"conf/local.ini\"",
            ),
            (
                "ignore = [\"cache/**\"]\n[config]\nenv_file = \"cache/.env\"",
                "config.env_file",
                3,
                12,
                "\"cache/.env\" is ignored",
            ),
            (
                "ignore = [\"var\"]\n[config]\ntemplates = { \"var/app.ini\" = \"app.ini.tmpl\" }",
                "config.templates.\"var/app.ini\"",
                3,
                15,
                "lies within \"var\", which an `ignore` pattern matches",
            ),
            (
                "ignore = [\"*.env\"]\n[config]\nenv_file = \"prod.env\"",
                "config.env_file",
                3,
                12,
                "outside the `shared` and `ignore` paths",
            ),
            (
                "shared = [\"data\"]\n[config]\ntemplates = { \"app.ini\" = \"data/app.ini.tmpl\" }",
                "config.templates.\"app.ini\"",
                3,
                27,
                "the template \"data/app.ini.tmpl\" is in the shared path \"data\"",
            ),
            ("[config]\nrequired = [\"api_key\"]", "config.required[0]", 2, 13, "capital letters"),
            ("[config]\nrequired = [\"A\", \"\"]", "config.required[1]", 2, 18, "cannot be empty"),
            (
                "[config]\nrequired = [\"A\", \"B\", \"A\"]",
                "config.required[2]",
                2,
                23,
                "A is listed already, as config.required[0]: remove one",
            ),
            ("[config]\nrequired = \"A\"", "", 2, 12, "invalid type"),
        ];
        for (text, key, line, column, reason) in cases {
            let error = ReleaseConfig::parse(text).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
            assert_eq!(
                error.location,
                Some(Location { line, column }),
                "{text}: {error}"
            );
            assert!(error.reason.contains(reason), "{text}: {error}");
        }
        // A template may be ignored: it is read from the release as uploaded.
        ReleaseConfig::parse("ignore = [\"*.tmpl\"]\n[config]\ntemplates = { \"a\" = \"a.tmpl\" }")
            .unwrap();
    }

    fn manifest(entries: &[(&str, &str)]) -> Manifest {
        let mut entries: Vec<Entry> = entries
            .iter()
            .map(|(path, kind)| Entry {
                path: path.to_string(),
                kind: match *kind {
                    "dir" => EntryKind::Dir { mode: 0o755 },
                    "file" => EntryKind::File {
                        mode: 0o644,
                        size: 1,
                        hash: ContentHash::of(b"x"),
                        chunks: Vec::new(),
                    },
                    target => EntryKind::Symlink {
                        target: target.to_string(),
                    },
                },
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest { entries };
        manifest.validate().unwrap();
        manifest
    }

    #[test]
    fn rendered_files_and_templates_are_checked_against_the_release() {
        let release = manifest(&[
            ("config", "dir"),
            ("config/app.php.tmpl", "file"),
            ("config/old.php", "file"),
            ("config/tmpl-dir", "dir"),
            ("config/link.tmpl", "app.php.tmpl"),
            ("config/linked", "tmpl-dir"),
            ("index.php", "file"),
        ]);
        let check = |section: &str| {
            ReleaseConfig::parse(&format!("[config]\n{section}"))
                .unwrap()
                .check_against_manifest(&release)
        };
        for accepted in [
            "",
            "required = [\"A\"]",
            "env_file = \".env\"",
            "env_file = \"config/.env\"",
            "templates = { \"config/app.php\" = \"config/app.php.tmpl\" }",
            "templates = { \"config/tmpl-dir/x\" = \"config/app.php.tmpl\" }",
            "env_file = \".env\"\ntemplates = { \"app.php\" = \"config/app.php.tmpl\" }",
        ] {
            check(accepted).unwrap_or_else(|e| panic!("{accepted}: {e}"));
        }
        // (section, key, what the reason says)
        let refused = [
            (
                "templates = { \"config/app.php\" = \"config/missing.tmpl\" }",
                "config.templates.\"config/app.php\"",
                "the template \"config/missing.tmpl\" is not in the release: add it",
            ),
            (
                "templates = { \"config/app.php\" = \"config/tmpl-dir\" }",
                "config.templates.\"config/app.php\"",
                "is a directory in the release",
            ),
            (
                "templates = { \"config/app.php\" = \"config/link.tmpl\" }",
                "config.templates.\"config/app.php\"",
                "is a symlink in the release: name the file itself",
            ),
            (
                "env_file = \"index.php\"",
                "config.env_file",
                "\"index.php\" is in the release, and ferry writes it at staging",
            ),
            (
                "templates = { \"config/old.php\" = \"config/app.php.tmpl\" }",
                "config.templates.\"config/old.php\"",
                "remove it from the release",
            ),
            (
                "templates = { \"config\" = \"config/app.php.tmpl\" }",
                "config.templates.\"config\"",
                "\"config\" is in the release",
            ),
            (
                "env_file = \"env/.env\"",
                "config.env_file",
                "the directory \"env\" that would hold \"env/.env\" is not in the release: add it",
            ),
            (
                "env_file = \"index.php/.env\"",
                "config.env_file",
                "\"index.php\", which would hold \"index.php/.env\", is not a directory",
            ),
            (
                "templates = { \"config/linked/app.php\" = \"config/app.php.tmpl\" }",
                "config.templates.\"config/linked/app.php\"",
                "\"config/linked\", which would hold \"config/linked/app.php\", is not a directory",
            ),
        ];
        for (section, key, reason) in refused {
            let error = check(section).unwrap_err();
            assert_eq!(error.key, key, "{section}: {error}");
            assert!(error.reason.contains(reason), "{section}: {error}");
        }
    }
}
