//! A release's tree as data: every path with its kind, mode and content address, sorted by
//! path. The manifest's digest identifies the release's content.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;

/// One piece of a large file, stored as its own blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub hash: ContentHash,
    pub size: u64,
}

/// What a path is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EntryKind {
    Dir {
        mode: u32,
    },
    /// A regular file. `hash` is the hash of its whole content. A small file is one blob
    /// with that hash and no `chunks`; a large one is the concatenation of its `chunks`.
    File {
        mode: u32,
        size: u64,
        hash: ContentHash,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chunks: Vec<Chunk>,
    },
    /// A symbolic link whose target stays inside the tree.
    Symlink {
        target: String,
    },
}

/// A path of the tree (relative, `/`-separated) and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    #[serde(flatten)]
    pub kind: EntryKind,
}

impl Entry {
    /// The file's size; 0 for directories and symlinks.
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File { size, .. } => *size,
            _ => 0,
        }
    }

    /// The blobs holding this entry's content, with their sizes.
    pub fn blobs(&self) -> Vec<Chunk> {
        match &self.kind {
            EntryKind::File {
                size, hash, chunks, ..
            } if chunks.is_empty() => vec![Chunk {
                hash: *hash,
                size: *size,
            }],
            EntryKind::File { chunks, .. } => chunks.clone(),
            _ => Vec::new(),
        }
    }
}

/// The most bytes a manifest's canonical JSON may have: a release is created with one
/// request of at most 256 MiB, which holds the manifest. Readers of a stored manifest stop
/// there instead of decompressing whatever a blob claims.
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// A release's whole tree, sorted by path, each path once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// Identifies the tree: equal digests, equal trees.
    pub fn digest(&self) -> ContentHash {
        let canonical = serde_json::to_vec(&self.entries).expect("manifests serialize");
        ContentHash::of(&canonical)
    }

    /// The manifest as stored: its canonical JSON compressed with zstd (a tree of ten
    /// thousand files is 1.5 MB of JSON, mostly hashes; stored once per release it would
    /// outgrow the content it describes).
    pub fn to_blob(&self) -> Vec<u8> {
        let canonical = serde_json::to_vec(&self.entries).expect("manifests serialize");
        zstd::encode_all(canonical.as_slice(), 3).expect("compressing in memory cannot fail")
    }

    /// Reads a stored manifest and checks it against the release's digest. The blob is
    /// decompressed only up to [`MAX_MANIFEST_BYTES`]: a few megabytes of zstd can claim
    /// terabytes, and a manifest that large was never accepted by a server.
    pub fn from_blob(blob: &[u8], digest: &ContentHash) -> CasResult<Manifest> {
        use std::io::Read;
        let corrupt = |reason: String| CasError::Io {
            context: format!("manifest {digest}"),
            source: std::io::Error::other(reason),
        };
        let decoder = zstd::stream::read::Decoder::new(blob).map_err(|e| corrupt(e.to_string()))?;
        let mut canonical = Vec::new();
        decoder
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut canonical)
            .map_err(|e| corrupt(e.to_string()))?;
        if canonical.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(corrupt(format!(
                "it decompresses to more than {MAX_MANIFEST_BYTES} bytes, more than any manifest a server accepts"
            )));
        }
        if ContentHash::of(&canonical) != *digest {
            return Err(corrupt("it does not match the release's digest".into()));
        }
        let entries = serde_json::from_slice(&canonical).map_err(|e| corrupt(e.to_string()))?;
        Ok(Manifest { entries })
    }

    /// Number of regular files.
    pub fn n_files(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::File { .. }))
            .count() as u64
    }

    /// Total size of the regular files (as declared; at most `u64::MAX`, whatever a
    /// manifest from elsewhere claims).
    pub fn n_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(Entry::size)
            .fold(0, u64::saturating_add)
    }

    /// Every distinct blob the tree needs, with its size, in first-use order.
    pub fn blobs(&self) -> Vec<Chunk> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .flat_map(Entry::blobs)
            .filter(|chunk| seen.insert(chunk.hash))
            .collect()
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Checks everything a manifest received from elsewhere must satisfy: valid paths,
    /// sorted and unique, every parent a directory of the tree, symlinks inside the tree,
    /// chunk sizes adding up. The first problem is named.
    pub fn validate(&self) -> CasResult<()> {
        self.check(Symlinks::StayInside)
    }

    /// [`Manifest::validate`] for a backup of application data, whose symlinks may point
    /// anywhere (`shared/current.log -> /var/log/app.log`): they are recorded and restored
    /// as links, never followed, and a path below a symlink is refused like any path whose
    /// parent is not a directory of the tree.
    pub fn validate_data(&self) -> CasResult<()> {
        self.check(Symlinks::Anywhere)
    }

    fn check(&self, symlinks: Symlinks) -> CasResult<()> {
        let mut previous: Option<&str> = None;
        let mut resolved = Resolved::new();
        for entry in &self.entries {
            validate_path(&entry.path).map_err(|reason| CasError::rejected(&entry.path, reason))?;
            if let Some(previous) = previous {
                if previous >= entry.path.as_str() {
                    let reason = if previous == entry.path {
                        "the path appears twice"
                    } else {
                        "entries are not sorted by path"
                    };
                    return Err(CasError::rejected(&entry.path, reason));
                }
            }
            previous = Some(&entry.path);
            if let Some((parent, _)) = entry.path.rsplit_once('/') {
                if !matches!(
                    self.get(parent).map(|p| &p.kind),
                    Some(EntryKind::Dir { .. })
                ) {
                    return Err(CasError::rejected(
                        &entry.path,
                        format!("its parent {parent:?} is not a directory of the tree"),
                    ));
                }
            }
            match &entry.kind {
                EntryKind::Symlink { target }
                    if symlinks == Symlinks::Anywhere
                        && (target.is_empty() || target.contains('\0')) =>
                {
                    return Err(CasError::rejected(
                        &entry.path,
                        "the symlink's target is empty or holds a NUL byte",
                    ));
                }
                EntryKind::Symlink { target }
                    if symlinks == Symlinks::StayInside
                        && self
                            .resolve_link(&entry.path, target, 0, &mut resolved)
                            .is_none() =>
                {
                    return Err(CasError::rejected(
                        &entry.path,
                        format!("the symlink points outside the tree ({target:?})"),
                    ));
                }
                EntryKind::File { size, chunks, .. }
                    if !chunks.is_empty()
                        && chunks
                            .iter()
                            .try_fold(0u64, |sum, chunk| sum.checked_add(chunk.size))
                            != Some(*size) =>
                {
                    return Err(CasError::rejected(
                        &entry.path,
                        "its chunks do not add up to its size",
                    ));
                }
                EntryKind::Dir { mode } | EntryKind::File { mode, .. } if *mode > 0o7777 => {
                    return Err(CasError::rejected(
                        &entry.path,
                        format!("mode {mode:o} is not a permission mode"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Where the symlinks of a tree lead, by link and the number of links followed before it:
/// each is worked out once, so a tree whose links name other links many times over (`l2 ->
/// l1/../l1/../l1`, `l3 -> l2/../l2/../l2`, …) costs as much to check as it has links,
/// not as many times as the links could be followed.
type Resolved = HashMap<(String, u32), Option<Vec<String>>>;

impl Manifest {
    /// Where the symlink at `link_path` with `target` ends up (see [`Manifest::resolve`]),
    /// reached after following `hops` links; remembered in `resolved`.
    fn resolve_link(
        &self,
        link_path: &str,
        target: &str,
        hops: u32,
        resolved: &mut Resolved,
    ) -> Option<Vec<String>> {
        let key = (link_path.to_owned(), hops);
        if let Some(known) = resolved.get(&key) {
            return known.clone();
        }
        let found = self.resolve(link_path, target, hops, resolved);
        resolved.insert(key, found.clone());
        found
    }

    /// Where a symlink at `link_path` with `target` ends up, as path components from the
    /// root, following symlinks of the tree on the way (a link through another link can
    /// leave the tree even when each looks harmless). `None`: it leaves the tree or loops.
    fn resolve(
        &self,
        link_path: &str,
        target: &str,
        hops: u32,
        resolved_links: &mut Resolved,
    ) -> Option<Vec<String>> {
        const MAX_HOPS: u32 = 40;
        if hops > MAX_HOPS || !symlink_stays_inside(link_path, target) {
            return None;
        }
        let mut resolved: Vec<String> = link_path.split('/').map(str::to_owned).collect();
        resolved.pop();
        for component in target.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    resolved.pop()?;
                }
                name => {
                    resolved.push(name.to_owned());
                    let so_far = resolved.join("/");
                    if let Some(EntryKind::Symlink { target }) = self.get(&so_far).map(|e| &e.kind)
                    {
                        resolved = self.resolve_link(&so_far, target, hops + 1, resolved_links)?;
                    }
                }
            }
        }
        Some(resolved)
    }
}

/// Where a tree's symlinks may point.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Symlinks {
    /// A release: inside the tree, following the tree's own links.
    StayInside,
    /// Application data: anywhere, as the links are never followed.
    Anywhere,
}

/// Longest path accepted, in bytes.
const MAX_PATH: usize = 4096;
/// Longest path component accepted, in bytes.
const MAX_COMPONENT: usize = 255;

/// Checks one path of a tree: relative, `/`-separated, no empty, `.` or `..` components,
/// no NUL, within length limits.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("the path is longer than {MAX_PATH} bytes"));
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    for component in path.split('/') {
        match component {
            "" => return Err("the path has an empty component (// or a trailing /)".into()),
            "." => return Err("the path has a '.' component".into()),
            ".." => return Err("the path has a '..' component".into()),
            c if c.len() > MAX_COMPONENT => {
                return Err(format!(
                    "a path component is longer than {MAX_COMPONENT} bytes"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a symlink at `link_path` with `target` resolves (lexically) inside the tree.
pub fn symlink_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth: Vec<&str> = link_path.split('/').collect();
    depth.pop(); // the link itself
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            name => depth.push(name),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                mode: 0o644,
                size: content.len() as u64,
                hash: ContentHash::of(content),
                chunks: Vec::new(),
            },
        }
    }

    fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }
    }

    fn link(path: &str, target: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink {
                target: target.into(),
            },
        }
    }

    #[test]
    fn data_may_link_anywhere_but_nothing_lies_below_a_link() {
        let data = Manifest {
            entries: vec![
                dir("logs"),
                link("logs/current", "/var/log/app.log"),
                link("up", "../../elsewhere"),
            ],
        };
        data.validate_data().unwrap();
        assert!(data.validate().is_err(), "a release keeps its links inside");
        let below = Manifest {
            entries: vec![link("etc", "/etc"), file("etc/passwd", b"x")],
        };
        let error = below.validate_data().unwrap_err().to_string();
        assert!(error.contains("is not a directory of the tree"), "{error}");
        let empty = Manifest {
            entries: vec![link("nothing", "")],
        };
        assert!(empty.validate_data().is_err());
    }

    #[test]
    fn paths() {
        for good in ["a", "a/b", "a.b/c-d_e", "ünï/ok", ".hidden", "a/..b"] {
            assert_eq!(validate_path(good), Ok(()), "{good}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("/etc", "absolute"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("./a", "'.'"),
            ("a/../b", "'..'"),
            ("..", "'..'"),
            ("a\0b", "NUL"),
        ] {
            assert!(validate_path(bad).unwrap_err().contains(reason), "{bad:?}");
        }
        assert!(validate_path(&"a".repeat(256)).is_err());
        assert!(validate_path(&["a"; 3000].join("/")).is_err());
    }

    #[test]
    fn symlinks() {
        let cases = [
            ("link", "target", true),
            ("a/link", "../target", true),
            ("a/b/link", "../../x", true),
            ("a/b/link", "./../c/./d", true),
            ("link", "../outside", false),
            ("a/link", "../../outside", false),
            ("a/link", "b/../../../x", false),
            ("link", "/etc/passwd", false),
            ("link", "", false),
        ];
        for (path, target, inside) in cases {
            assert_eq!(
                symlink_stays_inside(path, target),
                inside,
                "{path} -> {target}"
            );
        }
    }

    #[test]
    fn validation_names_the_first_bad_entry() {
        let check = |entries: Vec<Entry>, bad: Option<(&str, &str)>| {
            let result = Manifest { entries }.validate();
            match (result, bad) {
                (Ok(()), None) => {}
                (Err(e), Some((path, reason))) => {
                    let text = e.to_string();
                    assert!(text.starts_with(path) && text.contains(reason), "{text}");
                }
                (result, bad) => panic!("{result:?} vs {bad:?}"),
            }
        };
        check(vec![dir("a"), file("a/b", b"x"), link("a/c", "b")], None);
        check(
            vec![file("b", b""), file("a", b"")],
            Some(("a", "not sorted")),
        );
        check(vec![file("a", b""), file("a", b"")], Some(("a", "twice")));
        check(
            vec![file("a/b", b"")],
            Some(("a/b", "parent \"a\" is not a directory")),
        );
        check(
            vec![file("a", b""), file("a/b", b"")],
            Some(("a/b", "not a directory")),
        );
        check(vec![link("l", "../x")], Some(("l", "outside the tree")));
        // Each link looks harmless alone; through `d/s` (the root), `e` leaves the tree.
        check(
            vec![dir("d"), link("d/s", ".."), link("e", "d/s/..")],
            Some(("e", "outside the tree")),
        );
        check(
            vec![link("a", "b"), link("b", "a")],
            Some(("a", "outside the tree")),
        );
        check(vec![dir("d"), link("d/s", ".."), link("e", "d/s/d")], None);
        check(vec![file("../x", b"")], Some(("../x", "'..'")));
        let mut chunked = file("big", b"abc");
        if let EntryKind::File { chunks, .. } = &mut chunked.kind {
            chunks.push(Chunk {
                hash: ContentHash::of(b"ab"),
                size: 2,
            });
        }
        check(vec![chunked], Some(("big", "do not add up")));
        // Regression: chunk sizes whose sum overflows (wrapping to the file's size in a
        // build without overflow checks) are refused, not added up.
        let mut wrapping = file("big", b"a");
        if let EntryKind::File { chunks, .. } = &mut wrapping.kind {
            for size in [u64::MAX, 2] {
                chunks.push(Chunk {
                    hash: ContentHash::of(b"a"),
                    size,
                });
            }
        }
        check(vec![wrapping], Some(("big", "do not add up")));
    }

    #[test]
    fn digests_identify_content_and_metadata() {
        let a = Manifest {
            entries: vec![file("a", b"1")],
        };
        let b = Manifest {
            entries: vec![file("a", b"2")],
        };
        let mut c = a.clone();
        if let EntryKind::File { mode, .. } = &mut c.entries[0].kind {
            *mode = 0o755;
        }
        assert_eq!(a.digest(), a.clone().digest());
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn stored_manifests_round_trip_and_are_checked() {
        let manifest = Manifest {
            entries: vec![file("a", b"1"), file("b", b"2")],
        };
        let blob = manifest.to_blob();
        assert_eq!(
            Manifest::from_blob(&blob, &manifest.digest()).unwrap(),
            manifest
        );
        assert!(Manifest::from_blob(&blob, &ContentHash::of(b"other")).is_err());
        assert!(Manifest::from_blob(b"not zstd", &manifest.digest()).is_err());
    }

    /// Regression: a small blob that decompresses to more than any manifest (a zstd bomb)
    /// was decompressed whole before its digest was checked.
    #[test]
    fn a_stored_manifest_that_decompresses_past_the_limit_is_refused_unread() {
        use std::io::Write;
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_MANIFEST_BYTES >> 20) {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let error = Manifest::from_blob(&bomb, &ContentHash::of(b"x")).unwrap_err();
        assert!(
            error.to_string().contains("more than any manifest"),
            "{error}"
        );
    }

    /// Each link names the one before it three times (`l01 -> l00/../l00/../l00`): following
    /// every link each time it is named took 3^22 steps for these 23 entries, in the server
    /// checking a release's manifest and in the agent checking what it deploys.
    #[test]
    fn links_naming_links_many_times_are_resolved_once_each() {
        let names: Vec<String> = (0..22).map(|i| format!("l{i:02}")).collect();
        let mut entries = vec![file("a", b""), link(&names[0], "a")];
        for pair in names.windows(2) {
            let before = &pair[0];
            entries.push(link(&pair[1], &format!("{before}/../{before}/../{before}")));
        }
        let mut manifest = Manifest { entries };
        manifest.validate().unwrap();
        // The same chain leaving the tree at its start is refused at every link.
        manifest.entries[1] = link(&names[0], "../a");
        let error = manifest.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("l00") && error.contains("outside the tree"),
            "{error}"
        );
        // And looping back to its end.
        manifest.entries[1] = link(&names[0], names.last().unwrap());
        let error = manifest.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("l00") && error.contains("outside the tree"),
            "{error}"
        );
    }

    #[test]
    fn blobs_are_distinct() {
        let manifest = Manifest {
            entries: vec![file("a", b"same"), file("b", b"same"), file("c", b"other")],
        };
        assert_eq!(manifest.blobs().len(), 2);
        assert_eq!(manifest.n_files(), 3);
        assert_eq!(manifest.n_bytes(), 13);
        let mut claiming = manifest.clone();
        for entry in &mut claiming.entries {
            if let EntryKind::File { size, .. } = &mut entry.kind {
                *size = u64::MAX / 2;
            }
        }
        assert_eq!(claiming.n_bytes(), u64::MAX);
    }
}
