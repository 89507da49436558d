//! What the server trusts of release content and who may learn about it: sizes a manifest
//! declares, credentials in source URLs, which blobs exist, large bodies from callers
//! without the right, and temporary trees left behind.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Run, Server};

fn sh(dir: &Path, program: &str, args: &[&str]) {
    let run = Run::of(Command::new(program).args(args).current_dir(dir));
    assert_eq!(run.code, 0, "{program} {args:?}: {run:#?}");
}

/// A server with team `shop` owning `web` and team `blog` owning `news`.
fn two_teams() -> Server {
    let server = Server::start();
    for (team, app) in [("shop", "web"), ("blog", "news")] {
        server.admin(&["team", "create", team]).success();
        server
            .admin(&["app", "create", app, "--team", team])
            .success();
    }
    server
}

/// Creates release `version` of `app` from `files`, as `token`.
fn release(server: &Server, token: &str, app: &str, version: &str, files: &[(&str, &str)]) {
    let dir = server.dir.path().join(format!("tree-{app}-{version}"));
    fs::create_dir_all(&dir).unwrap();
    for (path, content) in files {
        fs::write(dir.join(path), content).unwrap();
    }
    server
        .ferry(
            token,
            &[
                "release",
                "create",
                app,
                version,
                "--from",
                dir.to_str().unwrap(),
            ],
        )
        .success();
}

async fn post(server: &Server, token: &str, path: &str, body: Vec<u8>) -> (StatusCode, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn hash_of(content: &str) -> String {
    blake3::hash(content.as_bytes()).to_hex().to_string()
}

#[tokio::test]
async fn a_manifest_that_lies_about_a_size_is_refused() {
    let server = two_teams();
    let token = server.admin_token.clone();
    release(
        &server,
        &token,
        "web",
        "1.0.0",
        &[("index.html", "<h1>shop</h1>\n")],
    );
    let manifest: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/apps/web/releases/1.0.0/manifest",
            server.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut entries = manifest["entries"].clone();
    let index = entries
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["path"] == "index.html")
        .unwrap();
    // An agent would allocate what the manifest says before fetching a byte.
    index["size"] = json!(1u64 << 40);
    let body = json!({
        "version": "1.0.1",
        "manifest": {"entries": entries},
        "source": {"kind": "directory", "path": "/tmp/forged"},
    });
    let (status, text) = post(
        &server,
        &token,
        "/api/v1/apps/web/releases",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        text.contains("index.html: the manifest gives 1099511627776 bytes for blob")
            && text.contains("which holds 14 bytes"),
        "{text}"
    );
    server
        .admin(&["release", "show", "web", "1.0.1"])
        .fails(1, "no release");
}

/// A plain HTTP server of the files under `root` (what git's "dumb" protocol reads), on a
/// thread for as long as the test runs; its URL.
fn serve_files(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or("/");
            let file = root.join(path.trim_start_matches('/'));
            let mut stream = reader.into_inner();
            let _ = match fs::read(&file).ok().filter(|_| file.is_file()) {
                Some(body) => stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(&body)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    url
}

#[test]
fn credentials_in_a_source_url_are_never_recorded() {
    let server = two_teams();
    let work = server.dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    sh(&work, "git", &["init", "-q", "-b", "main"]);
    fs::write(work.join("index.html"), "<h1>shop</h1>\n").unwrap();
    sh(&work, "git", &["add", "."]);
    sh(
        &work,
        "git",
        &[
            "-c",
            "user.name=dana",
            "-c",
            "user.email=dana@example.com",
            "commit",
            "-qm",
            "one",
        ],
    );
    let served = server.dir.path().join("served");
    fs::create_dir_all(&served).unwrap();
    sh(
        &served,
        "git",
        &["clone", "-q", "--bare", work.to_str().unwrap(), "site.git"],
    );
    sh(&served.join("site.git"), "git", &["update-server-info"]);
    let url = serve_files(served);
    let address = url.trim_start_matches("http://");
    let from = format!("git+http://dana:s3cret-token@{address}/site.git#main");
    let created = server
        .admin(&[
            "release", "create", "web", "1.0.0", "--from", &from, "--json",
        ])
        .success()
        .json();
    assert_eq!(
        created["source"]["url"],
        format!("http://{address}/site.git"),
        "{created}"
    );
    let shown = server
        .admin(&["release", "show", "web", "1.0.0", "--json"])
        .success();
    let audit = server.admin(&["audit", "--json"]).success();
    for text in [&created.to_string(), &shown.stdout, &audit.stdout] {
        assert!(!text.contains("s3cret"), "{text}");
    }
    // A failure names the repository without the token either.
    let missing = format!("git+http://dana:s3cret-token@{address}/nope.git#main");
    let run = server.admin(&["release", "create", "web", "1.0.1", "--from", &missing]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!("http://{address}/nope.git"))
            && !run.stderr.contains("s3cret"),
        "{run:?}"
    );
}

#[tokio::test]
async fn which_blobs_are_missing_tells_nothing_about_another_teams_content() {
    let server = two_teams();
    let shop_dev = server.create_user("dana", "viewer", &["shop:developer"]);
    let blog_dev = server.create_user("eve", "viewer", &["blog:developer"]);
    let secret = "DB_PASSWORD=hunter2\n";
    release(
        &server,
        &shop_dev,
        "web",
        "1.0.0",
        &[("config.php", secret)],
    );
    let question = |hashes: &[&str]| json!({ "hashes": hashes }).to_string().into_bytes();
    let guessed = hash_of(secret);
    let ask = |token: &str, app: &str| {
        let body = question(&[&guessed]);
        let path = format!("/api/v1/apps/{app}/blobs/missing");
        let token = token.to_owned();
        let server = &server;
        async move { post(server, &token, &path, body).await }
    };
    // The shop's developer holds it through web's release.
    let (status, text) = ask(&shop_dev, "web").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["missing"],
        json!([])
    );
    // The blog's developer guessing the shop's file learns nothing: it is missing for news.
    let (status, text) = ask(&blog_dev, "news").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["missing"],
        json!([guessed])
    );
    // Uploading it tells nothing either: every byte counts as new to them.
    let created = {
        let dir = server.dir.path().join("blog-tree");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("guess.txt"), secret).unwrap();
        server
            .ferry(
                &blog_dev,
                &[
                    "release",
                    "create",
                    "news",
                    "0.1.0",
                    "--from",
                    dir.to_str().unwrap(),
                    "--json",
                ],
            )
            .success()
            .json()
    };
    assert_eq!(created["new_bytes"], secret.len(), "{created}");
    // Now that it is in a release of news, the blog's developer holds it.
    let (_, text) = ask(&blog_dev, "news").await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["missing"],
        json!([])
    );
}

/// The peak resident memory of process `pid`, in kB.
fn peak_memory_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Starts a POST of a `length`-byte body to `path`, sends only its first 64 KiB, and returns
/// the status the server answers with before the rest arrives.
fn answer_before_the_body(server: &Server, token: &str, path: &str, length: usize) -> u16 {
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    stream.write_all(&vec![b' '; 64 * 1024]).unwrap();
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).unwrap();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{path}: no status in {status_line:?}"))
}

#[test]
fn a_caller_without_the_right_is_refused_before_a_large_body_is_read() {
    let server = two_teams();
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    let outsider = server.create_user("eve", "viewer", &["blog:developer"]);
    let developer = server.create_user("dana", "viewer", &["shop:developer"]);
    let before = peak_memory_kb(server.pid());
    const MB: usize = 1024 * 1024;
    for (token, path, length, status) in [
        (&viewer, "/api/v1/apps/web/blobs/missing", 60 * MB, 403),
        (&outsider, "/api/v1/apps/web/blobs/missing", 60 * MB, 404),
        (&viewer, "/api/v1/apps/web/blobs", 60 * MB, 403),
        (&viewer, "/api/v1/apps/web/releases", 250 * MB, 403),
        (&outsider, "/api/v1/apps/web/releases", 250 * MB, 404),
        // A developer's list of hashes past what one question may hold is too large.
        (&developer, "/api/v1/apps/web/blobs/missing", 60 * MB, 413),
    ] {
        assert_eq!(
            answer_before_the_body(&server, token, path, length),
            status,
            "{path}"
        );
    }
    let grown_mb = (peak_memory_kb(server.pid()).saturating_sub(before)) / 1024;
    assert!(grown_mb < 100, "the server grew by {grown_mb} MB");
}

#[test]
fn an_unpacked_tarball_leaves_nothing_behind_even_with_read_only_directories() {
    let server = two_teams();
    let dir = server.dir.path();
    let site = dir.join("site");
    fs::create_dir_all(site.join("locked/inner")).unwrap();
    fs::write(site.join("locked/inner/index.html"), "<h1>shop</h1>\n").unwrap();
    // Large enough that cutting the archive in half cuts this file.
    let big: String = (0..40_000).map(|i| format!("{i}\n")).collect();
    fs::write(site.join("locked/inner/data.txt"), big).unwrap();
    for locked in ["locked/inner", "locked"] {
        fs::set_permissions(site.join(locked), fs::Permissions::from_mode(0o555)).unwrap();
    }
    sh(dir, "tar", &["-cf", "site.tar", "-C", "site", "."]);
    let tmp = dir.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.join("site.tar"), fs::Permissions::from_mode(0o644)).unwrap();
    // Root may remove anything, so the client runs as an unprivileged user, as people do.
    let create_as_nobody = |version: &str, archive: &str| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(crate::harness::FERRY)
            .args(["release", "create", "web", version, "--from"])
            .arg(dir.join(archive))
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", &server.admin_token)
            .env("FERRY_CONFIG", tmp.join("config.toml"))
            .env("TMPDIR", &tmp);
        Run::of(&mut command)
    };
    let left_behind = || {
        fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("ferry-release-"))
            .collect::<Vec<_>>()
    };
    create_as_nobody("1.0.0", "site.tar").success();
    assert_eq!(left_behind(), Vec::<String>::new());
    // The same for an archive refused halfway.
    let mut truncated = fs::read(dir.join("site.tar")).unwrap();
    truncated.truncate(truncated.len() / 2);
    fs::write(dir.join("cut.tar"), truncated).unwrap();
    fs::set_permissions(dir.join("cut.tar"), fs::Permissions::from_mode(0o644)).unwrap();
    let run = create_as_nobody("1.0.1", "cut.tar");
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(left_behind(), Vec::<String>::new());
}
