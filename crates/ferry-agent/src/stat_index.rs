//! What each file of a staged release looked like right after staging: inode, size and
//! modification time. A file that still looks exactly the same is trusted without being
//! read again, the way rsync and git trust unchanged files; anything else is re-hashed.
//! Drift detection never uses it. Losing an index only costs a re-hash, so it is written
//! without a sync.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{EntryKind, Manifest};
use serde::{Deserialize, Serialize};

use crate::layout::{state_dir, AppLayout};

/// The facts of one file that change when its content is written, and the content's hash
/// when they were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileStat {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    hash: ContentHash,
}

fn stat_of(metadata: &Metadata, hash: ContentHash) -> FileStat {
    FileStat {
        ino: metadata.ino(),
        size: metadata.len(),
        mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
        hash,
    }
}

/// The stat index of one release.
#[derive(Debug, Default)]
pub struct StatIndex {
    files: HashMap<String, FileStat>,
}

fn index_path(layout: &AppLayout, version: &str) -> PathBuf {
    state_dir(layout.root())
        .join("index")
        .join(layout.app())
        .join(format!("{version}.json"))
}

impl StatIndex {
    /// The index of `version`; empty (trusting nothing) when there is none or it is unreadable.
    pub fn load(layout: &AppLayout, version: &str) -> StatIndex {
        let files = fs::read(index_path(layout, version))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        StatIndex { files }
    }

    /// Records the files of the staged release `version` as they are now. Best effort: a
    /// failure leaves no index, which only costs a re-hash later.
    pub fn record(layout: &AppLayout, version: &str, manifest: &Manifest) {
        let dir = layout.release_dir(version);
        let files: HashMap<String, FileStat> = manifest
            .entries
            .iter()
            .filter_map(|e| {
                let EntryKind::File { hash, .. } = e.kind else {
                    return None;
                };
                let metadata = fs::symlink_metadata(dir.join(&e.path)).ok()?;
                metadata
                    .is_file()
                    .then(|| (e.path.clone(), stat_of(&metadata, hash)))
            })
            .collect();
        let path = index_path(layout, version);
        let tmp = path.with_extension("json.tmp");
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| {
                fs::write(&tmp, serde_json::to_vec(&files).expect("indexes serialize"))?;
                fs::rename(&tmp, &path)
            });
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Forgets the index of a release that is removed.
    pub fn forget(layout: &AppLayout, version: &str) {
        let _ = fs::remove_file(index_path(layout, version));
    }

    /// Whether the file at `path` of the release still looks exactly as it did when it was
    /// staged with content `hash`.
    pub fn vouches_for(&self, path: &str, metadata: &Metadata, hash: &ContentHash) -> bool {
        self.files.get(path) == Some(&stat_of(metadata, *hash))
    }
}
