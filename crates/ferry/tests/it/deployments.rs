//! Deployments with real agent processes on temp roots.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{agent_credential, Agent, Server, FERRY};

/// Enrolls target `name` in `env` and starts its agent.
pub(crate) fn start_agent(server: &Server, env: &str, name: &str) -> Agent {
    let root = server.dir.path().join(format!("target-{name}"));
    start_agent_at(server, env, name, &root)
}

/// Enrolls target `name` in `env` and starts its agent on `root`, which may be relative to
/// the server's directory.
pub(crate) fn start_agent_at(server: &Server, env: &str, name: &str, root: &Path) -> Agent {
    start_agent_with_stderr(server, env, name, root, Stdio::null(), &[AS_ROOT], &[])
}

/// Tests run as root in CI: their agents run every application's hooks as root, as an
/// agent that is not root runs them as itself (`isolation.rs` tests the root agent that
/// runs them as each application's user).
const AS_ROOT: &str = "--hooks-as-root";

/// Enrolls target `name` in `env` and starts its agent, its log (stderr) written to the
/// file returned.
pub(crate) fn start_agent_logged(server: &Server, env: &str, name: &str) -> (Agent, PathBuf) {
    start_agent_logged_with(server, env, name, &[])
}

/// As [`start_agent_logged`], with more arguments for `ferry agent`.
pub(crate) fn start_agent_logged_with(
    server: &Server,
    env: &str,
    name: &str,
    args: &[&str],
) -> (Agent, PathBuf) {
    let root = server.dir.path().join(format!("target-{name}"));
    let log = server.dir.path().join(format!("agent-{name}.log"));
    let file = fs::File::create(&log).unwrap();
    let args = [&[AS_ROOT], args].concat();
    let agent = start_agent_with_stderr(server, env, name, &root, file.into(), &args, &[]);
    (agent, log)
}

/// Enrolls target `name` in `env` and starts its agent as a root agent is started in
/// production (without `--hooks-as-root`), its log written to the file returned.
pub(crate) fn start_isolating_agent(server: &Server, env: &str, name: &str) -> (Agent, PathBuf) {
    let root = server.dir.path().join(format!("target-{name}"));
    let log = server.dir.path().join(format!("agent-{name}.log"));
    let file = fs::File::create(&log).unwrap();
    let agent = start_agent_with_stderr(server, env, name, &root, file.into(), &[], &[]);
    (agent, log)
}

/// As [`start_agent_logged`], with more environment variables for `ferry agent`.
pub(crate) fn start_agent_with_env(
    server: &Server,
    env: &str,
    name: &str,
    vars: &[(&str, String)],
) -> (Agent, PathBuf) {
    let root = server.dir.path().join(format!("target-{name}"));
    let log = server.dir.path().join(format!("agent-{name}.log"));
    let file = fs::File::create(&log).unwrap();
    let agent = start_agent_with_stderr(server, env, name, &root, file.into(), &[AS_ROOT], vars);
    (agent, log)
}

fn start_agent_with_stderr(
    server: &Server,
    env: &str,
    name: &str,
    root: &Path,
    stderr: Stdio,
    args: &[&str],
    vars: &[(&str, String)],
) -> Agent {
    let token = server.enrollment_token(env, name);
    let child = Command::new(FERRY)
        .args(["agent", "--root"])
        .arg(root)
        .args(["--server", &server.url, "--enroll", &token])
        .args(args)
        .envs(vars.iter().map(|(name, value)| (name, value)))
        .current_dir(server.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let root = server.dir.path().join(root);
    // Enrolled once its credential is written: from then on deployments can reach it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !root.join(".ferry/agent.toml").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "agent {name} never enrolled"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Agent { child, root }
}

/// Starts the agent of an enrolled root again, its log (stderr) going to `stderr`,
/// optionally set to abort at a failpoint.
pub(crate) fn restart_agent(root: &Path, stderr: Stdio, failpoint: Option<&str>) -> Agent {
    let mut command = Command::new(FERRY);
    command
        .args(["agent", "--root"])
        .arg(root)
        .arg(AS_ROOT)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(name) = failpoint {
        command.env("FERRY_FAILPOINT", name);
    }
    Agent {
        child: command.spawn().unwrap(),
        root: root.to_owned(),
    }
}

/// One agent per environment of the default pipeline: `dev-1`, `pp-1` and `prd-1`.
pub(crate) fn start_agent_per_env(server: &Server) -> Vec<Agent> {
    ["dev", "pp", "prd"]
        .iter()
        .map(|env| start_agent(server, env, &format!("{env}-1")))
        .collect()
}

pub(crate) fn site(dir: &Path, version: &str, ferry_toml: &str) -> PathBuf {
    let site = dir.join(format!("site-{version}"));
    fs::create_dir_all(site.join("css")).unwrap();
    fs::write(site.join("index.html"), format!("<h1>{version}</h1>\n")).unwrap();
    fs::write(site.join("css/site.css"), "body { color: teal }\n").unwrap();
    if !ferry_toml.is_empty() {
        fs::write(site.join("ferry.toml"), ferry_toml).unwrap();
    }
    site
}

pub(crate) fn setup(server: &Server) {
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop"])
        .success();
}

pub(crate) fn release(server: &Server, version: &str, ferry_toml: &str) {
    let site = site(server.dir.path(), version, ferry_toml);
    release_from(server, version, &site);
}

/// Creates release `version` of `web` from a directory.
pub(crate) fn release_from(server: &Server, version: &str, dir: &Path) {
    release_of(server, "web", version, dir);
}

/// Creates release `version` of `app` from a directory.
pub(crate) fn release_of(server: &Server, app: &str, version: &str, dir: &Path) {
    server
        .admin(&[
            "release",
            "create",
            app,
            version,
            "--from",
            dir.to_str().unwrap(),
        ])
        .success();
}

pub(crate) fn current(root: &Path, app: &str) -> String {
    fs::read_link(root.join("apps").join(app).join("current"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn deploy_and_rollback_through_real_agents() {
    let server = Server::start();
    setup(&server);
    let a = start_agent(&server, "dev", "dev-1");
    let b = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");

    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["targets"].as_array().unwrap().len(), 2);
    for agent in [&a, &b] {
        assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
        let index = agent.root.join("apps/web/current/index.html");
        assert_eq!(fs::read_to_string(index).unwrap(), "<h1>1.0.0</h1>\n");
    }

    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--wait",
            "--strategy",
            "parallel",
        ])
        .success();
    assert_eq!(current(&a.root, "web"), "releases/1.0.1");

    let back = server
        .admin(&["rollback", "web", "--env", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(
        (back["kind"].as_str(), back["version"].as_str()),
        (Some("rollback"), Some("1.0.0"))
    );
    assert_eq!(current(&a.root, "web"), "releases/1.0.0");
    assert_eq!(current(&b.root, "web"), "releases/1.0.0");

    let status = server.admin(&["status", "web", "--json"]).success().json();
    let dev = &status["apps"][0]["environments"][0];
    assert_eq!(
        (dev["env"].as_str(), dev["version"].as_str()),
        (Some("dev"), Some("1.0.0"))
    );
    assert_eq!(dev["back_from"], "1.0.1", "{status}");
    let shown = server.admin(&["status", "web"]).success();
    assert!(
        shown.stdout.contains("1.0.0 (rolled back from 1.0.1)"),
        "{shown:?}"
    );
    assert_eq!(dev["targets"][0]["version"], "1.0.0");
    assert_eq!(dev["rolled_back_from"], serde_json::json!(["1.0.1"]));
    let targets = server.admin(&["target", "list", "--json"]).success().json();
    assert_eq!(targets[0]["health"], "online");

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
    assert!(
        actions.contains(&"deployment.deploy")
            && actions.contains(&"deployment.rollback")
            && actions.contains(&"deployment.finish"),
        "{actions:?}"
    );
}

#[test]
fn a_release_staged_ahead_is_then_only_switched_to() {
    use std::os::unix::fs::MetadataExt;
    let server = Server::start();
    setup(&server);
    let a = start_agent(&server, "dev", "dev-1");
    let b = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");
    // Valid as a ferry.toml, but the shared path lies below a file of the release: only
    // staging the tree finds that out.
    release(&server, "1.0.2", "shared = [\"index.html/uploads\"]\n");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();

    let staged = server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--stage-only",
            "--wait",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(
        (staged["kind"].as_str(), staged["status"].as_str()),
        (Some("stage"), Some("succeeded")),
        "{staged}"
    );
    for agent in [&a, &b] {
        assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
        let releases = agent.root.join("apps/web/releases");
        let css = |v: &str| {
            fs::metadata(releases.join(v).join("css/site.css"))
                .unwrap()
                .ino()
        };
        assert_eq!(css("1.0.1"), css("1.0.0"), "unchanged files are hard links");
    }
    assert!(staged["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "staged"));

    let done = server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    for agent in [&a, &b] {
        assert_eq!(current(&agent.root, "web"), "releases/1.0.1");
    }

    // A release that cannot be staged fails the staging and changes nothing served.
    let run = server.admin(&[
        "deploy",
        "web",
        "1.0.2",
        "--to",
        "dev",
        "--stage-only",
        "--wait",
        "--json",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    let failed = run.json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("could not stage"),
        "{failed}"
    );
    assert_eq!(current(&a.root, "web"), "releases/1.0.1");

    // Staging is held to the lifecycle: 1.0.1 has not been through pp, so prd's targets do
    // not get it (`stage_policy` has the rest).
    let _prd = start_agent(&server, "prd", "prd-1");
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "prd", "--stage-only"])
        .fails(3, "has not succeeded in \"pp\"");
}

/// A `before_switch` hook that fails stops the deploy before anything switched: the
/// deployment ends `failed` (nothing was rolled back, the target never left its release).
#[test]
fn a_failing_before_switch_hook_fails_and_keeps_the_previous_release() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    release(
        &server,
        "2.0.0",
        "[hooks]\nbefore_switch = \"echo migration failed >&2; exit 3\"\n",
    );
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let run = server.admin(&["deploy", "web", "2.0.0", "--to", "dev", "--wait", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report = run.json();
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["targets"][0]["state"], "failed", "{report}");
    assert!(
        report["targets"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("migration failed"),
        "{report}"
    );
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
}

/// A release whose health check fails on the third of three targets: the deployment ends
/// rolled back with that target's reason, and every target serves the previous release
/// again: the first two were switched and are sent back, the third put it back itself.
/// Regression: an agent took a second ask of the same deployment (go back) for one it had
/// handled, so the targets sent back never went back and the deployment timed out failed.
#[test]
fn a_health_check_failing_on_the_third_target_rolls_back_the_others() {
    // Short, so a target that never goes back fails the test in seconds.
    let server = Server::start_with(&["--deploy-timeout", "10s"]);
    setup(&server);
    let agents: Vec<Agent> = ["dev-1", "dev-2", "dev-3"]
        .iter()
        .map(|name| start_agent(&server, "dev", name))
        .collect();
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    // Only the third target is unhealthy: its shared directory holds the marker.
    let shared = agents[2].root.join("apps/web/shared");
    fs::create_dir_all(&shared).unwrap();
    fs::write(shared.join("unhealthy"), "").unwrap();
    let toml = concat!(
        "[health]\n",
        "command = 'test ! -e \"$FERRY_SHARED_DIR/unhealthy\"'\n",
        "timeout = \"400ms\"\n",
    );
    for (version, strategy) in [("2.0.0", "rolling"), ("2.0.1", "parallel")] {
        release(&server, version, toml);
        let run = server.admin(&[
            "deploy",
            "web",
            version,
            "--to",
            "dev",
            "--strategy",
            strategy,
            "--wait",
            "--json",
        ]);
        assert_eq!(run.code, 1, "{strategy}: {run:?}");
        let done = run.json();
        assert_eq!(done["status"], "rolled_back", "{strategy}: {done}");
        let reason = done["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(
                "dev-3: health check `test ! -e \"$FERRY_SHARED_DIR/unhealthy\"` failed"
            ),
            "{strategy}: {done}"
        );
        let targets = done["targets"].as_array().unwrap();
        let state = |name: &str| {
            let target = targets.iter().find(|t| t["target"] == name).unwrap();
            (
                target["state"].as_str().unwrap().to_owned(),
                target["reason"].clone(),
            )
        };
        assert_eq!(state("dev-1").0, "reverted", "{strategy}: {done}");
        assert_eq!(state("dev-2").0, "reverted", "{strategy}: {done}");
        let (third, third_reason) = state("dev-3");
        assert_eq!(third, "rolled_back", "{strategy}: {done}");
        assert!(
            reason.ends_with(third_reason.as_str().unwrap()),
            "{strategy}: {done}"
        );
        for agent in &agents {
            assert_eq!(current(&agent.root, "web"), "releases/1.0.0", "{strategy}");
            let index = agent.root.join("apps/web/current/index.html");
            assert_eq!(fs::read_to_string(index).unwrap(), "<h1>1.0.0</h1>\n");
        }
    }
}

#[test]
fn hooks_get_absolute_paths_from_an_agent_started_with_a_relative_root() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent_at(&server, "dev", "dev-1", Path::new("targets/dev-1"));
    let toml = concat!(
        "shared = [\"data\"]\n",
        "[hooks]\n",
        "after_switch = 'echo \"$FERRY_VERSION\" > \"$FERRY_SHARED_DIR/data/switched\" && test -d \"$FERRY_RELEASE_DIR\"'\n",
    );
    release(&server, "1.0.0", toml);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let switched = agent.root.join("apps/web/shared/data/switched");
    assert_eq!(fs::read_to_string(switched).unwrap(), "1.0.0\n");
}

#[test]
fn a_silent_target_times_out_with_a_reason() {
    let server = Server::start_with(&["--deploy-timeout", "2s"]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    drop(agent);
    release(&server, "1.0.1", "");
    let run = server.admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no answer for 2s"), "{run:?}");
}

/// A target busy with a slow hook reports its progress: the deployment shows the step it is
/// on (the hook running, named with its command) and does not time out, though the hook outlasts the timeout for silent targets.
#[test]
fn a_slow_deploy_reports_its_steps_and_does_not_time_out() {
    let server = Server::start_with(&["--deploy-timeout", "5s"]);
    setup(&server);
    let _agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "[hooks]\nbefore_switch = \"sleep 9\"\n");
    let started = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    let id = started["id"].to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let step = loop {
        let shown = server
            .admin(&["deployment", "show", &id, "--json"])
            .success()
            .json();
        if let Some(step) = shown["targets"][0]["step"].as_str() {
            break step.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no step shown: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The step being worked on, not the last one completed.
    assert_eq!(step, "running before_switch: sleep 9");
    let done = server
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["targets"][0].get("step").is_none(), "{done}");
}

#[test]
fn deploy_refusals() {
    let server = Server::start();
    setup(&server);
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev"])
        .fails(3, "web has no target in dev");
    server
        .admin(&["deploy", "web", "9.9.9", "--to", "dev"])
        .fails(1, "has no release \"9.9.9\"");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "qa"])
        .fails(1, "no environment named \"qa\"");
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    server
        .ferry(&viewer, &["deploy", "web", "1.0.0", "--to", "dev"])
        .fails(3, "this needs deploy");
    server
        .admin(&["rollback", "web", "--env", "dev"])
        .fails(3, "never been deployed");
}

/// A `ferry demo` on a free port with its data in `data`, and what it prints.
pub(crate) struct DemoRun {
    pub child: std::process::Child,
    lines: Option<Box<dyn Iterator<Item = String> + Send>>,
}

impl DemoRun {
    pub fn start(data: &Path) -> DemoRun {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(FERRY)
            .args(["demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        DemoRun {
            child,
            lines: Some(Box::new(lines)),
        }
    }

    /// What the demo prints after `label` on a line of its own, in the order it prints them.
    pub fn printed(&mut self, label: &str) -> String {
        (self.lines.as_mut().expect("still reading"))
            .find_map(|line| line.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("the demo prints its {label}"))
    }

    /// Keeps reading in the background: a demo whose stdout is closed would fail its next
    /// line.
    pub fn keep_reading(&mut self) {
        if let Some(lines) = self.lines.take() {
            std::thread::spawn(move || lines.for_each(drop));
        }
    }
}

/// `ferry demo` as a newcomer runs it: a server, three agents, a sample app live in dev.
#[test]
fn the_demo_deploys_a_sample_application_to_dev() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = DemoRun::start(&data);
    let url = demo.printed("server");
    let token = demo.printed("token");
    assert_eq!(
        token,
        fs::read_to_string(data.join("admin-token")).unwrap().trim()
    );
    demo.keep_reading();
    let mut child = demo.child;
    let current = data.join("targets/dev/apps/hello/current/index.html");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !current.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "hello never went live in dev"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(fs::read_to_string(&current)
        .unwrap()
        .contains("Hello from ferry"));
    let status = crate::harness::Run::of(
        Command::new(FERRY)
            .args(["status", "--json"])
            .env("FERRY_SERVER", &url)
            .env("FERRY_TOKEN", &token)
            .env("FERRY_CONFIG", dir.path().join("config.toml")),
    );
    let status = status.success().json();
    let targets = &status["apps"][0]["environments"][0]["targets"];
    assert_eq!(targets[0]["target"], "dev-1");

    // The admin rotates their token: the demo, started again, says its file is stale
    // rather than printing a token that no longer works.
    crate::harness::Run::of(
        Command::new(FERRY)
            .args(["user", "rotate-token"])
            .env("FERRY_SERVER", &url)
            .env("FERRY_TOKEN", &token)
            .env("FERRY_CONFIG", dir.path().join("config.toml")),
    )
    .success();
    let _ = child.kill();
    let _ = child.wait();
    crate::harness::Run::of(
        Command::new(FERRY)
            .args(["demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    )
    .fails(1, "no longer works");
}

/// The releases of `app` on disk on a target, sorted.
pub(crate) fn releases_on_disk(root: &Path, app: &str) -> Vec<String> {
    let mut versions: Vec<String> = fs::read_dir(root.join("apps").join(app).join("releases"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
}

/// One agent hosts several applications, each placed on the targets `app place` names, and
/// keeps as many releases of each as the application's `--keep` says.
#[test]
fn one_agent_hosts_many_apps_placed_on_chosen_targets() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "2"])
        .success();
    server
        .admin(&["app", "create", "blog", "--team", "shop"])
        .success();
    let one = start_agent(&server, "dev", "dev-1");
    let two = start_agent(&server, "dev", "dev-2");
    assert_eq!(
        crate::harness::mode(&one.root.join(".ferry/agent.toml")),
        0o600
    );
    server
        .admin(&["app", "place", "blog", "--env", "dev", "--targets", "dev-2"])
        .success();
    server
        .admin(&["app", "place", "blog", "--env", "dev", "--targets", "dev-9"])
        .fails(1, "dev-9");

    let blog = site(server.dir.path(), "blog-1.0.0", "");
    release_of(&server, "blog", "1.0.0", &blog);
    let done = server
        .admin(&["deploy", "blog", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["targets"].as_array().unwrap().len(), 1, "{done}");
    for version in ["1.0.0", "1.0.1", "1.0.2", "1.0.3"] {
        release(&server, version, "");
        server
            .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    }
    assert_eq!(current(&two.root, "blog"), "releases/1.0.0");
    assert_eq!(current(&two.root, "web"), "releases/1.0.3");
    assert!(
        !one.root.join("apps/blog").exists(),
        "blog is not placed on dev-1"
    );
    // Old releases are removed after the report: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for agent in [&one, &two] {
        while releases_on_disk(&agent.root, "web") != ["1.0.2", "1.0.3"] {
            assert!(
                std::time::Instant::now() < deadline,
                "web keeps 2 releases: {:?}",
                releases_on_disk(&agent.root, "web")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn retention_never_removes_a_release_a_target_runs() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "1"])
        .success();
    let _agent = start_agent(&server, "dev", "dev-1");
    for version in ["1.0.0", "2.0.0", "3.0.0"] {
        release(&server, version, "");
        if version == "1.0.0" {
            server
                .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
                .success();
        }
    }
    let pruned = server
        .admin(&["release", "prune", "web", "--json"])
        .success()
        .json();
    assert_eq!(pruned["removed"], serde_json::json!(["2.0.0"]));
    server.admin(&["release", "show", "web", "1.0.0"]).success();
}

/// An agent credential reads only what its own target runs and reports only for itself.
#[tokio::test]
async fn an_agent_credential_reaches_only_its_own_work() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["app", "create", "blog", "--team", "shop"])
        .success();
    let blog = site(server.dir.path(), "blog", "");
    release_of(&server, "blog", "1.0.0", &blog);

    let credential = agent_credential(&agent.root);
    let http = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async {
        request
            .bearer_auth(&credential)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let url = |path: &str| format!("{}{path}", server.url);
    assert_eq!(
        status(http.get(url("/api/v1/agent/manifest/web/1.0.0"))).await,
        200
    );
    assert_eq!(
        status(http.get(url("/api/v1/agent/manifest/blog/1.0.0"))).await,
        404
    );
    // Its own application, but a release it was never asked to run.
    release(&server, "9.9.9", "");
    assert_eq!(
        status(http.get(url("/api/v1/agent/manifest/web/9.9.9"))).await,
        404
    );
    let report = serde_json::json!({"app": "blog", "deployment": 1, "outcome": "succeeded"});
    assert_eq!(
        status(http.post(url("/api/v1/agent/report")).json(&report)).await,
        404
    );
    let blob = blake3::hash(b"<h1>blog</h1>\n").to_hex().to_string();
    let fetch = serde_json::json!({"hashes": [blob]});
    assert_eq!(
        status(http.post(url("/api/v1/agent/blobs/fetch")).json(&fetch)).await,
        404
    );
    assert_eq!(
        status(http.get(url("/api/v1/apps"))).await,
        401,
        "user endpoints refuse agent credentials"
    );
}
