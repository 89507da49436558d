//! Crash recovery: a deploy (and the cleanup after it) runs in a child process that
//! aborts at one failpoint; the target must still serve one complete release, and the
//! next deploy must converge. Every failpoint is visited in at least one scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ferry_agent::failpoint::FAILPOINT_VAR;
use ferry_agent::layout::cache_dir;
use ferry_agent::{cleanup, deploy, verify_release, FAILPOINTS};
use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::Manifest;

use crate::fixture::*;

/// Tells the `crash_child` test to act: the directory holding its instructions.
const CHILD_VAR: &str = "FERRY_AGENT_TEST_CRASH_CHILD";
const NEW: &str = "2.0";

struct Scenario {
    name: &'static str,
    /// Deployed (successfully) before the child runs.
    before: &'static [&'static str],
    /// The new release fails its health check and is switched back.
    unhealthy: bool,
    /// The child cleans up after deploying, keeping this many releases.
    cleanup_keep: Option<usize>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "upgrade",
        before: &["1.0", "1.1"],
        unhealthy: false,
        cleanup_keep: Some(1),
    },
    Scenario {
        name: "unhealthy upgrade",
        before: &["1.0", "1.1"],
        unhealthy: true,
        cleanup_keep: Some(1),
    },
    Scenario {
        name: "first deploy",
        before: &[],
        unhealthy: false,
        cleanup_keep: None,
    },
    Scenario {
        name: "unhealthy first deploy",
        before: &[],
        unhealthy: true,
        cleanup_keep: None,
    },
];

const CONFIG: &str = r#"
shared = ["uploads", "config/local.ini"]
[hooks]
before_switch = "echo before"
after_switch = "echo after"
[health]
command = "test ! -e \"$FERRY_SHARED_DIR/unhealthy\""
timeout = "300ms"
"#;

/// The three releases: 2.0 keeps some files of 1.1, changes others, adds and drops some.
fn releases() -> BTreeMap<&'static str, Built> {
    let common = |version: &str, seed: u32| {
        let mut items = vec![
            ferry_toml(CONFIG),
            dir("bin", 0o755),
            file_mode("bin/run", "#!/bin/sh\necho run\n", 0o755),
            dir("config", 0o755),
            file("config/local.ini", format!("initial config of {version}")),
            file("config/app.ini", "shared by all versions"),
            dir("uploads", 0o755),
            file("uploads/readme.txt", "uploads go here"),
            file("big.bin", big_content(1_200_000, 1)),
            file("changing.bin", big_content(1_100_000, seed)),
            file("version.txt", version),
            dir("ro", 0o555),
            file_mode("ro/constant", "read only", 0o444),
            link("start", "bin/run"),
        ];
        for i in 0..8 {
            items.push(file(
                &format!("page-{i}.html"),
                format!("page {i} of {version}"),
            ));
        }
        items
    };
    let mut new = common(NEW, 3);
    new.push(file_mode("only-in-2.txt", "new", 0o640));
    let mut old = common("1.1", 2);
    old.push(file("only-in-1.txt", "old"));
    BTreeMap::from([
        ("1.0", build(&common("1.0", 1))),
        ("1.1", build(&old)),
        (NEW, build(&new)),
    ])
}

/// Every release directory on disk is complete, and `current` points at one of them.
fn assert_complete(target: &Target, manifests: &BTreeMap<&str, Manifest>, context: &str) {
    for version in target.layout().releases_on_disk().unwrap() {
        let differences = verify_release(
            target.root(),
            APP,
            &version,
            &manifests[version.version.as_str()],
        );
        assert!(
            differences.is_empty(),
            "{context}: release {version} on disk is incomplete: {differences:?}"
        );
    }
    let link = target.layout().current_link();
    if fs::symlink_metadata(&link).is_ok() {
        let current = target
            .current()
            .unwrap_or_else(|| panic!("{context}: current is not a release link"));
        assert!(
            target.layout().has_release(&v(&current)),
            "{context}: current points at {current}, which is not on disk"
        );
    }
}

/// Runs one scenario with a crash at `failpoint`; returns whether the child crashed there.
fn crash_once(scenario: &Scenario, failpoint: &str, releases: &BTreeMap<&str, Built>) -> bool {
    let context = format!("{} / {failpoint}", scenario.name);
    let work = tempfile::tempdir().unwrap();
    let target = Target::new();
    for built in releases.values() {
        target.cache(built);
    }
    for version in scenario.before {
        target.deploy_ok(version, &releases[version].manifest);
    }
    let shared = target.layout().shared_dir();
    fs::create_dir_all(&shared).unwrap();
    if scenario.unhealthy {
        fs::write(shared.join("unhealthy"), "").unwrap();
    }
    let manifest = &releases[NEW].manifest;
    fs::write(work.path().join("root"), target.root().to_str().unwrap()).unwrap();
    fs::write(
        work.path().join("manifest.json"),
        serde_json::to_vec(manifest).unwrap(),
    )
    .unwrap();
    if let Some(keep) = scenario.cleanup_keep {
        fs::write(work.path().join("cleanup"), keep.to_string()).unwrap();
    }

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_VAR, work.path())
        .env(FAILPOINT_VAR, failpoint)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let crashed = output.status.signal() == Some(6);
    assert!(
        crashed || output.status.success(),
        "{context}: the child failed: {:?}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let manifests: BTreeMap<&str, Manifest> = releases
        .iter()
        .map(|(v, b)| (*v, b.manifest.clone()))
        .collect();
    assert_complete(&target, &manifests, &context);
    if crashed {
        let current = target.current();
        let expected_before = scenario.before.last().map(|v| v.to_string());
        assert!(
            current == expected_before || current.as_deref() == Some(NEW),
            "{context}: current is {current:?}"
        );
    }

    // Recovery: the same deploy again, healthy this time, converges to the new release.
    let _ = fs::remove_file(shared.join("unhealthy"));
    target.deploy_ok(NEW, manifest);
    assert_eq!(target.current().as_deref(), Some(NEW), "{context}");
    assert_complete(&target, &manifests, &context);
    cleanup(target.root(), APP, 1).unwrap();
    assert_complete(&target, &manifests, &context);
    assert_clean(&target, &context);
    assert_eq!(
        fs::read_to_string(shared.join("uploads/readme.txt")).unwrap(),
        "uploads go here",
        "{context}"
    );
    crashed
}

/// No work in progress is left behind after a successful deploy and cleanup.
fn assert_clean(target: &Target, context: &str) {
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let layout = target.layout();
    let releases = names(&layout.releases_dir());
    assert!(
        releases.iter().all(|n| !n.starts_with('.')),
        "{context}: {releases:?}"
    );
    let app = names(&layout.app_dir());
    assert!(
        app.iter().all(|n| !n.starts_with("current.tmp")),
        "{context}: {app:?}"
    );
    let journal = names(&target.root().join(".ferry/journal"));
    assert!(
        journal.iter().all(|n| n.ends_with(".json")),
        "{context}: {journal:?}"
    );
    let scratch = names(&layout.scratch_dir());
    assert!(scratch.is_empty(), "{context}: {scratch:?}");
}

#[test]
fn a_crash_at_any_failpoint_leaves_a_complete_release_and_the_next_deploy_converges() {
    let releases = releases();
    // One thread per scenario: each run has its own target and child process.
    let reached: BTreeSet<&str> = std::thread::scope(|scope| {
        let runs: Vec<_> = SCENARIOS
            .iter()
            .map(|scenario| {
                let releases = &releases;
                scope.spawn(move || {
                    FAILPOINTS
                        .iter()
                        .filter(|failpoint| crash_once(scenario, failpoint, releases))
                        .copied()
                        .collect::<Vec<&str>>()
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap())
            .collect()
    });
    let never: Vec<&&str> = FAILPOINTS
        .iter()
        .filter(|f| !reached.contains(*f))
        .collect();
    assert!(
        never.is_empty(),
        "failpoints no scenario reached: {never:?}"
    );
}

/// Not a test on its own: the child process of the crash test, run with `CHILD_VAR`.
#[test]
fn crash_child() {
    let Some(work) = std::env::var_os(CHILD_VAR) else {
        return;
    };
    let work = Path::new(&work);
    let root = fs::read_to_string(work.join("root")).unwrap();
    let root = Path::new(&root);
    let manifest: Manifest =
        serde_json::from_slice(&fs::read(work.join("manifest.json")).unwrap()).unwrap();
    let cache = BlobStore::open(&cache_dir(root)).unwrap();
    deploy(root, &request(NEW, &manifest), &cache, &mut |_| {});
    if let Ok(keep) = fs::read_to_string(work.join("cleanup")) {
        cleanup(root, APP, keep.parse().unwrap()).unwrap();
    }
}
