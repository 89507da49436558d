//! A target in a temporary directory, and releases built from small trees described in
//! the tests: each tree is written to disk, scanned with `ferry_cas::scan::scan_tree`, and
//! its blobs are put in the target's cache.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_agent::config_files::ConfigValues;
use ferry_agent::layout::{cache_dir, AppLayout, Installed};
use ferry_agent::{
    deploy, rollback, AgentResult, DeployEvent, DeployOutcome, DeployRequest, StageReport, Step,
};
use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::ingest::Limits;
use ferry_cas::manifest::Manifest;
use ferry_cas::scan::scan_tree;

pub const APP: &str = "shop";

/// One path of a release tree.
#[derive(Clone, Debug)]
pub enum Item {
    File {
        path: String,
        content: Vec<u8>,
        mode: u32,
    },
    Dir {
        path: String,
        mode: u32,
    },
    Link {
        path: String,
        target: String,
    },
}

/// A regular file with mode 0644.
pub fn file(path: &str, content: impl AsRef<[u8]>) -> Item {
    file_mode(path, content, 0o644)
}

/// A regular file with the given mode.
pub fn file_mode(path: &str, content: impl AsRef<[u8]>, mode: u32) -> Item {
    Item::File {
        path: path.into(),
        content: content.as_ref().to_vec(),
        mode,
    }
}

/// A directory with the given mode.
pub fn dir(path: &str, mode: u32) -> Item {
    Item::Dir {
        path: path.into(),
        mode,
    }
}

/// A symlink.
pub fn link(path: &str, target: &str) -> Item {
    Item::Link {
        path: path.into(),
        target: target.into(),
    }
}

/// `ferry.toml` with the given text.
pub fn ferry_toml(text: &str) -> Item {
    file("ferry.toml", text)
}

/// Deterministic bytes that chunk into several blobs (over the 1 MiB threshold).
pub fn big_content(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Writes the items as a tree under `dest` (directory modes last).
pub fn write_tree(dest: &Path, items: &[Item]) {
    fs::create_dir_all(dest).unwrap();
    let mut dir_modes = Vec::new();
    for item in items {
        match item {
            Item::Dir { path, mode } => {
                fs::create_dir_all(dest.join(path)).unwrap();
                dir_modes.push((dest.join(path), *mode));
            }
            Item::File {
                path,
                content,
                mode,
            } => {
                let full = dest.join(path);
                fs::create_dir_all(full.parent().unwrap()).unwrap();
                fs::write(&full, content).unwrap();
                fs::set_permissions(&full, fs::Permissions::from_mode(*mode)).unwrap();
            }
            Item::Link { path, target } => {
                let full = dest.join(path);
                fs::create_dir_all(full.parent().unwrap()).unwrap();
                symlink(target, &full).unwrap();
            }
        }
    }
    for (path, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A release's manifest and the bytes of every blob it needs.
#[derive(Clone)]
pub struct Built {
    pub manifest: Manifest,
    pub blobs: Vec<(ContentHash, Vec<u8>)>,
}

/// Writes, scans and reads back a release tree.
pub fn build(items: &[Item]) -> Built {
    let source = tempfile::tempdir().unwrap();
    write_tree(source.path(), items);
    let scanned = scan_tree(source.path(), &Limits::default()).unwrap();
    let blobs = scanned
        .manifest
        .blobs()
        .into_iter()
        .map(|chunk| {
            let location = &scanned.locations[&chunk.hash];
            let data = fs::read(&location.path).unwrap();
            let start = location.offset as usize;
            (
                chunk.hash,
                data[start..start + location.len as usize].to_vec(),
            )
        })
        .collect();
    make_writable(source.path());
    Built {
        manifest: scanned.manifest,
        blobs,
    }
}

/// Runs `change` with the (read-only) directory `dir` writable by its owner, then gives it
/// its mode back: how someone with a shell on the target changes a release.
pub fn in_writable_dir(dir: &Path, change: impl FnOnce()) {
    let mode = fs::symlink_metadata(dir).unwrap().permissions().mode();
    fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o200)).unwrap();
    change();
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `content` over the (read-only) file at `path` in place, keeping its mode: `chmod
/// u+w`, write, `chmod u-w`, as someone with a shell on the target might.
pub fn write_over(path: &Path, content: impl AsRef<[u8]>) {
    let mode = fs::symlink_metadata(path).unwrap().permissions().mode();
    fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o200)).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path under `root` but the releases and the agent's state (`.ferry`), with what it
/// is: kind, mode, and content or link target. What staging must leave alone.
pub fn outside_releases(root: &Path) -> std::collections::BTreeMap<String, String> {
    fn visit(dir: &Path, relative: &str, out: &mut std::collections::BTreeMap<String, String>) {
        let Ok(children) = fs::read_dir(dir) else {
            return;
        };
        for child in children {
            let child = child.unwrap();
            let name = child.file_name().into_string().unwrap();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            if path == ".ferry" || path.ends_with("/releases") {
                continue;
            }
            let metadata = fs::symlink_metadata(child.path()).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let what = if metadata.is_dir() {
                visit(&child.path(), &path, out);
                format!("dir {mode:o}")
            } else if metadata.file_type().is_symlink() {
                format!("link {}", fs::read_link(child.path()).unwrap().display())
            } else {
                format!("file {mode:o} {:?}", fs::read(child.path()).unwrap())
            };
            out.insert(path, what);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    visit(root, "", &mut out);
    out
}

/// Gives every directory under `path` owner rwx (so a temp dir can be removed).
pub fn make_writable(path: &Path) {
    ferry_agent::fsutil::make_writable(path).unwrap();
}

/// What the server asks of the target: `version` of the application, holding `manifest`,
/// in environment `prd`.
pub fn request(version: &str, manifest: &Manifest) -> DeployRequest {
    DeployRequest {
        app: APP.into(),
        env: "prd".into(),
        version: version.into(),
        manifest: manifest.clone(),
        config: ConfigValues::none(),
        commands_as: Ok(None),
    }
}

/// What the server asks of the target: `version` of the application, holding `manifest`,
/// with the configuration `values`, in environment `prd`.
pub fn request_with(version: &str, manifest: &Manifest, values: &ConfigValues) -> DeployRequest {
    DeployRequest {
        config: values.clone(),
        ..request(version, manifest)
    }
}

/// The values of configuration revision `revision`.
pub fn values(revision: u64, pairs: &[(&str, &str)]) -> ConfigValues {
    let values = pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    ConfigValues::new(revision, values).unwrap()
}

/// The release directory named `name` (`VERSION`, or `VERSION@N`).
pub fn v(name: &str) -> Installed {
    Installed::parse(name).unwrap()
}

/// A target root in a temporary directory, with its cache.
pub struct Target {
    pub dir: tempfile::TempDir,
    pub cache: BlobStore,
}

impl Drop for Target {
    fn drop(&mut self) {
        // Releases keep read-only directories; let the temp dir go.
        let _ = ferry_agent::fsutil::make_writable(self.dir.path());
    }
}

impl Target {
    /// An empty target.
    pub fn new() -> Target {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobStore::open(&cache_dir(dir.path())).unwrap();
        Target { dir, cache }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn layout(&self) -> AppLayout {
        AppLayout::new(self.root(), APP).unwrap()
    }

    /// Puts the release's blobs in the cache and returns its manifest.
    pub fn cache(&self, built: &Built) -> Manifest {
        let refs: Vec<(ContentHash, &[u8])> = built
            .blobs
            .iter()
            .map(|(h, d)| (*h, d.as_slice()))
            .collect();
        self.cache.put_batch(&refs).unwrap();
        built.manifest.clone()
    }

    /// Builds a release from items and caches its blobs.
    pub fn release(&self, items: &[Item]) -> Manifest {
        self.cache(&build(items))
    }

    /// Deploys `manifest` as `version` in environment `prd`, collecting the steps completed.
    pub fn deploy(&self, version: &str, manifest: &Manifest) -> (DeployOutcome, Vec<Step>) {
        let (outcome, events) = self.deploy_telling(version, manifest);
        let steps = events
            .into_iter()
            .filter_map(|event| match event {
                DeployEvent::Completed(step) => Some(step),
                _ => None,
            })
            .collect();
        (outcome, steps)
    }

    /// Deploys `manifest` as `version` in environment `prd`, collecting everything the
    /// engine told: steps started and completed, and the logs of hooks and health checks.
    pub fn deploy_telling(
        &self,
        version: &str,
        manifest: &Manifest,
    ) -> (DeployOutcome, Vec<DeployEvent>) {
        let mut events = Vec::new();
        let request = request(version, manifest);
        let outcome = deploy(self.root(), &request, &self.cache, &mut |event| {
            events.push(event)
        });
        (outcome, events)
    }

    /// Stages `manifest` as `version` ahead of its switch, as an agent does while a
    /// deployment awaits approval or for `deploy --stage-only`.
    pub fn stage_ahead(&self, version: &str, manifest: &Manifest) -> AgentResult<StageReport> {
        ferry_agent::deploy::prepare(self.root(), &request(version, manifest), &self.cache)
    }

    /// Rolls back to `version` (on disk), which holds `manifest`.
    pub fn rollback(&self, version: &str, manifest: &Manifest) -> AgentResult<StageReport> {
        rollback(self.root(), &request(version, manifest), &self.cache)
    }

    /// Deploys and insists it succeeded.
    pub fn deploy_ok(&self, version: &str, manifest: &Manifest) -> ferry_agent::StageReport {
        match self.deploy(version, manifest) {
            (DeployOutcome::Succeeded { report }, _) => report,
            (other, steps) => panic!("deploy {version}: {other:?} after {steps:?}"),
        }
    }

    pub fn current(&self) -> Option<String> {
        ferry_agent::current_version(self.root(), APP)
    }

    /// The directory of `name` (`VERSION`, or `VERSION@N`).
    pub fn release_dir(&self, name: &str) -> PathBuf {
        self.layout().release_dir(&v(name))
    }

    /// The inode of a path inside a release.
    pub fn inode(&self, version: &str, path: &str) -> u64 {
        fs::symlink_metadata(self.release_dir(version).join(path))
            .unwrap()
            .ino()
    }
}
