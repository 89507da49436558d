//! Configuration revisions: an application's configuration in one environment is a list of
//! revisions, each the whole set of keys and values, made by applying an edit (`ferry config
//! set`, `unset`) to the one before. The rules of an edit and what it changed, without I/O;
//! values arrive here in clear, and what this module says about a change names keys, never
//! values.

use std::collections::BTreeMap;

use crate::config::{check_value, ConfigKey};
use crate::vocabulary::vocabulary;

/// The most keys one environment's configuration holds.
pub const MAX_KEYS: usize = 1000;
/// The most bytes of values one environment's configuration holds, all keys together.
pub const MAX_TOTAL_BYTES: usize = 1024 * 1024;

/// One key's value and whether it is a secret (encrypted at rest, masked when shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub secret: bool,
}

/// A whole configuration: every key with its setting.
pub type Settings = BTreeMap<ConfigKey, Setting>;

vocabulary! {
    /// How an edit changed one key.
    pub enum ChangeKind ("configuration change") {
        /// The key was not set before.
        Added = "added",
        /// The key's value changed, or it became a secret.
        Changed = "changed",
        /// The key was unset.
        Removed = "removed",
    }
}

/// What an edit did to one key: recorded with the revision and in the audit trail, so it
/// names the key and never the value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigChange {
    pub key: ConfigKey,
    pub change: ChangeKind,
    /// Whether the key is a secret after the change (before it, for a removal).
    pub secret: bool,
}

/// An edit of one environment's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// Keys to set, with their values.
    pub set: Vec<(ConfigKey, String)>,
    /// Whether the keys set are secrets. A key that is a secret stays one when set again
    /// without it: a value is never shown because someone forgot a flag.
    pub secret: bool,
    /// Keys to remove.
    pub unset: Vec<ConfigKey>,
}

/// Applies `edit` to `current`: the configuration that results and what changed, sorted by
/// key (empty when the edit changes nothing). Refused, changing nothing, when a key is
/// given twice, set and unset at once, unset while not set, or the result is too large.
pub fn apply(current: &Settings, edit: &Edit) -> Result<(Settings, Vec<ConfigChange>), String> {
    let mut named: BTreeMap<&ConfigKey, &str> = BTreeMap::new();
    let given = (edit.set.iter().map(|(key, _)| (key, "set")))
        .chain(edit.unset.iter().map(|key| (key, "unset")));
    for (key, verb) in given {
        if let Some(first) = named.insert(key, verb) {
            return Err(match first == verb {
                true => format!("{key} is given twice: {verb} it once"),
                false => format!("{key} is both set and unset: choose one"),
            });
        }
    }
    let mut next = current.clone();
    let mut changes = Vec::new();
    for key in &edit.unset {
        let Some(removed) = next.remove(key) else {
            return Err(format!(
                "{key} is not set, so it cannot be unset (`ferry config show` lists the keys)"
            ));
        };
        changes.push(ConfigChange {
            key: key.clone(),
            change: ChangeKind::Removed,
            secret: removed.secret,
        });
    }
    for (key, value) in &edit.set {
        check_value(key, value)?;
        let before = current.get(key);
        let setting = Setting {
            value: value.clone(),
            secret: edit.secret || before.is_some_and(|b| b.secret),
        };
        let change = match before {
            None => Some(ChangeKind::Added),
            Some(before) if *before != setting => Some(ChangeKind::Changed),
            Some(_) => None,
        };
        if let Some(change) = change {
            changes.push(ConfigChange {
                key: key.clone(),
                change,
                secret: setting.secret,
            });
        }
        next.insert(key.clone(), setting);
    }
    check_size(&next)?;
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((next, changes))
}

/// Refuses a configuration with more than [`MAX_KEYS`] keys or [`MAX_TOTAL_BYTES`] of values.
pub fn check_size(settings: &Settings) -> Result<(), String> {
    if settings.len() > MAX_KEYS {
        return Err(format!(
            "the configuration would hold {} keys: at most {MAX_KEYS}",
            settings.len()
        ));
    }
    let total: usize = settings.values().map(|s| s.value.len()).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(format!(
            "the configuration's values would take {total} bytes: at most {MAX_TOTAL_BYTES} together"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ConfigKey {
        ConfigKey::parse(text).unwrap()
    }

    fn settings(entries: &[(&str, &str, bool)]) -> Settings {
        entries
            .iter()
            .map(|&(k, value, secret)| {
                let value = value.to_owned();
                (key(k), Setting { value, secret })
            })
            .collect()
    }

    fn edit(set: &[(&str, &str)], secret: bool, unset: &[&str]) -> Edit {
        Edit {
            set: set.iter().map(|&(k, v)| (key(k), v.to_owned())).collect(),
            secret,
            unset: unset.iter().map(|&k| key(k)).collect(),
        }
    }

    /// `(key, change, secret)` as words, to compare in tables.
    fn described(changes: &[ConfigChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| format!("{} {} {}", c.key, c.change, c.secret))
            .collect()
    }

    #[test]
    fn edits_and_what_they_change() {
        let current = settings(&[("A", "1", false), ("S", "s3cret", true)]);
        /// A name, the edit, the configuration after it, and what changed.
        type Case = (
            &'static str,
            Edit,
            &'static [(&'static str, &'static str, bool)],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "add a key",
                edit(&[("B", "2")], false, &[]),
                &[("A", "1", false), ("B", "2", false), ("S", "s3cret", true)],
                &["B added false"],
            ),
            (
                "change a value",
                edit(&[("A", "9")], false, &[]),
                &[("A", "9", false), ("S", "s3cret", true)],
                &["A changed false"],
            ),
            (
                "the same value changes nothing",
                edit(&[("A", "1")], false, &[]),
                &[("A", "1", false), ("S", "s3cret", true)],
                &[],
            ),
            (
                "a secret set without --secret stays secret",
                edit(&[("S", "other")], false, &[]),
                &[("A", "1", false), ("S", "other", true)],
                &["S changed true"],
            ),
            (
                "making a plain key secret is a change",
                edit(&[("A", "1")], true, &[]),
                &[("A", "1", true), ("S", "s3cret", true)],
                &["A changed true"],
            ),
            (
                "unset",
                edit(&[], false, &["S"]),
                &[("A", "1", false)],
                &["S removed true"],
            ),
            (
                "set and unset together, sorted by key",
                edit(&[("Z", ""), ("B", "x")], true, &["A"]),
                &[("B", "x", true), ("S", "s3cret", true), ("Z", "", true)],
                &["A removed false", "B added true", "Z added true"],
            ),
        ];
        for (name, edit, expected, expected_changes) in cases {
            let (next, changes) = apply(&current, edit).unwrap();
            assert_eq!(next, settings(expected), "{name}");
            assert_eq!(described(&changes), *expected_changes, "{name}");
        }
    }

    #[test]
    fn refused_edits_name_the_key_and_never_the_value() {
        let current = settings(&[("A", "1", false)]);
        let big = "x".repeat(crate::config::MAX_VALUE_BYTES + 1);
        let cases = [
            (
                edit(&[("B", "v1"), ("B", "v2")], false, &[]),
                "B is given twice",
            ),
            (edit(&[], false, &["A", "A"]), "A is given twice"),
            (
                edit(&[("A", "v")], false, &["A"]),
                "A is both set and unset",
            ),
            (edit(&[], false, &["NOPE"]), "NOPE is not set"),
            (
                edit(&[("B", big.as_str())], false, &[]),
                "the value of B is",
            ),
            (edit(&[("N", "a\0b")], true, &[]), "N holds a NUL byte"),
        ];
        for (edit, says) in cases {
            let error = apply(&current, &edit).unwrap_err();
            assert!(error.contains(says), "{error}");
            assert!(!error.contains("v1") && !error.contains("xxx"), "{error}");
        }
    }

    #[test]
    fn sizes_are_bounded_all_keys_together() {
        let many: Settings = (0..=MAX_KEYS)
            .map(|i| {
                let setting = Setting {
                    value: String::new(),
                    secret: false,
                };
                (key(&format!("K{i}")), setting)
            })
            .collect();
        assert!(check_size(&many).unwrap_err().contains("at most 1000"));
        let value = "v".repeat(crate::config::MAX_VALUE_BYTES);
        let heavy: Settings = (0..17)
            .map(|i| {
                let setting = Setting {
                    value: value.clone(),
                    secret: true,
                };
                (key(&format!("K{i}")), setting)
            })
            .collect();
        assert!(check_size(&heavy).unwrap_err().contains("together"));
        assert!(check_size(&Settings::new()).is_ok());
    }
}
