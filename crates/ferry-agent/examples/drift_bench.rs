//! Measures the drift check of a deployed release, for `bench/drift.py`:
//!
//! ```text
//! drift_bench TREE ROOT RUNS
//! ```
//!
//! deploys the tree at TREE as release `1.0` of application `bench` under ROOT (an empty
//! directory), checks it once to warm the page cache, then RUNS times unchanged, then
//! changes 10 small files under `current` (content written in place, same size) and checks
//! RUNS times again. Prints one JSON object: per run, wall and CPU time (the thread's time
//! on CPU from `/proc/thread-self/schedstat`, nanoseconds) and the paths found.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use ferry_agent::config_files::ConfigValues;
use ferry_agent::drift::{self, DriftCheck};
use ferry_agent::layout::{cache_dir, Installed};
use ferry_agent::{deploy, DeployOutcome, DeployRequest};
use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::ingest::Limits;
use ferry_cas::manifest::{EntryKind, Manifest};
use ferry_cas::scan::scan_tree;

const APP: &str = "bench";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, tree, root, runs] = args.as_slice() else {
        panic!("usage: drift_bench TREE ROOT RUNS");
    };
    let (tree, root) = (Path::new(tree), Path::new(root));
    let runs: usize = runs.parse().expect("RUNS is a number");
    let manifest = deploy_tree(tree, root);
    let cache = BlobStore::open(&cache_dir(root)).unwrap();
    let installed = Installed::new("1.0", 0);
    let config = drift::release_config(root, APP, &installed, &manifest, &cache).unwrap();
    let check = || {
        let (wall, cpu) = (Instant::now(), cpu_ns());
        let found = match drift::check(root, APP, &installed, &manifest, &config, 0).unwrap() {
            DriftCheck::Checked(found) => found.paths.len(),
            other => panic!("not checked: {other:?}"),
        };
        (wall.elapsed().as_nanos(), cpu_ns() - cpu, found)
    };
    check();
    let unchanged: Vec<_> = (0..runs).map(|_| check()).collect();
    for path in small_files(&manifest, 10) {
        let path = root.join("apps").join(APP).join("current").join(path);
        let mut data = fs::read(&path).unwrap();
        data[0] ^= 0xff;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, &data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    }
    let changed: Vec<_> = (0..runs).map(|_| check()).collect();
    let json = |runs: &[(u128, u128, usize)]| {
        let items: Vec<String> = runs
            .iter()
            .map(|(wall, cpu, found)| {
                format!("{{\"wall_ns\": {wall}, \"cpu_ns\": {cpu}, \"found\": {found}}}")
            })
            .collect();
        format!("[{}]", items.join(", "))
    };
    println!(
        "{{\"files\": {}, \"unchanged\": {}, \"changed\": {}}}",
        manifest.entries.len(),
        json(&unchanged),
        json(&changed)
    );
}

/// Scans the tree, puts its blobs in ROOT's cache and deploys it as `1.0`.
fn deploy_tree(tree: &Path, root: &Path) -> Manifest {
    let scanned = scan_tree(tree, &Limits::default()).unwrap();
    let cache = BlobStore::open(&cache_dir(root)).unwrap();
    for chunk in scanned.manifest.blobs() {
        let location = &scanned.locations[&chunk.hash];
        let data = fs::read(&location.path).unwrap();
        let start = location.offset as usize;
        let blob: &[u8] = &data[start..start + location.len as usize];
        assert_eq!(ContentHash::of(blob), chunk.hash);
        cache.put_batch(&[(chunk.hash, blob)]).unwrap();
    }
    let request = DeployRequest {
        app: APP.into(),
        env: "bench".into(),
        version: "1.0".into(),
        manifest: scanned.manifest.clone(),
        config: ConfigValues::none(),
        commands_as: Ok(None),
    };
    match deploy(root, &request, &cache, &mut |_| {}) {
        DeployOutcome::Succeeded { .. } => scanned.manifest,
        other => panic!("deploy: {other:?}"),
    }
}

/// The first `n` files of the manifest under 64 KiB, not empty.
fn small_files(manifest: &Manifest, n: usize) -> Vec<String> {
    manifest
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { size, .. } if size > 0 && size < 65_536))
        .step_by(97)
        .take(n)
        .map(|e| e.path.clone())
        .collect()
}

/// The time this thread has spent on a CPU, in nanoseconds.
fn cpu_ns() -> u128 {
    let text = fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}
