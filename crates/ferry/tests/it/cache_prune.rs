//! An agent's content cache holds what the releases kept on its target hold, not every
//! release the target ever ran: once cleanup removed releases, the blobs no release links
//! any more go when they are older than an hour (the test ages the cache's files instead
//! of waiting), and what went is fetched again when it is needed again.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ferry_cas::hash::ContentHash;

use crate::deployments::{current, release_from, restart_agent, start_agent_logged};
use crate::harness::{noise, wait_for_line, Server};

/// A release tree of `version`: a page and a data file of its own, a stylesheet every
/// version shares (read-only on the target, so hard-linked from the cache), and a script
/// of its own (executable, so copied out of the cache).
fn site(dir: &Path, version: &str, seed: u64) -> PathBuf {
    let site = dir.join(format!("site-{version}"));
    fs::create_dir_all(site.join("bin")).unwrap();
    fs::write(site.join("index.html"), format!("<h1>{version}</h1>\n")).unwrap();
    fs::write(site.join("site.css"), "body { color: teal }\n").unwrap();
    fs::write(site.join("data.bin"), noise(256 * 1024, seed)).unwrap();
    let run = site.join("bin/run");
    fs::write(&run, format!("#!/bin/sh\necho {version}\n")).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    site
}

/// The blobs in the cache under `root`: their hash (hex) and size.
fn cached_blobs(root: &Path) -> BTreeMap<String, u64> {
    let cache = root.join(".ferry/cache");
    let mut blobs = BTreeMap::new();
    for shard in fs::read_dir(&cache).unwrap() {
        let shard = shard.unwrap();
        if ["tmp", "quarantine"].contains(&shard.file_name().to_str().unwrap()) {
            continue;
        }
        for blob in fs::read_dir(shard.path()).unwrap() {
            let blob = blob.unwrap();
            // Pruned while it was read: gone.
            if let Ok(metadata) = blob.metadata() {
                blobs.insert(
                    blob.file_name().to_string_lossy().into_owned(),
                    metadata.len(),
                );
            }
        }
    }
    blobs
}

/// Sets the modification time of every file in the cache under `root` back by `age`, but
/// for the blobs `spared`: those the release served links, whose files would change with
/// them (and so no longer be linked into another release, as a file touched by hand).
fn age_cache(root: &Path, age: Duration, spared: &[String]) {
    let when = SystemTime::now() - age;
    for shard in fs::read_dir(root.join(".ferry/cache")).unwrap() {
        for file in fs::read_dir(shard.unwrap().path()).unwrap() {
            let file = file.unwrap();
            if !spared.contains(&file.file_name().to_string_lossy().into_owned()) {
                let file = fs::File::open(file.path()).unwrap();
                file.set_modified(when).unwrap();
            }
        }
    }
}

/// The hashes of the read-only files of releases `versions` on the target (hard links of
/// the cache's blobs), and of `copied` files of theirs: what the cache should hold.
fn held_by(root: &Path, versions: &[&str], copied: &[&str]) -> Vec<String> {
    let releases = &root.join("apps/web/releases");
    let mut held: Vec<String> = versions
        .iter()
        .flat_map(|version| {
            ["index.html", "site.css", "data.bin"]
                .iter()
                .map(move |path| releases.join(version).join(path))
        })
        .inspect(|path| assert!(fs::metadata(path).unwrap().nlink() >= 2, "{path:?}"))
        .chain(copied.iter().map(|path| releases.join(path)))
        .map(|path| ContentHash::of(&fs::read(path).unwrap()).to_hex())
        .collect();
    held.sort();
    held.dedup();
    held
}

/// Waits until the agent's log at `log` says it pruned `removed` and kept `kept` (whose
/// names are what the cache holds then): the log's sentence.
fn wait_for_prune(log: &Path, removed: &BTreeMap<String, u64>, kept: &BTreeMap<String, u64>) {
    wait_for_line(
        log,
        &format!(
            "pruned the content cache: removed {} blob(s) ({} bytes) no release holds; it keeps \
             {} blob(s) ({} bytes)",
            removed.len(),
            bytes(removed),
            kept.len(),
            bytes(kept)
        ),
    );
}

/// The bytes of `blobs`.
fn bytes(blobs: &BTreeMap<String, u64>) -> u64 {
    blobs.values().sum()
}

/// What of `before` is not in `after`.
fn gone(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    before
        .iter()
        .filter(|(hash, _)| !after.contains_key(*hash))
        .map(|(hash, size)| (hash.clone(), *size))
        .collect()
}

#[test]
fn the_cache_shrinks_to_what_the_kept_releases_hold_and_they_still_deploy() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "2"])
        .success();
    let (agent, log) = start_agent_logged(&server, "dev", "dev-1");
    let root = agent.root.clone();
    let deploy = |version: &str| {
        server
            .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    };
    let versions = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"];
    for (seed, version) in versions.iter().enumerate() {
        release_from(
            &server,
            version,
            &site(server.dir.path(), version, seed as u64),
        );
    }
    for version in &versions[..5] {
        deploy(version);
    }
    wait_until_kept(&root, &["1.0.3", "1.0.4"]);
    // Every blob is younger than the grace: none went, though cleanup removed releases.
    drop(agent);
    let five = cached_blobs(&root);
    assert_eq!(five.len(), 5 * 3 + 1, "{five:?}");

    // An hour later the agent starts again and prunes: what 1.0.3 and 1.0.4 link stays.
    let two_hours = Duration::from_secs(2 * 3600);
    age_cache(&root, two_hours, &held_by(&root, &["1.0.4"], &[]));
    let appended = fs::OpenOptions::new().append(true).open(&log).unwrap();
    let _agent = restart_agent(&root, appended.into(), None);
    let kept = held_by(&root, &["1.0.3", "1.0.4"], &[]);
    wait_until_cached(&root, &kept);
    let pruned = cached_blobs(&root);
    wait_for_prune(&log, &gone(&five, &pruned), &pruned);

    // 1.0.5's cleanup removes 1.0.3, whose blobs go at once: they are old; 1.0.5's script
    // (a copy) is kept, it was fetched just now.
    deploy("1.0.5");
    let kept = held_by(&root, &["1.0.4", "1.0.5"], &["1.0.5/bin/run"]);
    wait_until_cached(&root, &kept);
    let six = cached_blobs(&root);
    wait_for_prune(&log, &gone(&pruned, &six), &six);
    eprintln!(
        "the cache after 5 releases: {} bytes in {} blobs; pruned (keep 2): {} bytes in {} \
         blobs; after the 6th: {} bytes in {} blobs",
        bytes(&five),
        five.len(),
        bytes(&pruned),
        pruned.len(),
        bytes(&six),
        six.len()
    );

    // The kept releases still serve: a rollback switches back to 1.0.4 as it was; and one
    // to a release whose blobs went deploys it again, fetching them.
    server
        .admin(&["rollback", "web", "--env", "dev", "--wait"])
        .success();
    assert_eq!(current(&root, "web"), "releases/1.0.4");
    let served = root.join("apps/web/current");
    assert_eq!(
        fs::read_to_string(served.join("bin/run")).unwrap(),
        "#!/bin/sh\necho 1.0.4\n"
    );
    server
        .admin(&["rollback", "web", "--env", "dev", "--to", "1.0.1", "--wait"])
        .success();
    assert_eq!(current(&root, "web"), "releases/1.0.1");
    assert_eq!(
        fs::read(served.join("data.bin")).unwrap(),
        noise(256 * 1024, 1)
    );
    assert_eq!(
        fs::read_to_string(served.join("bin/run")).unwrap(),
        "#!/bin/sh\necho 1.0.1\n"
    );
}

/// Waits until the agent under `root` is done removing all releases of web but `versions`:
/// its journal, which cleanup writes last, names only them.
fn wait_until_kept(root: &Path, versions: &[&str]) {
    let journal = root.join(".ferry/journal/web.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(&journal).unwrap();
        let history: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut named: Vec<&str> = history["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|deployed| deployed["version"].as_str().unwrap())
            .collect();
        named.sort();
        if named == versions {
            return;
        }
        assert!(Instant::now() < deadline, "web keeps {versions:?}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the cache under `root` holds exactly the blobs `held`.
fn wait_until_cached(root: &Path, held: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cached: Vec<String> = cached_blobs(root).into_keys().collect();
        if cached == held {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cache holds {cached:?}, not {held:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
