//! The README's "A short tour", read from README.md when the test runs and run with bash as
//! a user would, command by command, against a fresh `ferry demo`: once on the demo itself
//! (SQLite), and once after the demo moved to PostgreSQL and S3 as docs/scale-out.md says,
//! served by two servers behind a round-robin load balancer, so any request may reach
//! either. When the tour in the README stops working, these fail.
//!
//! Both start their own PostgreSQL database (or none) whatever backend the suite runs on,
//! so they run on the suite's SQLite pass only.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_store_postgres::test_database::TestDatabase;

use crate::harness::{client, on_postgres, postgres_database, signal, Agent, Run, Server, FERRY};
use crate::moto::{Moto, BUCKET};
use crate::round_robin::RoundRobin;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/support.md");

/// The tour's port, which the tests replace with their own.
const TOUR_ADDRESS: &str = "127.0.0.1:7070";

/// How the tour marks a command that is refused on purpose: it says so, and goes on.
const REFUSED: &str = "|| echo \"refused (exit $?)\"";

/// The programs the tour runs besides ferry, as its introduction says.
const TOOLS: [&str; 7] = ["git", "svn", "svnadmin", "tar", "zstd", "jq", "openssl"];

/// The longest the whole tour may take before the test gives up on it.
const TOUR_DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn the_readme_tour_runs_as_written_against_the_demo() {
    if on_postgres() {
        skipped("the demo keeps its state in SQLite whatever the suite runs on");
        return;
    }
    assert_tools_installed();
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let demo = Demo::start(work.path());
    let ready = started.elapsed();

    let tour = run_tour(work.path(), demo.port());
    tour.assert_success();
    demo.client(&["audit", "verify"]).success();
    say(&format!(
        "the tour on the demo: the demo was ready in {ready:.1?}, the tour took {:.1?}",
        tour.took
    ));
}

/// docs/support.md, the support journey worked on one application, run as written against
/// the demo: every command, the refusals it shows on purpose refused.
#[test]
fn the_support_journey_runs_as_written_against_the_demo() {
    if on_postgres() {
        skipped("the demo keeps its state in SQLite whatever the suite runs on");
        return;
    }
    assert_tools_installed();
    let work = tempfile::tempdir().unwrap();
    let demo = Demo::start(work.path());
    let support = fs::read_to_string(SUPPORT).unwrap();
    let journey = run_script(work.path(), shell_script(&support, demo.port()));
    journey.assert_success();
    assert!(journey.refusals >= 5, "{}", journey.output);
    demo.client(&["audit", "verify"]).success();
    say(&format!("the support journey took {:.1?}", journey.took));
}

/// The demo grown into an installation of two servers: stopped, moved to PostgreSQL and
/// its release content to S3 as docs/scale-out.md says, served by two servers behind a
/// round-robin load balancer at the address the tour uses, and its agents re-pointed there.
#[test]
fn the_readme_tour_runs_on_two_servers_on_postgresql_and_s3_behind_a_load_balancer() {
    if on_postgres() {
        skipped("this test starts its own PostgreSQL database on the SQLite pass already");
        return;
    }
    assert_tools_installed();
    let Some(database) = postgres_database() else {
        return;
    };
    let Some(moto) = Moto::start() else { return };
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let demo = Demo::start(work.path());
    let demo_url = demo.url.clone();
    demo.stop();
    let s3 = Moto::env(moto.port);
    let blobs = format!("s3://{BUCKET}/tour");
    move_demo(work.path(), &database.url, &blobs, &s3);
    let moved_blobs = moto.keys("tour/").len();
    assert!(
        moved_blobs > 0,
        "the demo's release content was not copied to S3"
    );
    let servers = start_two_servers(work.path(), database, &blobs, &s3);
    let balancer = RoundRobin::start(&[port_of(&servers[0].url), port_of(&servers[1].url)]);
    let url = format!("http://127.0.0.1:{}", balancer.port);
    let token = admin_token(work.path());
    let seen_before = last_seen(&url, &token);
    let _agents = repoint_demo_agents(work.path(), &demo_url, &url);
    wait_until_heard_from(&url, &token, &seen_before);
    for env in ["dev", "pp", "prd"] {
        let log = fs::read_to_string(work.path().join(format!("agent-{env}.log"))).unwrap();
        assert!(log.contains(&format!("the server at {url} asks")), "{log}");
    }
    let ready = started.elapsed();

    let tour = run_tour(work.path(), balancer.port);
    tour.assert_success();
    client(&url, &token, &["audit", "verify"]).success();
    assert!(
        moto.keys("tour/").len() > moved_blobs,
        "the tour's releases were not kept in S3"
    );
    let connections = balancer.connections();
    assert!(
        connections.iter().all(|&count| count >= 20),
        "each server should have served a share of the tour's requests: {connections:?}"
    );
    say(&format!(
        "the tour on two servers: ready in {ready:.1?} (demo, move, servers, agents), the tour took {:.1?}, connections per server {connections:?}",
        tour.took
    ));
}

/// `ferry server migrate` of the stopped demo in `work` to `database_url`, its release
/// content to `blobs` in S3.
fn move_demo(work: &Path, database_url: &str, blobs: &str, s3: &[(&str, String)]) {
    let moved = Run::of(
        Command::new(FERRY)
            .args(["server", "migrate", "--from", "ferry-demo", "--to"])
            .arg(database_url)
            .args(["--blobs", blobs])
            .envs(s3.iter().map(|(name, value)| (name, value)))
            .current_dir(work),
    )
    .success();
    assert!(moved.stdout.contains("verify in PostgreSQL"), "{moved:#?}");
}

/// Two servers on the moved demo's database and bucket. The first keeps the demo's data
/// directory (its audit key, secret key and admin token); the second has one of its own and
/// copies of the keys, as docs/scale-out.md's table of what servers share says.
fn start_two_servers(
    work: &Path,
    database: Arc<TestDatabase>,
    blobs: &str,
    s3: &[(&str, String)],
) -> [Server; 2] {
    let demo_data = work.join("ferry-demo");
    let first = Server::start_on_data(&demo_data, Some(database.clone()), &["--blobs", blobs], s3);
    let [audit_key, secret_key] = ["audit-key", "secret-key"].map(|key| {
        let copy = work.join(format!("second-{key}"));
        fs::copy(demo_data.join(key), &copy).unwrap();
        set_mode(&copy, 0o600);
        copy
    });
    let second_data = work.join("second-data");
    let second = Server::start_on_data(
        &second_data,
        Some(database),
        &[
            "--blobs",
            blobs,
            "--audit-key",
            audit_key.to_str().unwrap(),
            "--secret-key",
            secret_key.to_str().unwrap(),
        ],
        s3,
    );
    assert!(
        !second_data.join("admin-token").exists(),
        "only the first server makes the admin token"
    );
    for server in [&first, &second] {
        assert!(
            server
                .log()
                .contains(&format!("release content is kept in {blobs}")),
            "{}",
            server.log()
        );
    }
    [first, second]
}

/// The tour's shell code, in order: every `sh` block of README.md's "A short tour" section,
/// run with `set -euo pipefail`, its `ferry` function calling this build's binary and its
/// address the test's.
fn tour_script(port: u16) -> String {
    let readme = fs::read_to_string(README).unwrap();
    let start = readme
        .find("\n## A short tour\n")
        .expect("README.md has a section \"## A short tour\"");
    let section = &readme[start + 1..];
    let end = section[1..]
        .find("\n## ")
        .map_or(section.len(), |at| at + 1);
    let section = &section[..end];
    assert_eq!(
        section
            .lines()
            .filter(|l| l.starts_with("ferry() {"))
            .count(),
        1,
        "the tour defines `ferry() {{ … }}` once"
    );
    shell_script(section, port)
}

/// The shell code of `text`'s `sh` blocks, in order, run with `set -euo pipefail` against
/// the demo at 127.0.0.1:`port`, with `ferry` this build's binary (a definition of its own
/// for the reader's `ferry`, the README's `cargo run`, left out).
fn shell_script(text: &str, port: u16) -> String {
    let mut script = String::from("set -euo pipefail\nferry() { \"$FERRY_BIN\" \"$@\"; }\n");
    let mut in_block = false;
    for line in text.lines() {
        if !in_block {
            in_block = line == "```sh";
        } else if line.starts_with("```") {
            in_block = false;
        } else if !line.starts_with("ferry() {") {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(!in_block, "a code block is not closed");
    assert!(
        script.contains(TOUR_ADDRESS),
        "the commands talk to the demo at {TOUR_ADDRESS}"
    );
    script.replace(TOUR_ADDRESS, &format!("127.0.0.1:{port}"))
}

/// Fails at once, saying what to install, where a program the tour needs is missing.
fn assert_tools_installed() {
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the README's tour needs {missing:?}: install git, subversion, zstd, jq and openssl, as .ci/run does"
    );
}

/// A finished run of the tour.
struct Tour {
    code: Option<i32>,
    /// How many commands the tour marks as refused on purpose.
    refusals: usize,
    output: String,
    took: Duration,
}

impl Tour {
    fn assert_success(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "the README's tour failed; its output (commands marked +):\n{}",
            self.output
        );
        // Each of them was refused, as a policy refusal is: exit 3.
        let refused = self
            .output
            .lines()
            .filter(|line| *line == "refused (exit 3)")
            .count();
        assert_eq!(
            refused, self.refusals,
            "the tour's commands marked {REFUSED} were not all refused with exit 3:\n{}",
            self.output
        );
    }
}

/// Runs the tour with bash in `work` (which holds `ferry-demo`), as someone with a home of
/// their own, against the server at 127.0.0.1:`port`. The agents the tour starts in the
/// background are stopped once it ends.
fn run_tour(work: &Path, port: u16) -> Tour {
    run_script(work, tour_script(port))
}

/// Runs `code` as [`run_tour`] runs the tour.
fn run_script(work: &Path, code: String) -> Tour {
    let script = work.join("tour.sh");
    let refusals = code.matches(REFUSED).count();
    fs::write(&script, code).unwrap();
    let home = work.join("home");
    fs::create_dir_all(&home).unwrap();
    let output = work.join("tour.out");
    let out = fs::File::create(&output).unwrap();
    let started = Instant::now();
    // Output to a file, not a pipe: the agents started in the background keep it open.
    let child = Command::new("bash")
        .arg("-x")
        .arg(&script)
        .current_dir(work)
        .env("FERRY_BIN", FERRY)
        .env("HOME", &home)
        .env("FERRY_CONFIG", home.join(".config/ferry/config.toml"))
        .env("PS4", "+ tour.sh:$LINENO: ")
        // CI runs as root, the README's reader does not: a root agent would refuse to run
        // the tour's hooks without a `--run-as` user.
        .env("FERRY_AGENT_HOOKS_AS_ROOT", "1")
        .envs(GIT_IDENTITY)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("FERRY_SERVER")
        .env_remove("FERRY_TOKEN")
        .env_remove("FERRY_DATABASE")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Its own process group, so its background agents can be stopped with it.
        .process_group(0)
        .spawn()
        .expect("running bash");
    let mut group = ProcessGroup(child);
    let code = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > TOUR_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    drop(group);
    Tour {
        code,
        refusals,
        output: fs::read_to_string(&output).unwrap(),
        took,
    }
}

/// Who commits in the tour's git repository: its user has no git config of their own.
const GIT_IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "Tour"),
    ("GIT_AUTHOR_EMAIL", "tour@example.com"),
    ("GIT_COMMITTER_NAME", "Tour"),
    ("GIT_COMMITTER_EMAIL", "tour@example.com"),
];

/// A process leading its own group, the whole group stopped (SIGKILL) when dropped.
struct ProcessGroup(Child);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// A `ferry demo` process in a directory (data in `./ferry-demo`), on a free port.
struct Demo {
    child: Child,
    url: String,
    token: String,
    log: Arc<Mutex<String>>,
}

impl Demo {
    /// Starts the demo in `work` and waits until hello 1.0.0 runs in dev, as the tour's
    /// first command expects.
    fn start(work: &Path) -> Demo {
        let mut child = Command::new(FERRY)
            .args(["demo", "--listen", "127.0.0.1:0"])
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting ferry demo");
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stdout_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("server") {
                    let _ = url_tx.send(url.trim().to_owned());
                }
                stdout_log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stderr_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                stderr_log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the demo did not start: {}", log.lock().unwrap()));
        let demo = Demo {
            child,
            url,
            token: admin_token(work),
            log,
        };
        demo.wait_for_hello_in_dev();
        demo
    }

    fn port(&self) -> u16 {
        port_of(&self.url)
    }

    fn client(&self, args: &[&str]) -> Run {
        client(&self.url, &self.token, args)
    }

    fn wait_for_hello_in_dev(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let deployments = self
                .client(&["deployment", "list", "hello", "--json"])
                .json();
            if deployments[0]["status"] == "succeeded" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the demo did not deploy hello 1.0.0 to dev: {deployments}\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the demo with SIGTERM, as Ctrl-C or a service manager would, and waits for it.
    fn stop(mut self) {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the demo did not stop on SIGTERM: {}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo's agents (dev-1, pp-1, prd-1, which ran inside the demo) as `ferry agent`
/// processes, re-pointed from the demo's address to `url` as docs/scale-out.md says: change
/// `server` in ROOT/.ferry/agent.toml and start the agent again.
fn repoint_demo_agents(work: &Path, demo_url: &str, url: &str) -> Vec<Agent> {
    ["dev", "pp", "prd"]
        .into_iter()
        .map(|env| {
            let root = work.join("ferry-demo/targets").join(env);
            let state = root.join(".ferry/agent.toml");
            let text = fs::read_to_string(&state).unwrap();
            let before = format!("server = \"{demo_url}\"");
            assert!(text.contains(&before), "{}: {text}", state.display());
            fs::write(
                &state,
                text.replace(&before, &format!("server = \"{url}\"")),
            )
            .unwrap();
            let log = fs::File::create(work.join(format!("agent-{env}.log"))).unwrap();
            let child = Command::new(FERRY)
                .args(["agent", "--hooks-as-root", "--root"])
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            Agent { child, root }
        })
        .collect()
}

/// When each target was last seen, by name.
fn last_seen(url: &str, token: &str) -> Vec<(String, String)> {
    let listed = client(url, token, &["target", "list", "--json"])
        .success()
        .json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].to_string(), t["last_seen"].to_string()))
        .collect()
}

/// Waits until every target of `before` was seen since: their agents reach the servers
/// again. (Until three heartbeats are missed a target counts as online all the same; its
/// last contact is written at most once per heartbeat, so this takes up to one, 5 s.)
fn wait_until_heard_from(url: &str, token: &str, before: &[(String, String)]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = last_seen(url, token);
        if before.iter().all(|target| !now.contains(target)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agents did not come back: before {before:?}, now {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `ferry ARGS` against `url` as `token`, with no config file.
fn admin_token(work: &Path) -> String {
    fs::read_to_string(work.join("ferry-demo/admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Says something on stderr, past the test harness's capture, so it is seen.
fn say(message: &str) {
    let _ = std::io::stderr().write_all(format!("{message}\n").as_bytes());
}

fn skipped(why: &str) {
    say(&format!("README tour skipped on this pass: {why}"));
}
