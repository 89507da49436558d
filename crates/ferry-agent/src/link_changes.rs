//! The agent's own changes to inodes that releases share. A hard link or an unlink changes
//! the inode's link count, and so its change time, which every release holding the inode
//! sees; a stat index that still recorded the old change time would stop trusting the file,
//! and staging would copy what it could link. So the agent records what it did itself (the
//! inode's facts checked just before, and read again just after) and carries that into the
//! indexes. A change made by anyone else is never carried over: an index only moves from
//! facts it recorded to facts the agent saw right after its own link or unlink, with the
//! same content size, modification time and mode.
//!
//! What is left: someone who changes a file in the instant between the agent's check of it
//! and its link (microseconds, for one file) is not noticed; the check before each switch
//! still reads every file it does not trust.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use ferry_cas::hash::ContentHash;

use crate::error::AgentResult;
use crate::fsutil::{make_writable, remove_tree};
use crate::layout::AppLayout;
use crate::stat_index::{FileStat, StatIndex};

/// What the agent did to one inode, as far as it knows.
#[derive(Clone, Debug)]
enum Inode {
    /// The states the inode went through by the agent's links, oldest first.
    Known(Vec<FileStat>),
    /// Two changes did not follow one another (two threads linked it at once, or someone
    /// else changed it in between): what it looks like now is not known.
    Unknown,
}

/// The links the agent made during one staging, shared by the threads filling a release.
#[derive(Debug, Default)]
pub struct LinkChanges {
    inodes: Mutex<HashMap<u64, Inode>>,
}

impl LinkChanges {
    /// Records that the agent linked a new name to an inode that looked as `before` (just
    /// checked) and looks as `after` now.
    pub fn record(&self, before: &FileStat, after: &FileStat) {
        let mut inodes = self.inodes.lock().unwrap_or_else(PoisonError::into_inner);
        let inode = inodes
            .entry(before.ino)
            .or_insert_with(|| Inode::Known(vec![*before]));
        match inode {
            Inode::Known(states) if states.last().is_some_and(|last| last.same_state(before)) => {
                states.push(*after)
            }
            _ => *inode = Inode::Unknown,
        }
    }

    /// What a file recorded as `recorded` looks like now if nobody but the agent changed it.
    pub fn expected(&self, recorded: &FileStat) -> FileStat {
        let inodes = self.inodes.lock().unwrap_or_else(PoisonError::into_inner);
        match inodes.get(&recorded.ino) {
            Some(Inode::Known(states)) if states.iter().any(|s| s.same_state(recorded)) => {
                FileStat {
                    hash: recorded.hash,
                    ..*states.last().expect("a known inode has a state")
                }
            }
            _ => *recorded,
        }
    }

    /// Whether `now` (of an inode with content `hash`) shows it exactly as the agent's last
    /// link left it: a state that followed, by the agent's own links alone, one that was
    /// checked.
    pub fn left_as(&self, now: &FileStat) -> bool {
        let inodes = self.inodes.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(
            inodes.get(&now.ino),
            Some(Inode::Known(states)) if states.last().is_some_and(|last| last.same_state(now))
        )
    }

    /// Brings the facts `index` recorded for the inodes linked up to date; returns whether
    /// any changed.
    pub fn apply_to(&self, index: &mut StatIndex) -> bool {
        index.update(|_, stat| *stat = self.expected(stat))
    }

    /// Brings the index of every release of the application on disk up to date.
    pub fn apply_to_releases(&self, layout: &AppLayout) {
        if self
            .inodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
        {
            return;
        }
        for version in layout.releases_on_disk().unwrap_or_default() {
            let mut index = StatIndex::load(layout, &version);
            if self.apply_to(&mut index) {
                index.save(layout, &version);
            }
        }
    }
}

/// The inodes a tree about to be removed shares with other names (its files with more than
/// one link), as they look before the removal.
struct SharedInodes {
    inodes: HashMap<u64, FileStat>,
}

impl SharedInodes {
    /// Walks `tree` (whose directories are all readable), not following symlinks.
    fn of(tree: &Path) -> SharedInodes {
        fn visit(dir: &Path, inodes: &mut HashMap<u64, FileStat>) {
            let Ok(children) = fs::read_dir(dir) else {
                return;
            };
            for child in children.flatten() {
                let Ok(metadata) = child.metadata() else {
                    continue;
                };
                if metadata.is_dir() {
                    visit(&child.path(), inodes);
                } else if metadata.is_file() && metadata.nlink() > 1 {
                    // The hash is not known here, and not compared.
                    let stat = FileStat::of(&metadata, ContentHash([0; 32]));
                    inodes.insert(stat.ino, stat);
                }
            }
        }
        let mut inodes = HashMap::new();
        visit(tree, &mut inodes);
        SharedInodes { inodes }
    }

    /// After the removal: every release index entry that recorded one of the inodes as it
    /// looked just before takes its facts now, when only its change time moved.
    fn carry_into_indexes(&self, layout: &AppLayout) {
        if self.inodes.is_empty() {
            return;
        }
        for version in layout.releases_on_disk().unwrap_or_default() {
            let mut index = StatIndex::load(layout, &version);
            let dir = layout.release_dir(&version);
            let changed = index.update(|path, stat| {
                let Some(before) = self.inodes.get(&stat.ino) else {
                    return;
                };
                if !before.same_state(stat) {
                    return;
                }
                if let Ok(metadata) = fs::symlink_metadata(dir.join(path)) {
                    let after = FileStat::of(&metadata, stat.hash);
                    if stat.only_relinked_to(&after) {
                        *stat = after;
                    }
                }
            });
            if changed {
                index.save(layout, &version);
            }
        }
    }
}

/// Removes `tree`, a release or work directory of `layout`'s application (absent is fine),
/// keeping the stat indexes of the releases that share its files true. `between` runs
/// after the first entry is removed (a crash test's failpoint).
pub fn remove_tree_keeping_indexes(
    layout: &AppLayout,
    tree: &Path,
    between: impl FnOnce(),
) -> AgentResult<()> {
    let Ok(metadata) = fs::symlink_metadata(tree) else {
        return Ok(());
    };
    if !metadata.is_dir() {
        return remove_tree(tree);
    }
    make_writable(tree)?;
    let shared = SharedInodes::of(tree);
    let first = fs::read_dir(tree)
        .ok()
        .and_then(|mut children| children.next())
        .and_then(Result::ok);
    if let Some(first) = first {
        remove_tree(&first.path())?;
        between();
    }
    remove_tree(tree)?;
    shared.carry_into_indexes(layout);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ino: u64, ctime_ns: i128) -> FileStat {
        FileStat {
            mode: 0o444,
            ino,
            size: 3,
            mtime_ns: 7,
            ctime_ns,
            hash: ContentHash::of(b"abc"),
        }
    }

    #[test]
    fn a_chain_of_own_links_moves_recorded_facts_to_the_last() {
        let changes = LinkChanges::default();
        changes.record(&stat(1, 10), &stat(1, 11));
        changes.record(&stat(1, 11), &stat(1, 12));
        // Recorded before the links, or after one of them: now at the last.
        assert_eq!(changes.expected(&stat(1, 10)), stat(1, 12));
        assert_eq!(changes.expected(&stat(1, 11)), stat(1, 12));
        // Facts the agent never saw are left alone, and so are other inodes.
        assert_eq!(changes.expected(&stat(1, 9)), stat(1, 9));
        assert_eq!(changes.expected(&stat(2, 10)), stat(2, 10));
        assert!(changes.left_as(&stat(1, 12)) && !changes.left_as(&stat(1, 11)));
        // A change that does not follow the last one makes the inode unknown.
        changes.record(&stat(1, 10), &stat(1, 13));
        assert_eq!(changes.expected(&stat(1, 10)), stat(1, 10));
        assert!(!changes.left_as(&stat(1, 13)));
        let mut index = StatIndex::from_files([("a", stat(2, 10)), ("b", stat(3, 1))]);
        changes.record(&stat(2, 10), &stat(2, 20));
        assert!(changes.apply_to(&mut index));
        assert_eq!(index.get("a"), Some(&stat(2, 20)));
        assert_eq!(index.get("b"), Some(&stat(3, 1)));
        assert!(!changes.apply_to(&mut index));
    }
}
