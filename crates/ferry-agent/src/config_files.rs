//! The environment's configuration written into a release at staging: the values of one
//! configuration revision ([`ConfigValues`], fetched by the agent process and kept in memory
//! only) rendered into the files the release's `ferry.toml` `[config]` names
//! ([`RenderedFiles`]: the env file and each template's output, rendered by
//! `ferry_domain::config`). A release staged with revision N is its own directory
//! (`releases/VERSION@N`, see [`crate::layout::Installed`]); its rendered files are part of
//! that directory's manifest ([`RenderedFiles::add_to`]), read-only (mode 0400), so the
//! check before a switch, the stat index and the drift check cover them like any file.
//!
//! Rendered content never goes into the cache, to the server or into another release,
//! except as a hard link to the identical rendered file of the directory staging links
//! from. Values never appear in logs or errors: `Debug` shows keys only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Entry, EntryKind, Manifest};
use ferry_cas::release_config::ReleaseConfig;
use ferry_domain::config::{
    missing_required, render_env_file, render_template, ConfigKey, TemplateError,
    MAX_TEMPLATE_BYTES,
};

use crate::content::{read_small_file, FileFacts};
use crate::error::{AgentError, AgentResult};
use crate::layout::{AppLayout, Installed};

/// The mode of a rendered file: read by the application's user only, like a secret.
pub const RENDERED_MODE: u32 = 0o400;

/// The values of one configuration revision of an application in an environment (revision
/// 0: no configuration, no values). Never written anywhere but the rendered files.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigValues {
    revision: u64,
    values: BTreeMap<ConfigKey, String>,
}

impl ConfigValues {
    /// No configuration (revision 0).
    pub fn none() -> ConfigValues {
        ConfigValues::default()
    }

    /// The values of `revision` as the server sent them; a key that is not a configuration
    /// key is refused (named, its value never shown).
    pub fn new(revision: u64, values: BTreeMap<String, String>) -> AgentResult<ConfigValues> {
        let values = values
            .into_iter()
            .map(|(key, value)| match ConfigKey::parse(&key) {
                Ok(key) => Ok((key, value)),
                Err(why) => Err(AgentError::Refused(format!(
                    "configuration revision {revision} holds the key {key:?}, which is not a configuration key ({why}): upgrade the agent or correct the configuration"
                ))),
            })
            .collect::<AgentResult<_>>()?;
        Ok(ConfigValues { revision, values })
    }

    /// The revision (0: none).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every key with its value.
    pub fn values(&self) -> &BTreeMap<ConfigKey, String> {
        &self.values
    }

    /// Every key with its value, as environment variables for hooks and health checks.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

impl fmt::Debug for ConfigValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigValues")
            .field("revision", &self.revision)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The files rendered from a configuration for one release directory, by path.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RenderedFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for RenderedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedFiles")
            .field("paths", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RenderedFiles {
    /// The paths ferry writes in the release.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The content rendered for `path`, if ferry writes it.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Whether ferry writes `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Whether nothing is rendered.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The manifest of the release directory: `manifest` and the rendered files, each a
    /// file of mode [`RENDERED_MODE`] with its content's hash. Their blobs are in no cache
    /// and on no server: staging writes them from memory.
    pub fn add_to(&self, manifest: &Manifest) -> Manifest {
        if self.files.is_empty() {
            return manifest.clone();
        }
        let mut entries = manifest.entries.clone();
        entries.retain(|entry| !self.files.contains_key(&entry.path));
        entries.extend(self.files.iter().map(|(path, content)| Entry {
            path: path.clone(),
            kind: EntryKind::File {
                mode: RENDERED_MODE,
                size: content.len() as u64,
                hash: ContentHash::of(content),
                chunks: Vec::new(),
            },
        }));
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }
}

/// What rendering the configuration into a release needs to say what to do: the
/// application, environment and release, for the commands in its errors.
#[derive(Clone, Copy, Debug)]
pub struct ConfigOf<'a> {
    pub app: &'a str,
    pub env: &'a str,
    pub version: &'a str,
}

impl ConfigOf<'_> {
    /// How to set `keys` (none named: `KEY`) and deploy the release again with them, as the
    /// end of an error.
    fn how_to_set(&self, keys: &[&str]) -> String {
        let (app, env, version) = (self.app, self.env, self.version);
        let assignments = match keys {
            [] => "KEY=VALUE".to_owned(),
            keys => keys
                .iter()
                .map(|k| format!("{k}=VALUE"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        format!(
            "run `ferry config set {app} --env {env} {assignments}`, then deploy {version} again (`ferry deploy {app} {version} --to {env}`), which takes the newest configuration"
        )
    }
}

/// The files `config`'s `[config]` section asks for, rendered from `values` for release
/// `installed` (its `manifest`): templates read from the release directories `sources`
/// (the release itself, the one it links from) or the cache, checked against the manifest.
/// Refused before anything is written, naming the keys and how to set them, when a required
/// key is missing (any at all with revision 0) or a template names a key `values` lacks.
pub fn render(
    layout: &AppLayout,
    sources: &[Option<&Installed>],
    manifest: &Manifest,
    config: &ReleaseConfig,
    values: &ConfigValues,
    of: ConfigOf,
    cache: &BlobStore,
) -> AgentResult<RenderedFiles> {
    let delivery = &config.config;
    let missing = missing_required(&delivery.required, &values.values);
    if !missing.is_empty() {
        let keys: Vec<&str> = missing.iter().map(ConfigKey::as_str).collect();
        let (app, env) = (of.app, of.env);
        let given = match values.revision {
            0 => format!("this deployment of {app} carries no configuration of {env}"),
            n => format!("configuration revision {n} of {app} in {env} does not set them"),
        };
        return Err(AgentError::Refused(format!(
            "the release requires the configuration key(s) {} and {given}: {}; nothing was switched",
            keys.join(", "),
            of.how_to_set(&keys)
        )));
    }
    let mut files = BTreeMap::new();
    if let Some(env_file) = &delivery.env_file {
        files.insert(
            env_file.clone(),
            render_env_file(&values.values).into_bytes(),
        );
    }
    let dirs: Vec<PathBuf> = sources
        .iter()
        .flatten()
        .filter(|installed| installed.check().is_ok())
        .map(|installed| layout.release_dir(installed))
        .collect();
    for template in &delivery.templates {
        let file = manifest
            .get(&template.source)
            .and_then(|entry| FileFacts::of(entry, config))
            .ok_or_else(|| {
                AgentError::Refused(format!(
                    "the template {:?} of {:?} is not a file of the release: check the release with `ferry check`",
                    template.source, template.output
                ))
            })?;
        let text = read_small_file(&dirs, &file, cache, MAX_TEMPLATE_BYTES as u64)?;
        let text = String::from_utf8(text).map_err(|_| {
            AgentError::Refused(format!(
                "the template {} is not UTF-8 text: ferry renders text templates only",
                template.source
            ))
        })?;
        let rendered = render_template(&template.source, &text, &values.values).map_err(|why| {
            let todo = match &why {
                TemplateError::MissingKeys(_) => of.how_to_set(&[]),
                TemplateError::Broken(_) => "fix the template in a new release".to_owned(),
            };
            AgentError::Refused(format!("{why}: {todo}; nothing was switched"))
        })?;
        files.insert(template.output.clone(), rendered.into_bytes());
    }
    Ok(RenderedFiles { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> ConfigValues {
        let pairs = [("API_KEY", "s3cret"), ("MODE", "prod")];
        ConfigValues::new(
            4,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn values_never_show_in_debug_output_and_bad_keys_are_named_without_their_value() {
        let values = values();
        let shown = format!("{values:?}");
        assert!(shown.contains("API_KEY") && shown.contains('4'), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let rendered = RenderedFiles {
            files: BTreeMap::from([(".env".to_owned(), b"API_KEY=s3cret\n".to_vec())]),
        };
        assert!(!format!("{rendered:?}").contains("s3cret"));
        let bad = BTreeMap::from([("api key".to_owned(), "hidden".to_owned())]);
        let error = ConfigValues::new(4, bad).unwrap_err().to_string();
        assert!(
            error.contains("api key") && !error.contains("hidden"),
            "{error}"
        );
    }

    #[test]
    fn rendered_files_join_the_manifest_sorted_read_only_with_their_hash() {
        let manifest = Manifest {
            entries: vec![Entry {
                path: "z.txt".to_owned(),
                kind: EntryKind::File {
                    mode: 0o644,
                    size: 1,
                    hash: ContentHash::of(b"z"),
                    chunks: Vec::new(),
                },
            }],
        };
        let rendered = RenderedFiles {
            files: BTreeMap::from([(".env".to_owned(), b"MODE=prod\n".to_vec())]),
        };
        let served = rendered.add_to(&manifest);
        served.validate().unwrap();
        let paths: Vec<&str> = served.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, [".env", "z.txt"]);
        assert_eq!(
            served.get(".env").unwrap().kind,
            EntryKind::File {
                mode: RENDERED_MODE,
                size: 10,
                hash: ContentHash::of(b"MODE=prod\n"),
                chunks: Vec::new(),
            }
        );
        assert_eq!(RenderedFiles::default().add_to(&manifest), manifest);
    }
}
