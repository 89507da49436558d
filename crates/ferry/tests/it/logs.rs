//! Deployment logs: what each target's hooks and health check printed, kept with the
//! deployment and shown by `ferry deployment logs` to whoever may see the deployment; a
//! failed health check named with its output; the agent's own log in sentences.

use std::time::Duration;

use serde_json::Value;

use crate::deployments::{release, setup, start_agent, start_agent_logged};
use crate::harness::{agent_credential, wait_for_line, Server};

/// Two hooks and a command health check, each printing something.
const NOISY: &str = concat!(
    "[hooks]\n",
    "before_switch = \"echo migrating the database; echo 'a warning' >&2\"\n",
    "after_switch = \"echo restarted\"\n",
    "[health]\n",
    "command = \"echo checked $FERRY_VERSION\"\n",
);

/// Deploys `version` of `web` to dev, waiting; the deployment as JSON.
fn deploy(server: &Server, version: &str) -> Value {
    server
        .admin(&["deploy", "web", version, "--to", "dev", "--wait", "--json"])
        .json()
}

#[test]
fn a_deploy_keeps_the_output_of_both_hooks_and_the_health_check() {
    let server = Server::start();
    setup(&server);
    let (_agent, agent_log) = start_agent_logged(&server, "dev", "dev-1");
    release(&server, "1.0.0", NOISY);
    let done = deploy(&server, "1.0.0");
    assert_eq!(done["status"], "succeeded", "{done}");
    let id = done["id"].to_string();

    let shown = server.admin(&["deployment", "logs", &id]).success().stdout;
    let expected = [
        "dev-1 (web 1.0.0): hook before_switch `echo migrating the database; echo 'a warning' >&2`: exited with status 0 in ",
        "    migrating the database\n    a warning\n",
        "dev-1 (web 1.0.0): hook after_switch `echo restarted`: exited with status 0 in ",
        "    restarted\n",
        "dev-1 (web 1.0.0): health check `echo checked $FERRY_VERSION`: healthy: exited with status 0 (1 attempt in ",
        "    attempt 1: exited with status 0\n    checked 1.0.0\n",
    ];
    let mut rest = shown.as_str();
    for part in expected {
        let at = rest
            .find(part)
            .unwrap_or_else(|| panic!("no {part:?} in order in:\n{shown}"));
        rest = &rest[at + part.len()..];
    }

    let json = server
        .admin(&["deployment", "logs", &id, "--json"])
        .success()
        .json();
    assert_eq!(json["deployment"].to_string(), id);
    let steps = json["targets"][0]["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["hook before_switch", "hook after_switch", "health check"]
    );
    assert!(steps.iter().all(|s| s["succeeded"] == true), "{json}");
    assert_eq!(json["targets"][0]["version"], "1.0.0");

    // The agent said what it did in a sentence, without timings of its insides.
    let log = wait_for_line(&agent_log, "deployed web 1.0.0");
    assert!(
        log.contains(&format!("deployed web 1.0.0 (deployment {id}) in ")),
        "{log}"
    );
    assert!(
        !log.contains("engine done") && !log.contains("ms,"),
        "{log}"
    );
}

#[test]
fn a_failing_health_check_is_named_with_its_output_in_show_and_in_the_logs() {
    let server = Server::start();
    setup(&server);
    let _agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    assert_eq!(deploy(&server, "1.0.0")["status"], "succeeded");
    let unhealthy = concat!(
        "[health]\n",
        "command = \"echo 'still starting: port 8080 closed'; exit 7\"\n",
        "timeout = \"500ms\"\n",
    );
    release(&server, "2.0.0", unhealthy);
    let done = deploy(&server, "2.0.0");
    assert_eq!(done["status"], "rolled_back", "{done}");
    let id = done["id"].to_string();

    let command = "echo 'still starting: port 8080 closed'; exit 7";
    let shown = server.admin(&["deployment", "show", &id]).success().stdout;
    assert!(
        shown.contains(&format!(
            "reason: dev-1: health check `{command}` failed after "
        )) && shown.contains(": exited with status 7\nstill starting: port 8080 closed\n"),
        "{shown}"
    );
    assert!(
        shown
            .trim_end()
            .ends_with(&format!("see the logs: ferry deployment logs {id}")),
        "{shown}"
    );

    let logs = server.admin(&["deployment", "logs", &id]).success().stdout;
    assert!(
        logs.starts_with(&format!(
            "dev-1 (web 2.0.0): health check `{command}`: unhealthy: exited with status 7 ("
        )),
        "{logs}"
    );
    assert!(
        logs.contains(
            "    attempt 1: exited with status 7\n    still starting: port 8080 closed\n"
        ) && !logs.contains("attempt 2: exited"),
        "{logs}"
    );
    // A deployment that succeeded has no pointer to its logs.
    let first = server.admin(&["deployment", "show", "1"]).success().stdout;
    assert!(!first.contains("see the logs"), "{first}");
}

#[test]
fn logs_of_one_target_and_a_target_the_deployment_does_not_have() {
    let server = Server::start();
    setup(&server);
    let _one = start_agent(&server, "dev", "dev-1");
    let _two = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "[hooks]\nafter_switch = \"echo on $(basename $(dirname $(dirname $(dirname $(dirname $FERRY_RELEASE_DIR)))))\"\n");
    let done = deploy(&server, "1.0.0");
    assert_eq!(done["status"], "succeeded", "{done}");
    let id = done["id"].to_string();

    let all = server.admin(&["deployment", "logs", &id]).success().stdout;
    assert!(
        all.contains("dev-1 (web 1.0.0): hook after_switch")
            && all.contains("dev-2 (web 1.0.0): hook after_switch"),
        "{all}"
    );
    let two = server
        .admin(&["deployment", "logs", &id, "--target", "dev-2"])
        .success()
        .stdout;
    assert!(
        two.contains("dev-2 (web 1.0.0): hook after_switch"),
        "{two}"
    );
    assert!(two.contains("    on target-dev-2\n"), "{two}");
    assert!(!two.contains("dev-1"), "{two}");

    server
        .admin(&["deployment", "logs", &id, "--target", "dev-9"])
        .fails(
            1,
            &format!("deployment {id} has no target \"dev-9\": its targets are dev-1, dev-2"),
        );
    server
        .admin(&["deployment", "logs", "999"])
        .fails(1, "no deployment 999: see `ferry deployment list`");
}

#[test]
fn only_who_may_see_the_deployment_reads_its_logs() {
    let server = Server::start();
    setup(&server);
    let _agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", NOISY);
    let id = deploy(&server, "1.0.0")["id"].to_string();

    server.admin(&["team", "create", "blog"]).success();
    let outsider = server.create_user("otto", "developer", &["blog"]);
    server.ferry(&outsider, &["deployment", "logs", &id]).fails(
        1,
        &format!("no deployment {id}: see `ferry deployment list`"),
    );
    // Exactly as `deployment show` answers them.
    server.ferry(&outsider, &["deployment", "show", &id]).fails(
        1,
        &format!("no deployment {id}: see `ferry deployment list`"),
    );

    let viewer = server.create_user("vic", "viewer", &["shop"]);
    let seen = server
        .ferry(&viewer, &["deployment", "logs", &id])
        .success()
        .stdout;
    assert!(seen.contains("    migrating the database\n"), "{seen}");
}

/// The agent is a boundary: a report whose logs are past the bounds an agent keeps to is
/// refused whole, saying which step and what, and changes nothing.
#[tokio::test]
async fn an_agent_report_with_logs_past_the_bounds_is_refused() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", NOISY);
    let id = deploy(&server, "1.0.0")["id"].as_i64().unwrap();

    let credential = agent_credential(&agent.root);
    let step = |output: String| {
        serde_json::json!({
            "step": "hook before_switch",
            "command": "./migrate",
            "ended": "exited with status 0",
            "succeeded": true,
            "output": output,
        })
    };
    let report = |logs: Vec<Value>| {
        serde_json::json!({
            "app": "web", "deployment": id, "outcome": "succeeded",
            "version": "1.0.0", "current_version": "1.0.0", "logs": logs,
        })
    };
    let http = reqwest::Client::new();
    let send = |body: Value| {
        let request = http
            .post(format!("{}/api/v1/agent/report", server.url))
            .bearer_auth(&credential)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, body) = send(report(vec![step("x".repeat(100 * 1024))])).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("step log 1 (\\\"hook before_switch\\\"): its output is 102400 bytes"),
        "{body}"
    );
    let (status, body) = send(report(vec![step("ok".into()); 9])).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("carries 9 step logs; an agent sends at most 8"),
        "{body}"
    );

    // Nothing changed: the logs are the deploy's own.
    let logs = server
        .admin(&["deployment", "logs", &id.to_string(), "--json"])
        .success()
        .json();
    let steps = logs["targets"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{logs}");
    assert_eq!(steps[0]["output"], "migrating the database\na warning\n");

    // Within the bounds (output cut as an agent cuts it), a report run again replaces the
    // target's steps for that release.
    let (status, body) = send(report(vec![step("[… 10 bytes cut]\nagain\n".into())])).await;
    assert_eq!(status, 200, "{body}");
    let logs = server
        .admin(&["deployment", "logs", &id.to_string(), "--json"])
        .success()
        .json();
    let steps = logs["targets"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{logs}");
    assert_eq!(steps[0]["output"], "[… 10 bytes cut]\nagain\n");
}

/// The agent says once that it lost the server and once that it is back, not on every
/// retry.
#[test]
fn the_agent_says_once_that_it_lost_the_server_and_once_that_it_reconnected() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with(&["--listen", &listen]);
    setup(&server);
    let (_agent, agent_log) = start_agent_logged(&server, "dev", "dev-1");
    // The agent has reached the server once its deploy succeeded.
    release(&server, "1.0.0", "");
    assert_eq!(deploy(&server, "1.0.0")["status"], "succeeded");
    let (status, dir, log) = server.stop();
    assert!(status.success(), "{log}");
    wait_for_line(&agent_log, "lost the server at");
    // Down long enough for several retries (0.2 s, 0.4 s, 0.8 s, …).
    std::thread::sleep(Duration::from_millis(2000));
    let server = Server::start_in_with(dir, &["--listen", &listen]);
    let log = wait_for_line(&agent_log, "reconnected to the server");
    assert_eq!(log.matches("lost the server at").count(), 1, "{log}");
    assert!(log.matches("cannot reach").count() <= 1, "{log}");
    assert_eq!(log.matches("reconnected to the server").count(), 1, "{log}");
    assert!(
        log.contains(&format!("lost the server at http://{listen} (")),
        "{log}"
    );
    drop(server);
}
