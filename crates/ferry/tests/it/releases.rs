//! Releases through the real binary: every source kind, immutability, diff, export, and
//! bad input refused with nothing left behind.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Run, Server};

fn sh(dir: &Path, program: &str, args: &[&str]) {
    let run = Run::of(Command::new(program).args(args).current_dir(dir));
    assert_eq!(run.code, 0, "{program} {args:?}: {run:#?}");
}

/// A small site: nested dirs, an executable, a symlink, a 3 MB file (chunked).
fn site(root: &Path) -> PathBuf {
    let site = root.join("site");
    fs::create_dir_all(site.join("bin")).unwrap();
    fs::create_dir_all(site.join("css")).unwrap();
    fs::write(site.join("index.html"), "<h1>shop</h1>\n").unwrap();
    fs::write(site.join("css/site.css"), "body { color: teal }\n").unwrap();
    fs::write(site.join("bin/migrate"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(site.join("bin/migrate"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("index.html", site.join("home.html")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(site.join("data.bin"), big).unwrap();
    site
}

fn setup() -> Server {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop"])
        .success();
    server
}

/// Blob files in the server's store, to check that refusals leave nothing behind.
fn n_blobs(server: &Server) -> usize {
    let root = server.data_dir().join("blobs");
    fs::read_dir(&root)
        .unwrap()
        .map(|shard| shard.unwrap().path())
        .filter(|shard| shard.file_name().unwrap() != "tmp")
        .map(|shard| fs::read_dir(shard).unwrap().count())
        .sum()
}

fn create(server: &Server, version: &str, from: &str) -> Run {
    server.admin(&[
        "release", "create", "web", version, "--from", from, "--json",
    ])
}

#[test]
fn a_directory_release_exports_to_the_exact_tree() {
    let server = setup();
    let site = site(server.dir.path());
    let created = create(&server, "1.0.0", site.to_str().unwrap())
        .success()
        .json();
    assert_eq!(created["files"], 4);
    assert_eq!(created["bytes"], 3_000_000 + 14 + 21 + 17);
    assert_eq!(created["new_bytes"], created["bytes"]);
    assert_eq!(created["source"]["kind"], "directory");
    assert_eq!(created["digest"].as_str().unwrap().len(), 64);

    let out = server.dir.path().join("out");
    server
        .admin(&["release", "export", "web", "1.0.0", out.to_str().unwrap()])
        .success();
    sh(
        server.dir.path(),
        "diff",
        &["-r", "--no-dereference", "site", "out"],
    );
    assert_eq!(
        fs::metadata(out.join("bin/migrate"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        fs::read_link(out.join("home.html")).unwrap(),
        Path::new("index.html")
    );
    server
        .admin(&["release", "export", "web", "1.0.0", out.to_str().unwrap()])
        .fails(3, "is not empty");
}

#[test]
fn releases_are_immutable_and_uploads_send_only_what_changed() {
    let server = setup();
    let site = site(server.dir.path());
    let from = site.to_str().unwrap();
    create(&server, "1.0.0", from).success();
    let again = create(&server, "1.0.0", from).success().json();
    assert_eq!(
        (again["created"].as_bool(), again["new_bytes"].as_u64()),
        (Some(false), Some(0))
    );
    let human = server
        .admin(&["release", "create", "web", "1.0.0", "--from", from])
        .success();
    assert!(
        human.stdout.contains("already exists, identical"),
        "{human:?}"
    );

    fs::write(
        site.join("css/site.css"),
        "body { color: navy; margin: 0 }\n",
    )
    .unwrap();
    let blobs_before = n_blobs(&server);
    server
        .admin(&["release", "create", "web", "1.0.0", "--from", from])
        .fails(3, "already exists with different content");
    assert_eq!(
        n_blobs(&server),
        blobs_before,
        "a refused release stores nothing"
    );

    let next = create(&server, "1.0.1", from).success().json();
    assert_eq!(next["new_bytes"], 32, "only the changed file is uploaded");

    let diff = server
        .admin(&["release", "diff", "web", "1.0.0", "1.0.1", "--json"])
        .success()
        .json();
    assert_eq!(diff["modified"][0]["path"], "css/site.css");
    assert_eq!(diff["modified"][0]["change"], "content");
    assert_eq!(diff["added"].as_array().unwrap().len(), 0);
    let human = server
        .admin(&["release", "diff", "web", "1.0.0", "1.0.1"])
        .success()
        .stdout;
    assert!(
        human.contains("~ css/site.css  (content: 21 B → 32 B)"),
        "{human}"
    );

    let list = server
        .admin(&["release", "list", "web", "--json"])
        .success()
        .json();
    let versions: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.1", "1.0.0"]);
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["app.create", "release.create", "release.create"]);
}

#[test]
fn tarballs_plain_gzip_and_zstd_give_the_same_tree() {
    let server = setup();
    let site = site(server.dir.path());
    let dir = server.dir.path();
    sh(dir, "tar", &["-cf", "site.tar", "-C", "site", "."]);
    sh(dir, "tar", &["-czf", "site.tar.gz", "-C", "site", "."]);
    sh(
        dir,
        "tar",
        &["--zstd", "-cf", "site.tar.zst", "-C", "site", "."],
    );
    let from_dir = create(&server, "1.0.0", site.to_str().unwrap())
        .success()
        .json();
    for (version, file) in [
        ("1.0.1", "site.tar"),
        ("1.0.2", "site.tar.gz"),
        ("1.0.3", "site.tar.zst"),
    ] {
        let created = create(&server, version, dir.join(file).to_str().unwrap())
            .success()
            .json();
        assert_eq!(created["digest"], from_dir["digest"], "{file}");
        assert_eq!(created["source"]["kind"], "tarball");
        assert_eq!(created["new_bytes"], 0);
    }
}

#[test]
fn git_releases_record_the_commit() {
    let server = setup();
    let repo = server.dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| sh(&repo, "git", args);
    git(&["init", "-q", "-b", "main"]);
    fs::write(repo.join("index.html"), "v1\n").unwrap();
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "one",
    ]);
    git(&["tag", "v1"]);
    fs::write(repo.join("index.html"), "v2\n").unwrap();
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qam",
        "two",
    ]);
    let url = format!("git+file://{}", repo.display());

    let created = create(&server, "1.0.0", &format!("{url}#v1"))
        .success()
        .json();
    assert_eq!(created["source"]["kind"], "git");
    assert_eq!(created["source"]["commit"].as_str().unwrap().len(), 40);
    let head = create(&server, "2.0.0", &format!("{url}#main"))
        .success()
        .json();
    assert_ne!(head["source"]["commit"], created["source"]["commit"]);
    let shown = server
        .admin(&["release", "show", "web", "1.0.0"])
        .success()
        .stdout;
    assert!(shown.contains("#v1 (commit "), "{shown}");

    let before = n_blobs(&server);
    create(&server, "3.0.0", &format!("{url}#no-such-tag"))
        .fails(3, "git ref \"no-such-tag\" does not exist");
    assert_eq!(n_blobs(&server), before);
}

#[test]
fn svn_releases_record_the_revision() {
    let server = setup();
    let dir = server.dir.path();
    sh(dir, "svnadmin", &["create", "svnrepo"]);
    let url = format!("file://{}/svnrepo", dir.display());
    fs::create_dir(dir.join("import")).unwrap();
    fs::write(dir.join("import/index.php"), "<?php echo 1;\n").unwrap();
    sh(
        dir,
        "svn",
        &[
            "import",
            "-q",
            "-m",
            "first",
            "import",
            &format!("{url}/trunk"),
        ],
    );

    let created = create(&server, "1.0.0", &format!("svn+{url}/trunk@1"))
        .success()
        .json();
    assert_eq!(created["source"]["kind"], "svn");
    assert_eq!(created["source"]["revision"], 1);
    assert_eq!(created["files"], 1);
    create(&server, "1.0.1", &format!("svn+{url}/trunk@99"))
        .fails(3, "svn revision 99 does not exist");
}

#[test]
fn developers_create_releases_and_viewers_cannot() {
    let server = setup();
    let site = site(server.dir.path());
    let developer = server.create_user("dana", "developer", &["shop"]);
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    let outsider = server.create_user("olga", "developer", &[]);
    let from = site.to_str().unwrap();
    server
        .ferry(
            &viewer,
            &["release", "create", "web", "1.0.0", "--from", from],
        )
        .fails(3, "creating releases needs a role that can deploy");
    server
        .ferry(
            &outsider,
            &["release", "create", "web", "1.0.0", "--from", from],
        )
        .fails(1, "no application named \"web\"");
    assert_eq!(n_blobs(&server), 0);
    server
        .ferry(
            &developer,
            &["release", "create", "web", "1.0.0", "--from", from],
        )
        .success();
    server
        .ferry(&viewer, &["release", "show", "web", "1.0.0"])
        .success();
}

/// Each bad source is refused with exit 3, names the entry, and stores nothing.
#[test]
fn bad_sources_are_refused_and_leave_nothing_behind() {
    let server = setup();
    let dir = server.dir.path();
    type MakeSource = Box<dyn Fn(&Path) -> String>;
    let cases: Vec<(&str, MakeSource, Vec<&str>, &str)> = vec![
        (
            "a symlink out of the tree",
            Box::new(|d| {
                let s = site(&d.join("a"));
                symlink("../../../etc/passwd", s.join("css/evil")).unwrap();
                s.display().to_string()
            }),
            vec![],
            "css/evil: the symlink points outside the tree",
        ),
        (
            "a fifo",
            Box::new(|d| {
                let s = site(&d.join("b"));
                sh(&s, "mkfifo", &["pipe"]);
                s.display().to_string()
            }),
            vec![],
            "pipe: a fifo cannot be part of a release",
        ),
        (
            "a non-UTF-8 name",
            Box::new(|d| {
                use std::os::unix::ffi::OsStrExt;
                let s = site(&d.join("c"));
                fs::write(s.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), "x").unwrap();
                s.display().to_string()
            }),
            vec![],
            "not valid UTF-8",
        ),
        (
            "an empty tree",
            Box::new(|d| {
                fs::create_dir_all(d.join("empty")).unwrap();
                d.join("empty").display().to_string()
            }),
            vec![],
            "holds no files",
        ),
        (
            "a truncated archive",
            Box::new(|d| {
                site(&d.join("e"));
                sh(&d.join("e"), "tar", &["-czf", "site.tgz", "site"]);
                let bytes = fs::read(d.join("e/site.tgz")).unwrap();
                fs::write(d.join("e/cut.tgz"), &bytes[..bytes.len() / 2]).unwrap();
                d.join("e/cut.tgz").display().to_string()
            }),
            vec![],
            "truncated or corrupt",
        ),
        (
            "a tar bomb",
            Box::new(|d| {
                site(&d.join("f"));
                sh(&d.join("f"), "tar", &["-cf", "site.tar", "site"]);
                d.join("f/site.tar").display().to_string()
            }),
            vec!["--max-bytes", "1000000"],
            "limit of 1000000 bytes",
        ),
        (
            "too many entries",
            Box::new(|d| site(&d.join("g")).display().to_string()),
            vec!["--max-entries", "3"],
            "limit of 3 entries",
        ),
        (
            "a missing path",
            Box::new(|d| d.join("nowhere").display().to_string()),
            vec![],
            "does not exist",
        ),
        (
            "a malformed git source",
            Box::new(|_| "git+file:///repo".to_owned()),
            vec![],
            "names no ref",
        ),
        (
            "a malformed svn source",
            Box::new(|_| "svn+file:///repo@HEAD".to_owned()),
            vec![],
            "is not a number",
        ),
    ];
    for (what, make, extra, message) in cases {
        let from = make(dir);
        let mut args = vec!["release", "create", "web", "9.9.9", "--from", &from];
        args.extend(extra);
        let run = server.admin(&args);
        assert_eq!(run.code, 3, "{what}: {run:#?}");
        assert!(run.stderr.contains(message), "{what}: {run:#?}");
    }
    assert_eq!(n_blobs(&server), 0);
    let releases = server
        .admin(&["release", "list", "web", "--json"])
        .success()
        .json();
    assert!(releases.as_array().unwrap().is_empty());

    server
        .admin(&["release", "create", "web", "bad version", "--from", "."])
        .fails(3, "invalid version");
    server
        .admin(&["release", "create", "Web", "1.0", "--from", "."])
        .fails(3, "invalid application name");
    server
        .admin(&["release", "create", "nope", "1.0", "--from", "."])
        .fails(1, "no application named \"nope\"");
}

#[test]
fn an_empty_release_needs_allow_empty() {
    let server = setup();
    let empty = server.dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let from = empty.to_str().unwrap();
    server
        .admin(&[
            "release",
            "create",
            "web",
            "0.0.1",
            "--from",
            from,
            "--allow-empty",
            "--json",
        ])
        .success();
}

#[tokio::test]
async fn the_server_checks_manifests_itself() {
    let server = setup();
    let post = |body: serde_json::Value| {
        let url = format!("{}/api/v1/apps/web/releases", server.url);
        let token = server.admin_token.clone();
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let file = |path: &str| {
        serde_json::json!({"path": path, "kind": "file", "mode": 420, "size": 1,
        "hash": "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"})
    };
    let source = serde_json::json!({"kind": "directory", "path": "/x"});
    for (entries, message) in [
        (vec![file("../x")], "../x: the path has a '..' component"),
        (vec![file("/etc/passwd")], "absolute paths are not allowed"),
        (vec![file("a"), file("a")], "a: the path appears twice"),
        (vec![file("a")], "blobs of the release were not uploaded"),
    ] {
        let (status, body) = post(serde_json::json!({"version": "1.0", "manifest": {"entries": entries}, "source": source})).await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
}

#[test]
fn retention_keeps_the_newest_releases_and_frees_what_only_the_others_used() {
    let server = Server::start_with(&["--gc-grace", "0s"]);
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "2"])
        .success();
    let site = site(server.dir.path());
    let from = site.to_str().unwrap();
    for (version, content) in [("1", "one"), ("2", "two"), ("3", "three"), ("4", "four")] {
        fs::write(site.join("version.txt"), content).unwrap();
        create(&server, version, from).success();
    }
    let pruned = server
        .admin(&["release", "prune", "web", "--json"])
        .success()
        .json();
    assert_eq!(pruned["removed"], serde_json::json!(["2", "1"]));
    // Each pruned release had its own version.txt and manifest; the rest is shared.
    assert_eq!(pruned["blobs_removed"], 4);
    let list = server
        .admin(&["release", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let again = server.admin(&["release", "prune", "web"]).success();
    assert!(again.stdout.contains("nothing to prune"), "{again:?}");

    // What is kept is whole: export still works.
    let out = server.dir.path().join("out");
    server
        .admin(&["release", "export", "web", "3", out.to_str().unwrap()])
        .success();
    assert_eq!(
        fs::read_to_string(out.join("version.txt")).unwrap(),
        "three"
    );
    let last = server
        .admin(&["audit", "--app", "web", "--limit", "1", "--json"])
        .success()
        .json();
    assert_eq!(last[0]["action"], "release.prune");
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn fsck_finds_corrupt_content_and_a_new_upload_repairs_it() {
    let server = setup();
    let site = site(server.dir.path());
    let from = site.to_str().unwrap();
    create(&server, "1.0.0", from).success();
    let intact = server.admin(&["server", "fsck"]).success();
    assert!(
        intact.stdout.starts_with("all ") && intact.stdout.trim_end().ends_with(" blobs intact"),
        "{intact:?}"
    );

    // Flip bytes of the blob holding index.html.
    let hash = blake3::hash(b"<h1>shop</h1>\n").to_hex().to_string();
    let blob = server.data_dir().join("blobs").join(&hash[..2]).join(&hash);
    crate::harness::write_over(&blob, b"<h1>sh0p</h1>\n");
    let run = server.admin(&["server", "fsck", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.json()["corrupt"], serde_json::json!([hash]));

    // The corrupt blob is quarantined, so it is missing until uploaded again.
    let run = server.admin(&["server", "fsck"]);
    run.fails(1, "corrupt or missing blobs");
    let repaired = create(&server, "1.0.1", from).success().json();
    assert_eq!(repaired["new_bytes"], 14);
    server.admin(&["server", "fsck"]).success();
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    server
        .ferry(&viewer, &["server", "fsck"])
        .fails(3, "needs the admin role");
}

/// One raw tar entry: its name as bytes (so `..`, absolute and non-UTF-8 names can be
/// written), its type, a link target and its content.
struct RawEntry<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    link: &'a str,
    data: &'a [u8],
}

fn raw(
    name: &'static [u8],
    kind: tar::EntryType,
    link: &'static str,
    data: &'static [u8],
) -> RawEntry<'static> {
    RawEntry {
        name,
        kind,
        link,
        data,
    }
}

/// Writes an archive exactly as given, bypassing the tar crate's own path checks.
fn hostile_tar(path: &Path, entries: &[RawEntry]) {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..entry.name.len()].copy_from_slice(entry.name);
        header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        header.set_entry_type(entry.kind);
        header.set_mode(0o644);
        header.set_size(entry.data.len() as u64);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    fs::write(path, builder.into_inner().unwrap()).unwrap();
}

/// Hostile archives through the real binary: each refused with exit 3, naming the entry,
/// storing nothing.
#[test]
fn hostile_archives_are_refused_naming_the_entry() {
    use tar::EntryType::{Char, Link, Regular, Symlink};
    let server = setup();
    let ok = raw(b"index.html", Regular, "", b"<h1>shop</h1>");
    let cases: Vec<(&str, Vec<RawEntry>, &str)> = vec![
        (
            "dotdot",
            vec![raw(b"../evil.sh", Regular, "", b"x")],
            "../evil.sh",
        ),
        (
            "nested-dotdot",
            vec![raw(b"a/../../evil.sh", Regular, "", b"x")],
            "a/../../evil.sh",
        ),
        (
            "absolute",
            vec![raw(b"/etc/cron.d/evil", Regular, "", b"x")],
            "/etc/cron.d/evil",
        ),
        (
            "symlink-out",
            vec![ok, raw(b"link", Symlink, "../../etc/passwd", b"")],
            "link",
        ),
        (
            "hardlink-out",
            vec![raw(b"hard", Link, "../../etc/shadow", b"")],
            "hard",
        ),
        ("device", vec![raw(b"tty", Char, "", b"")], "tty"),
        (
            "duplicate",
            vec![
                raw(b"index.html", Regular, "", b"one"),
                raw(b"./index.html", Regular, "", b"two"),
            ],
            "index.html",
        ),
        (
            "non-utf8",
            vec![raw(b"caf\xe9.html", Regular, "", b"x")],
            "caf",
        ),
    ];
    for (name, entries, entry_named) in cases {
        let archive = server.dir.path().join(format!("{name}.tar"));
        hostile_tar(&archive, &entries);
        let run = create(&server, "6.6.6", archive.to_str().unwrap());
        assert_eq!(run.code, 3, "{name}: {run:#?}");
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains(entry_named),
            "{name}: {run:#?}"
        );
    }
    assert_eq!(n_blobs(&server), 0);
    assert!(server
        .admin(&["release", "list", "web", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}
