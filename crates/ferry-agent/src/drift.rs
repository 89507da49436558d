//! Drift: how the release a target serves differs from its manifest, path by path, and
//! since when. Someone with a shell on the target edited, added, deleted or `chmod`ed a path
//! under `current`; the agent finds it by comparing the tree with the manifest
//! ([`crate::tree::drifted`], the same walk and comparison as the check before a switch),
//! every minute or so, and tells the server.
//!
//! **The stat index is trusted**, so that a check of an unchanged 10,000-file release stats
//! each path and reads nothing (milliseconds, not the seconds a full re-hash takes): a
//! file whose mode, inode, size, modification time and change time are all as staging
//! recorded them is taken to hold the content it was staged with; any other file is hashed.
//! That is enough because no one can set a change time: an edit whose author put the
//! modification time back (`touch -r`, `cp -p`, `rsync -t`) still moves the change time,
//! and so does a `chmod`, a rename over the file or a new hard link. The agent's own links
//! and unlinks (staging the next release, removing an old one) move it too, but those are
//! recorded as they happen and carried into the indexes ([`crate::link_changes`]), so they
//! never look like someone else's change (and if one ever did, it would cost a re-hash,
//! never a false finding: a file whose content and mode are right is no drift). What the
//! index cannot see needs more than a shell: setting the system clock to the recorded
//! nanosecond around an edit, or writing the raw block device; or an edit in the instant
//! between the agent's check of a file and its link ([`crate::link_changes`]).
//! `deploy::verify_release` still reads every file, for tests and audits.
//!
//! What counts:
//! - Paths the release's `ferry.toml` shares or ignores are the application's to write,
//!   never drift (the shared path's link itself is the release's: removed or replaced, it
//!   is drift). The `ferry.toml` that says so is the release's as published, not the one on
//!   disk: an edited `ferry.toml` is itself drift (`Content`), and cannot hide other paths
//!   by ignoring them ([`release_config`]).
//! - Write permission on a file or directory the agent placed read-only is `Mode` drift:
//!   staging places every release path without write bits ([`crate::modes`]), so only a
//!   hand `chmod u+w` (the first step of editing production) gives them, and it is told
//!   before the edit that follows. A file whose inode alone changed (written back with the
//!   same content) serves what the release says, and is no drift.
//!
//! - A directory with a configuration revision (`releases/VERSION@N`) is compared with its
//!   release and the files rendered into it ([`served_manifest`]): an edited `.env` is
//!   drift like any other path.
//!
//! When each path was first seen to differ is kept per application in
//! `ROOT/.ferry/drift/APP.json`, keyed by release, path and change, so it survives agent
//! restarts; a path that stops differing is forgotten, and another release starts afresh
//! ([`merge`], pure). The check takes the application's lock without waiting: it never
//! looks at a tree a deploy, rollback or cleanup is exchanging, and never waits for one (a
//! busy application is checked next time); a deploy that arrives during a check waits for
//! it to end, milliseconds unless files changed and are hashed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_api::{AgentDrift, DriftedPath};
use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::Manifest;
use ferry_cas::release_config::ReleaseConfig;
use ferry_domain::drift::DriftChange;
use serde::{Deserialize, Serialize};

use crate::config_files::{render, ConfigOf, ConfigValues};
use crate::error::{AgentError, AgentResult};
use crate::fsutil::fsync_dir;
use crate::layout::{drift_record_path, AppLayout, Installed};
use crate::lock::AppLock;
use crate::stage::read_release_config;
use crate::stat_index::StatIndex;
use crate::tree::drifted;

/// What the agent keeps of an application's drift between checks: the release it was
/// found in, and each path that differs with when it was first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    /// The release directory's name (`VERSION`, or `VERSION@N` with a configuration
    /// revision): another revision starts afresh.
    pub version: String,
    /// Sorted by path.
    pub paths: Vec<DriftedPath>,
}

/// The record after a check of release `version` found `found` (sorted by path) at
/// `now_ms`: a path that differed the same way in the same release before keeps its first
/// sighting, anything else is first seen now, and what was not found again is forgotten.
pub fn merge(
    previous: Option<&DriftRecord>,
    version: &str,
    found: &[(String, DriftChange)],
    now_ms: i64,
) -> DriftRecord {
    let previous = previous.filter(|record| record.version == version);
    let first_seen = |path: &str, change: DriftChange| {
        previous
            .and_then(|record| {
                record
                    .paths
                    .iter()
                    .find(|seen| seen.path == path && seen.change == change)
            })
            .map_or(now_ms, |seen| seen.first_seen_ms)
    };
    let mut paths: Vec<DriftedPath> = found
        .iter()
        .map(|(path, change)| DriftedPath {
            path: path.clone(),
            change: *change,
            first_seen_ms: first_seen(path, *change),
        })
        .collect();
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    DriftRecord {
        version: version.to_owned(),
        paths,
    }
}

/// How a drift check of one application went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriftCheck {
    /// A deploy, rollback or cleanup holds the application: not checked this time.
    Busy,
    /// `current` no longer serves the release asked about (or nothing): not checked.
    Moved,
    /// The release served, as it differs from its manifest (no paths: exactly the release).
    Checked(AgentDrift),
}

/// Checks the drift of `app`, which should serve `installed` (whose directory's manifest is
/// `manifest`, rendered configuration files included, see [`served_manifest`], and
/// `ferry.toml` is `config`, see [`release_config`]), and updates its record at `now_ms`.
/// Takes the application's lock without waiting.
pub fn check(
    root: &Path,
    app: &str,
    installed: &Installed,
    manifest: &Manifest,
    config: &ReleaseConfig,
    now_ms: i64,
) -> AgentResult<DriftCheck> {
    let layout = AppLayout::new(root, app)?;
    let Some(_lock) = AppLock::try_acquire(root, app)? else {
        return Ok(DriftCheck::Busy);
    };
    if layout.current().as_ref() != Some(installed) {
        return Ok(DriftCheck::Moved);
    }
    let index = StatIndex::load(&layout, installed);
    let found = drifted(&layout.release_dir(installed), manifest, config, &index);
    let previous = load_record(root, app);
    let record = merge(previous.as_ref(), &installed.dir_name(), &found, now_ms);
    if previous.as_ref() != Some(&record) {
        save_record(root, app, &record)?;
    }
    Ok(DriftCheck::Checked(AgentDrift {
        app: app.to_owned(),
        version: installed.version.clone(),
        paths: record.paths,
    }))
}

/// The manifest of the directory `installed` of `of.app`: the release's `manifest` and the
/// configuration files rendered into it from `values` (the revision it was staged with, in
/// environment `of.env`), as staging wrote them. Templates are read from the directory or
/// the cache, checked against the manifest.
pub fn served_manifest(
    root: &Path,
    of: ConfigOf,
    installed: &Installed,
    manifest: &Manifest,
    config: &ReleaseConfig,
    values: &ConfigValues,
    cache: &BlobStore,
) -> AgentResult<Manifest> {
    let layout = AppLayout::new(root, of.app)?;
    let sources = [Some(installed)];
    let rendered = render(&layout, &sources, manifest, config, values, of, cache)?;
    Ok(rendered.add_to(manifest))
}

/// The `ferry.toml` of release `version` as published: read from the release on disk when
/// it still has the manifest's content, else from the cache. An edited `ferry.toml` must
/// not decide what is drift (ignoring everything would hide every edit); the published one
/// still says what the application writes. An error when neither is available (the edited
/// file shared its inode with the cache's blob): the caller fetches it again.
pub fn release_config(
    root: &Path,
    app: &str,
    installed: &Installed,
    manifest: &Manifest,
    cache: &BlobStore,
) -> AgentResult<ReleaseConfig> {
    read_release_config(
        &AppLayout::new(root, app)?,
        installed,
        manifest,
        None,
        cache,
    )
}

/// The applications `current` points at a release of, with that release directory: what a
/// drift check looks at. Sorted by application.
pub fn served(root: &Path) -> Vec<(String, Installed)> {
    let Ok(apps) = fs::read_dir(root.join("apps")) else {
        return Vec::new();
    };
    let mut served: Vec<(String, Installed)> = apps
        .flatten()
        .filter_map(|entry| {
            let app = entry.file_name().to_str()?.to_owned();
            let version = AppLayout::new(root, &app).ok()?.current()?;
            Some((app, version))
        })
        .collect();
    served.sort();
    served
}

/// The record of `app`; none when there is none or it cannot be read (a fresh start costs
/// only first sightings).
pub fn load_record(root: &Path, app: &str) -> Option<DriftRecord> {
    let bytes = fs::read(drift_record_path(root, app)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the record of `app` atomically: a temporary file, synced, renamed over it.
fn save_record(root: &Path, app: &str, record: &DriftRecord) -> AgentResult<()> {
    let path = drift_record_path(root, app);
    let dir = path.parent().expect("drift records live in a directory");
    fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    // One name: under the application lock there is one writer.
    let temp = dir.join(format!("{app}.json.tmp"));
    let json = serde_json::to_vec_pretty(record).expect("drift records serialize");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| AgentError::io(&temp, e))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| AgentError::io(&temp, e))?;
    fs::rename(&temp, &path).map_err(|e| AgentError::io(&path, e))?;
    fsync_dir(dir)
}

/// Milliseconds since the Unix epoch, by this target's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DriftChange::*;

    fn record(version: &str, paths: &[(&str, DriftChange, i64)]) -> DriftRecord {
        DriftRecord {
            version: version.to_owned(),
            paths: paths
                .iter()
                .map(|(path, change, first_seen_ms)| DriftedPath {
                    path: (*path).to_owned(),
                    change: *change,
                    first_seen_ms: *first_seen_ms,
                })
                .collect(),
        }
    }

    #[test]
    fn first_sightings_are_kept_while_a_path_differs_the_same_way_in_the_same_release() {
        type Case<'a> = (
            &'a str,
            Option<DriftRecord>,
            &'a str,
            &'a [(&'a str, DriftChange)],
            DriftRecord,
        );
        let now = 5_000;
        let cases: Vec<Case> = vec![
            (
                "nothing before, nothing now",
                None,
                "1.0",
                &[],
                record("1.0", &[]),
            ),
            (
                "nothing before: first seen now",
                None,
                "1.0",
                &[("a", Content), ("b", Added)],
                record("1.0", &[("a", Content, now), ("b", Added, now)]),
            ),
            (
                "still differing: kept",
                Some(record("1.0", &[("a", Content, 1_000)])),
                "1.0",
                &[("a", Content)],
                record("1.0", &[("a", Content, 1_000)]),
            ),
            (
                "fixed: forgotten",
                Some(record("1.0", &[("a", Content, 1_000), ("b", Mode, 2_000)])),
                "1.0",
                &[("b", Mode)],
                record("1.0", &[("b", Mode, 2_000)]),
            ),
            (
                "fixed and broken again: seen anew",
                Some(record("1.0", &[])),
                "1.0",
                &[("a", Content)],
                record("1.0", &[("a", Content, now)]),
            ),
            (
                "differing another way: seen anew",
                Some(record("1.0", &[("a", Mode, 1_000)])),
                "1.0",
                &[("a", Content)],
                record("1.0", &[("a", Content, now)]),
            ),
            (
                "another release starts afresh",
                Some(record("1.0", &[("a", Content, 1_000)])),
                "2.0",
                &[("a", Content)],
                record("2.0", &[("a", Content, now)]),
            ),
            (
                "another release, nothing differs",
                Some(record("1.0", &[("a", Content, 1_000)])),
                "2.0",
                &[],
                record("2.0", &[]),
            ),
            (
                "new and old together, sorted by path",
                Some(record("1.0", &[("m", Deleted, 1_000)])),
                "1.0",
                &[("z", Kind), ("a", Target), ("m", Deleted)],
                record(
                    "1.0",
                    &[("a", Target, now), ("m", Deleted, 1_000), ("z", Kind, now)],
                ),
            ),
        ];
        for (case, previous, version, found, expected) in cases {
            let found: Vec<(String, DriftChange)> =
                found.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect();
            assert_eq!(
                merge(previous.as_ref(), version, &found, now),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn the_record_survives_a_round_trip_and_a_bad_one_reads_as_none() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(load_record(root.path(), "shop"), None);
        let kept = record("1.0", &[("a", Content, 1), ("b/c", Mode, 2)]);
        save_record(root.path(), "shop", &kept).unwrap();
        assert_eq!(load_record(root.path(), "shop"), Some(kept));
        fs::write(drift_record_path(root.path(), "shop"), "{not json").unwrap();
        assert_eq!(load_record(root.path(), "shop"), None);
    }
}
