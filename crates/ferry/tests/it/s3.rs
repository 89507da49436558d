//! Release content in a bucket of a real S3-compatible service (moto, see `moto.rs`) through
//! the real `ferry` binary: upload and deploy to a real agent, dedup, garbage collection
//! with its grace period, fsck and quarantine, and the service stopping in the middle of an
//! upload.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::deployments::{setup, start_agent};
use crate::harness::{noise, Run, Server};
use crate::moto::{Gate, Moto, BUCKET};

/// The key prefix the tests' servers keep blobs under.
const PREFIX: &str = "ferry/blobs";

/// A server keeping its blobs in moto's bucket (reached at `port`: moto's, or a gate's).
fn server_on(port: u16, args: &[&str]) -> Server {
    let blobs = format!("s3://{BUCKET}/{PREFIX}");
    let mut all = vec!["--blobs", &blobs];
    all.extend_from_slice(args);
    let server = Server::start_with_env(&all, &Moto::env(port));
    assert!(
        server
            .log()
            .contains(&format!("release content is kept in {blobs}")),
        "{}",
        server.log()
    );
    server
}

/// The key of the object holding `content`.
fn key_of(content: &[u8]) -> String {
    let hex = blake3::hash(content).to_hex().to_string();
    format!("{PREFIX}/{}/{hex}", &hex[..2])
}

/// A site with small files and a 3 MB file (chunked), made of `seed`.
fn site(root: &Path, name: &str, seed: u32) -> PathBuf {
    let site = root.join(name);
    fs::create_dir_all(site.join("css")).unwrap();
    fs::write(site.join("index.html"), format!("<h1>shop {seed}</h1>\n")).unwrap();
    fs::write(site.join("css/site.css"), "body { color: teal }\n").unwrap();
    fs::write(site.join("data.bin"), noise(3_000_000, u64::from(seed))).unwrap();
    site
}

fn create(server: &Server, version: &str, from: &Path) -> Run {
    server.admin(&[
        "release",
        "create",
        "web",
        version,
        "--from",
        from.to_str().unwrap(),
        "--json",
    ])
}

/// Every object in the bucket is a whole blob: its content hashes to its key.
fn assert_every_object_is_whole(moto: &Moto) {
    for key in moto.keys(PREFIX) {
        if key.contains("/quarantine/") {
            continue;
        }
        let content = moto.get(&key).unwrap();
        assert_eq!(key, key_of(&content), "a torn or foreign object");
    }
}

fn diff(a: &Path, b: &Path) {
    let run = Run::of(std::process::Command::new("diff").arg("-r").arg(a).arg(b));
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_release_in_s3_deploys_through_a_real_agent_and_a_second_upload_sends_nothing() {
    let Some(moto) = Moto::start() else { return };
    let server = server_on(moto.port, &[]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    let site = site(server.dir.path(), "site", 1);
    let first = create(&server, "1.0.0", &site).success().json();
    assert!(first["new_bytes"].as_u64().unwrap() > 3_000_000, "{first}");
    // The content is in the bucket, not on the server's disk.
    assert!(!server.data_dir().join("blobs").exists());
    let objects = moto.keys(PREFIX);
    assert!(moto.get(&key_of(b"<h1>shop 1</h1>\n")).is_some());
    assert_every_object_is_whole(&moto);

    // Dedup: the same tree again sends nothing, and stores nothing new.
    let second = create(&server, "1.0.1", &site).success().json();
    assert_eq!(second["new_bytes"], 0, "{second}");
    assert_eq!(moto.keys(PREFIX), objects);

    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    diff(&site, &agent.root.join("apps/web/current"));
    server.admin(&["server", "fsck"]).success();
}

#[test]
fn garbage_in_s3_is_collected_only_past_its_grace_period() {
    let Some(moto) = Moto::start() else { return };
    let grace = Duration::from_secs(8);
    let server = server_on(
        moto.port,
        &["--gc-grace", "8s", "--maintenance-every", "1s"],
    );
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "1"])
        .success();
    let one = site(server.dir.path(), "one", 1);
    let two = site(server.dir.path(), "two", 2);
    let uploaded = Instant::now();
    create(&server, "1", &one).success();
    create(&server, "2", &two).success();
    let only_one = key_of(b"<h1>shop 1</h1>\n");
    let shared = key_of(b"body { color: teal }\n");

    // The periodic pass prunes release 1 at once; its content stays while young.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = server
            .admin(&["release", "list", "web", "--json"])
            .success();
        if list.json().as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "release 1 was never pruned");
        std::thread::sleep(Duration::from_millis(200));
    }
    if uploaded.elapsed() < grace - Duration::from_secs(2) {
        assert!(
            moto.get(&only_one).is_some(),
            "collected inside its grace period"
        );
    }

    // Past the grace period it goes; what release 2 uses stays.
    let deadline = Instant::now() + Duration::from_secs(60);
    while moto.get(&only_one).is_some() {
        assert!(Instant::now() < deadline, "the garbage was never collected");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        uploaded.elapsed() >= grace,
        "collected before its grace period"
    );
    assert!(moto.get(&shared).is_some());
    assert!(moto.get(&key_of(b"<h1>shop 2</h1>\n")).is_some());
    let fsck = server.admin(&["server", "fsck", "--json"]).success().json();
    assert_eq!(fsck["ok"], true, "{fsck}");
}

#[test]
fn fsck_finds_a_corrupt_and_a_missing_object_in_s3_and_quarantines_the_corrupt_one() {
    let Some(moto) = Moto::start() else { return };
    let server = server_on(moto.port, &[]);
    setup(&server);
    let site = site(server.dir.path(), "site", 1);
    create(&server, "1.0.0", &site).success();
    let intact = server.admin(&["server", "fsck"]).success();
    assert!(intact.stdout.ends_with(" blobs intact\n"), "{intact:?}");

    let index = b"<h1>shop 1</h1>\n";
    let corrupt = blake3::hash(index).to_hex().to_string();
    moto.put(&key_of(index), b"<h1>sh0p 1</h1>\n");
    let css = b"body { color: teal }\n";
    let missing = blake3::hash(css).to_hex().to_string();
    moto.delete(&key_of(css));

    let run = server.admin(&["server", "fsck", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report = run.json();
    assert_eq!(report["corrupt"], serde_json::json!([corrupt]));
    // The quarantined blob is missing now too, like the deleted one.
    let mut gone = vec![corrupt.clone(), missing];
    gone.sort();
    assert_eq!(report["missing"], serde_json::json!(gone));
    // Moved aside under the prefix's quarantine/, so it reads as missing.
    assert_eq!(
        moto.get(&format!("{PREFIX}/quarantine/{corrupt}")).unwrap(),
        b"<h1>sh0p 1</h1>\n"
    );
    assert_eq!(moto.get(&key_of(index)), None);
    server
        .admin(&["server", "fsck"])
        .fails(1, "corrupt or missing blobs");

    // Creating the release again from its source uploads both anew.
    let repaired = create(&server, "1.0.1", &site).success().json();
    assert_eq!(repaired["new_bytes"], (index.len() + css.len()) as u64);
    server.admin(&["server", "fsck"]).success();
}

#[test]
fn s3_stopping_mid_upload_fails_clearly_stores_nothing_that_counts_and_the_retry_succeeds() {
    let Some(moto) = Moto::start() else { return };
    let gate = Gate::open_to(moto.port);
    let server = server_on(gate.port, &[]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    let site = site(server.dir.path(), "site", 1);
    for n in 0..3 {
        fs::write(site.join(format!("big-{n}.bin")), noise(8_000_000, 10 + n)).unwrap();
    }
    // The service stops once 10 MB of the 27 MB upload reached it.
    gate.close_after(10_000_000);
    let failed = create(&server, "1.0.0", &site);
    assert!(!gate.is_open(), "the gate never closed: {failed:?}");
    let failed = failed.fails(1, "the upload was not stored");
    assert!(
        failed.stderr.contains("s3://ferry-blobs/ferry/blobs")
            && failed
                .stderr
                .contains("None of this upload counts as stored")
            && failed.stderr.contains("run the same command again"),
        "{failed:?}"
    );
    let releases = server
        .admin(&["release", "list", "web", "--json"])
        .success();
    assert_eq!(releases.json(), serde_json::json!([]));
    // While it is down, fsck says so rather than reporting content lost.
    server
        .admin(&["server", "fsck"])
        .fails(1, "the server's blob storage failed");

    // What reached the bucket before it stopped is whole blobs only, and none counts:
    // once the service is back, the same command uploads the whole tree again.
    gate.open();
    assert_every_object_is_whole(&moto);
    let retried = create(&server, "1.0.0", &site).success().json();
    let tree_bytes: u64 = ["index.html", "css/site.css", "data.bin"]
        .iter()
        .map(|path| fs::metadata(site.join(path)).unwrap().len())
        .chain((0..3).map(|n| {
            fs::metadata(site.join(format!("big-{n}.bin")))
                .unwrap()
                .len()
        }))
        .sum();
    assert_eq!(retried["new_bytes"], tree_bytes, "{retried}");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    diff(&site, &agent.root.join("apps/web/current"));
    server.admin(&["server", "fsck"]).success();
}

#[test]
fn a_bad_blobs_url_or_an_unreachable_bucket_stops_the_server_at_start() {
    let run = Run::of(
        std::process::Command::new(crate::harness::FERRY)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--blobs",
                "ftp://host/blobs",
            ])
            .arg("--data")
            .arg(tempfile::tempdir().unwrap().path()),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("\"ftp://host/blobs\" is not a blob storage URL")
            && run.stderr.contains("file:///absolute/dir")
            && run.stderr.contains("s3://bucket/prefix"),
        "{run:?}"
    );

    // Nothing listens on this port: the server says what it could not reach and stops.
    let closed = crate::moto::free_port();
    let data = tempfile::tempdir().unwrap();
    let run = Run::of(
        std::process::Command::new(crate::harness::FERRY)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--blobs",
                "s3://ferry-blobs/p",
            ])
            .arg("--data")
            .arg(data.path())
            .envs(Moto::env(closed)),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("opening the blob storage s3://ferry-blobs/p")
            && run.stderr.contains("listing the bucket")
            && run.stderr.to_lowercase().contains("connection refused"),
        "{run:?}"
    );
}

#[test]
fn an_installation_moves_to_postgres_with_its_content_to_s3() {
    let Some(moto) = Moto::start() else { return };
    let Some(database) = crate::harness::postgres_database() else {
        return;
    };
    if crate::harness::on_postgres() {
        // The suite runs on PostgreSQL: there is no SQLite installation to move.
        return;
    }
    // The server comes back at the same address, as agents know it.
    let listen = format!("127.0.0.1:{}", crate::moto::free_port());
    let server = Server::start_with(&["--listen", &listen]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    let v1 = site(server.dir.path(), "v1", 1);
    create(&server, "1.0.0", &v1).success();
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let (_, dir, _) = server.stop();
    let data = dir.path().join("data");

    let blobs = format!("s3://{BUCKET}/moved");
    let moved = Run::of(
        std::process::Command::new(crate::harness::FERRY)
            .args(["server", "migrate", "--from"])
            .arg(&data)
            .args(["--to", &database.url, "--blobs", &blobs])
            .envs(Moto::env(moto.port)),
    )
    .success();
    assert!(moved.stdout.contains("copied "), "{moved:?}");
    assert!(
        moved.stdout.contains(&format!("--blobs {blobs}")),
        "{moved:?}"
    );
    assert!(!moto.keys("moved/").is_empty());

    // Without the folder, everything comes from the database and the bucket.
    fs::remove_dir_all(data.join("blobs")).unwrap();
    let server = Server::start_in_database(
        dir,
        database,
        &["--listen", &listen, "--blobs", &blobs],
        &Moto::env(moto.port),
    );
    server.admin(&["server", "fsck"]).success();
    server.admin(&["audit", "verify"]).success();
    let v2 = site(server.dir.path(), "v2", 2);
    create(&server, "1.0.1", &v2).success();
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    diff(&v2, &agent.root.join("apps/web/current"));
}
