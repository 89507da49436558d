//! What changed between two trees: paths added, removed and modified, with sizes.

use crate::manifest::{Entry, EntryKind, Manifest};

/// One path present in only one of the trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathOnly {
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub kind: &'static str,
    pub size: u64,
}

/// One path present in both trees with different content, mode, kind or target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathModified {
    pub path: String,
    pub old_size: u64,
    pub new_size: u64,
    /// `content`, `mode`, `kind` or `target`.
    pub change: &'static str,
}

/// The difference between an old and a new tree, each list sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeDiff {
    pub added: Vec<PathOnly>,
    pub removed: Vec<PathOnly>,
    pub modified: Vec<PathModified>,
}

fn kind_name(entry: &Entry) -> &'static str {
    match entry.kind {
        EntryKind::Dir { .. } => "dir",
        EntryKind::File { .. } => "file",
        EntryKind::Symlink { .. } => "symlink",
    }
}

fn only(entry: &Entry) -> PathOnly {
    PathOnly {
        path: entry.path.clone(),
        kind: kind_name(entry),
        size: entry.size(),
    }
}

/// What changed between two entries at the same path, if anything.
fn change(old: &Entry, new: &Entry) -> Option<&'static str> {
    match (&old.kind, &new.kind) {
        (
            EntryKind::File {
                hash: a, mode: ma, ..
            },
            EntryKind::File {
                hash: b, mode: mb, ..
            },
        ) => {
            if a != b {
                Some("content")
            } else if ma != mb {
                Some("mode")
            } else {
                None
            }
        }
        (EntryKind::Dir { mode: a }, EntryKind::Dir { mode: b }) => (a != b).then_some("mode"),
        (EntryKind::Symlink { target: a }, EntryKind::Symlink { target: b }) => {
            (a != b).then_some("target")
        }
        _ => Some("kind"),
    }
}

/// Compares two manifests (both sorted by path, as manifests are).
pub fn diff(old: &Manifest, new: &Manifest) -> TreeDiff {
    let mut result = TreeDiff::default();
    let (mut i, mut j) = (0, 0);
    while i < old.entries.len() || j < new.entries.len() {
        match (old.entries.get(i), new.entries.get(j)) {
            (Some(a), Some(b)) if a.path == b.path => {
                if let Some(change) = change(a, b) {
                    result.modified.push(PathModified {
                        path: a.path.clone(),
                        old_size: a.size(),
                        new_size: b.size(),
                        change,
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.path < b.path => {
                result.removed.push(only(a));
                i += 1;
            }
            (Some(a), None) => {
                result.removed.push(only(a));
                i += 1;
            }
            (_, Some(b)) => {
                result.added.push(only(b));
                j += 1;
            }
            (None, None) => unreachable!("the loop stops when both are exhausted"),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ContentHash;

    fn file(path: &str, content: &str, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                mode,
                size: content.len() as u64,
                hash: ContentHash::of(content.as_bytes()),
                chunks: Vec::new(),
            },
        }
    }

    fn summary(diff: &TreeDiff) -> String {
        let mut lines = Vec::new();
        lines.extend(diff.added.iter().map(|p| format!("+{} {}", p.path, p.size)));
        lines.extend(
            diff.removed
                .iter()
                .map(|p| format!("-{} {}", p.path, p.size)),
        );
        lines.extend(
            diff.modified
                .iter()
                .map(|p| format!("~{} {} {}>{}", p.path, p.change, p.old_size, p.new_size)),
        );
        lines.join(" ")
    }

    fn check(old: Vec<Entry>, new: Vec<Entry>, expected: &str) {
        let actual = diff(&Manifest { entries: old }, &Manifest { entries: new });
        assert_eq!(summary(&actual), expected);
    }

    #[test]
    fn diffs() {
        check(vec![], vec![], "");
        check(vec![file("a", "1", 0o644)], vec![file("a", "1", 0o644)], "");
        check(vec![], vec![file("a", "12", 0o644)], "+a 2");
        check(vec![file("a", "12", 0o644)], vec![], "-a 2");
        check(
            vec![file("a", "1", 0o644)],
            vec![file("a", "123", 0o644)],
            "~a content 1>3",
        );
        check(
            vec![file("a", "1", 0o644)],
            vec![file("a", "1", 0o755)],
            "~a mode 1>1",
        );
        check(
            vec![file("a", "1", 0o644), file("c", "3", 0o644)],
            vec![
                file("b", "2", 0o644),
                file("c", "3", 0o644),
                file("d", "4", 0o644),
            ],
            "+b 1 +d 1 -a 1",
        );
        let link = Entry {
            path: "a".into(),
            kind: EntryKind::Symlink { target: "b".into() },
        };
        check(
            vec![file("a", "1", 0o644)],
            vec![link.clone()],
            "~a kind 1>0",
        );
        let other = Entry {
            path: "a".into(),
            kind: EntryKind::Symlink { target: "c".into() },
        };
        check(vec![link], vec![other], "~a target 0>0");
    }
}
