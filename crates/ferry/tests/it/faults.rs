//! Faults a target must survive, with real agent processes: an agent killed anywhere in a
//! deploy, readers walking `current` while releases switch, a corrupt cache, a server
//! restarted mid-deployment, a connection cut mid-fetch.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::deployments::{current, release, release_from, restart_agent, setup, site, start_agent};
use crate::harness::{Agent, Server, FERRY};

fn deployment_status(server: &Server, id: &str) -> String {
    let shown = server
        .admin(&["deployment", "show", id, "--json"])
        .success()
        .json();
    shown["status"].as_str().unwrap().to_owned()
}

/// `current` is one complete release: the exact tree of the site it was made from.
fn assert_serves_a_complete_release(agent_root: &Path, sites: &Path) {
    let app_dir = agent_root.join("apps/web");
    let Ok(link) = fs::read_link(app_dir.join("current")) else {
        return;
    };
    let version = link
        .to_str()
        .unwrap()
        .strip_prefix("releases/")
        .unwrap()
        .to_owned();
    let served = app_dir.join("current/");
    let site = sites.join(format!("site-{version}"));
    let run = crate::harness::Run::of(
        Command::new("diff")
            .args(["-r", "-x", "uploads"])
            .arg(&site)
            .arg(&served),
    );
    assert_eq!(
        run.code, 0,
        "current -> {version} is not the complete release: {run:?}"
    );
}

/// SIGKILL-like aborts at every failpoint of a deploy: the target always serves one
/// complete release, and a restarted agent converges, running the release's
/// `after_switch` hook and health check to the end: an agent killed after the switch
/// once reported success for a release that was never checked.
#[test]
fn an_agent_killed_anywhere_in_a_deploy_serves_a_complete_release_and_converges() {
    let server = Server::start();
    setup(&server);
    let toml = concat!(
        "shared = [\"uploads\"]\n",
        "[hooks]\n",
        "after_switch = 'echo \"$FERRY_VERSION\" >> \"$FERRY_SHARED_DIR/after_switch.log\"'\n",
        "[health]\n",
        "command = 'echo \"$FERRY_VERSION\" >> \"$FERRY_SHARED_DIR/healthy.log\"'\n",
    );
    let last_logged = |root: &Path, log: &str| {
        let text = fs::read_to_string(root.join("apps/web/shared").join(log)).unwrap_or_default();
        text.lines().last().unwrap_or_default().to_owned()
    };
    let first = start_agent(&server, "dev", "dev-1");
    let root = first.root.clone();
    release(&server, "1.0.0", toml);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    drop(first);

    let mut n_hit = 0;
    for (i, failpoint) in ferry_agent::FAILPOINTS.iter().enumerate() {
        let version = format!("1.1.{i}");
        release(&server, &version, toml);
        let mut agent = restart_agent(&root, Stdio::null(), Some(failpoint));
        let started = server
            .admin(&["deploy", "web", &version, "--to", "dev", "--json"])
            .success()
            .json();
        let id = started["id"].to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let aborted = loop {
            if agent.child.try_wait().unwrap().is_some() {
                break true;
            }
            if deployment_status(&server, &id) != "running" {
                // Cleanup runs after the report: give a failpoint there a moment to fire.
                let grace = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while std::time::Instant::now() < grace {
                    if agent.child.try_wait().unwrap().is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                break agent.child.try_wait().unwrap().is_some();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{failpoint}: neither aborted nor finished"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        n_hit += usize::from(aborted);
        assert_serves_a_complete_release(&root, server.dir.path());
        drop(agent);

        let _converging = restart_agent(&root, Stdio::null(), None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while deployment_status(&server, &id) == "running" {
            assert!(
                std::time::Instant::now() < deadline,
                "{failpoint}: the restarted agent did not converge"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(deployment_status(&server, &id), "succeeded", "{failpoint}");
        assert_eq!(current(&root, "web"), format!("releases/{version}"));
        assert_serves_a_complete_release(&root, server.dir.path());
        assert_eq!(
            last_logged(&root, "after_switch.log"),
            version,
            "{failpoint}"
        );
        assert_eq!(last_logged(&root, "healthy.log"), version, "{failpoint}");
    }
    assert!(
        n_hit >= 20,
        "only {n_hit} failpoints were reached by deploys"
    );
}

/// 50 deploy/rollback cycles while a reader walks `current`: never a missing file, never
/// files of two releases at once.
#[test]
fn readers_never_see_a_missing_or_mixed_tree() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    for version in ["1.0.0", "2.0.0"] {
        let site = site(server.dir.path(), version, "");
        fs::write(site.join("a.txt"), version).unwrap();
        fs::write(site.join("b.txt"), version).unwrap();
        release_from(&server, version, &site);
    }
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();

    let stop = Arc::new(AtomicBool::new(false));
    let current = agent.root.join("apps/web/current");
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Resolve `current` once, then read both files of that one release.
                let release = fs::canonicalize(&current).expect("current always resolves");
                let a = fs::read_to_string(release.join("a.txt")).expect("a.txt is never missing");
                let b = fs::read_to_string(release.join("b.txt")).expect("b.txt is never missing");
                assert_eq!(a, b, "files of two releases in one tree");
                fs::read_to_string(current.join("index.html"))
                    .expect("index.html is never missing");
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..50 {
        server
            .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--wait"])
            .success();
        server
            .admin(&["rollback", "web", "--env", "dev", "--wait"])
            .success();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("the reader saw no missing or mixed file");
    assert!(reads > 100, "{reads}");
}

#[test]
fn a_corrupt_file_in_the_agent_cache_is_fetched_again() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    let extra = "only in some releases\n";
    for (version, with_extra) in [("1.0.0", true), ("2.0.0", false), ("3.0.0", true)] {
        let site = site(server.dir.path(), version, "");
        if with_extra {
            fs::write(site.join("extra.txt"), extra).unwrap();
        }
        release_from(&server, version, &site);
    }
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--wait"])
        .success();
    // 3.0.0 needs extra.txt, which the running 2.0.0 lacks: it comes from the cache, where
    // its copy is now corrupt.
    let hash = blake3::hash(extra.as_bytes()).to_hex().to_string();
    let cached = agent.root.join(".ferry/cache").join(&hash[..2]).join(&hash);
    crate::harness::write_over(&cached, "only in s0me releases\n");
    server
        .admin(&["deploy", "web", "3.0.0", "--to", "dev", "--wait"])
        .success();
    let served = fs::read_to_string(agent.root.join("apps/web/current/extra.txt")).unwrap();
    assert_eq!(served, extra);
}

/// A server restarted in the middle of a deployment picks it up again: the agent
/// reconnects, reports, and the deployment finishes.
#[test]
fn a_deployment_survives_a_server_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with(&["--listen", &listen]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    release(&server, "2.0.0", "[hooks]\nbefore_switch = \"sleep 2\"\n");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let started = server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    let id = started["id"].to_string();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (status, dir, log) = server.stop();
    assert!(status.success(), "{log}");

    let server = Server::start_in_with(dir, &["--listen", &listen]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while deployment_status(&server, &id) == "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the deployment never finished after the restart"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(deployment_status(&server, &id), "succeeded");
    assert_eq!(current(&agent.root, "web"), "releases/2.0.0");
}

/// A TCP proxy that forwards to `upstream` and cuts the first connection whose answers
/// pass `cut_after` bytes in total; counts every byte sent downstream.
struct CuttingProxy {
    url: String,
    downstream_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the connection was cut.
    cut_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn cutting_proxy(upstream: &str, cut_after: u64) -> CuttingProxy {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let downstream_bytes = Arc::new(AtomicU64::new(0));
    let cut_done = Arc::new(AtomicBool::new(false));
    let counter = downstream_bytes.clone();
    let cut = cut_done.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(Shutdown::Write);
            });
            let (counter, cut_done) = (counter.clone(), cut.clone());
            std::thread::spawn(move || {
                let (mut server_in, mut client_out) = (server, client);
                let mut buffer = [0u8; 64 * 1024];
                while let Ok(n) = server_in.read(&mut buffer) {
                    if n == 0 || client_out.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    let total = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    if total > cut_after && !cut_done.swap(true, Ordering::SeqCst) {
                        let _ = client_out.shutdown(Shutdown::Both);
                        let _ = server_in.shutdown(Shutdown::Both);
                        break;
                    }
                }
                let _ = client_out.shutdown(Shutdown::Write);
            });
        }
    });
    CuttingProxy {
        url,
        downstream_bytes,
        cut_done,
    }
}

/// The connection drops in the middle of fetching a 48 MB release, inside its first batch:
/// the agent resumes and does not download again the blobs it already verified.
#[test]
fn a_dropped_connection_mid_fetch_resumes_without_fetching_again() {
    let server = Server::start();
    setup(&server);
    let proxy = cutting_proxy(&server.url, 20_000_000);
    let token = server.enrollment_token("dev", "dev-1");
    let root = server.dir.path().join("target-dev-1");
    let _agent = Agent {
        child: Command::new(FERRY)
            .args(["agent", "--hooks-as-root", "--root"])
            .arg(&root)
            .args(["--server", &proxy.url, "--enroll", &token])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        root: root.clone(),
    };
    let site = site(server.dir.path(), "big", "");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..48_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    fs::write(site.join("data.bin"), &data).unwrap();
    release_from(&server, "1.0.0", &site);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    assert_eq!(
        fs::read(root.join("apps/web/current/data.bin")).unwrap(),
        data
    );
    let downloaded = proxy
        .downstream_bytes
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst));
    // Cut at 20 MB: resuming fetches the remaining ~28 MB (about 48 MB in all, give or take
    // the blob in flight); starting the batch over would have downloaded 20 + 48 MB.
    assert!(downloaded < 52_000_000, "{downloaded} bytes downloaded");
}
