//! Freezing an environment now (`ferry env freeze ENV --for 2h --reason TEXT`, `ferry env
//! unfreeze ENV`) through the binary with real agents: deployments are refused naming the
//! reason and the end, the refusal is audited, break-glass gets through, unfreezing lets
//! deployments through again; and windows that never let go read "frozen continuously".

use serde_json::Value;

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{changes_len, Server};

/// The last audit event.
fn last_event(server: &Server) -> Value {
    let trail = server.admin(&["audit", "--json"]).success().json();
    trail.as_array().unwrap().last().unwrap().clone()
}

#[test]
fn a_freeze_holds_prd_naming_its_reason_until_unfrozen() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    let _pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let rita = server.create_user("rita", "release-manager", &[]);
    for version in ["1.0.0", "1.0.1"] {
        release(&server, version, "");
        for env in ["dev", "pp"] {
            server
                .admin(&["deploy", "web", version, "--to", env, "--wait"])
                .success();
        }
    }

    // Only who may change the pipeline's policy freezes it; bad input says what to write.
    let events = changes_len(&server);
    server
        .ferry(
            &dana,
            &["env", "freeze", "prd", "--for", "2h", "--reason", "x"],
        )
        .fails(
            3,
            "changing environments and their policy needs the release-manager or admin role",
        );
    for (lasting, expected) in [
        ("2 hours", "--for: invalid duration \"2 hours\""),
        ("2x", "write it like 500ms, 30s, 15m, 2h, 1d or 1h30m"),
        ("0s", "more than zero: write how long to freeze, like 2h"),
        ("32d", "a freeze lasts at most 31 days"),
    ] {
        server
            .ferry(
                &rita,
                &["env", "freeze", "prd", "--for", lasting, "--reason", "x"],
            )
            .fails(3, expected);
    }
    server
        .ferry(
            &rita,
            &["env", "freeze", "prd", "--until", "22:00", "--reason", "x"],
        )
        .fails(3, "write it like \"2026-12-04 22:00\" (UTC)");
    server
        .ferry(
            &rita,
            &["env", "freeze", "prd", "--for", "2h", "--reason", " "],
        )
        .fails(3, "a freeze needs --reason TEXT");
    server
        .ferry(&rita, &["env", "freeze", "prd", "--reason", "x"])
        .fails(2, "--for");
    server
        .ferry(&rita, &["env", "unfreeze", "prd"])
        .fails(3, "prd is not frozen: nothing to unfreeze");
    assert_eq!(changes_len(&server), events, "refusals change nothing");

    // Frozen for two hours, with the reason and who froze it.
    let frozen = server
        .ferry(
            &rita,
            &[
                "env",
                "freeze",
                "prd",
                "--for",
                "2h",
                "--reason",
                "release night",
                "--json",
            ],
        )
        .success()
        .json();
    let until = frozen["frozen"]["until"].as_str().unwrap().to_owned();
    let hh_mm = &until[11..16];
    let summary = frozen["frozen"]["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.starts_with("until ")
            && summary.contains(&format!("{hh_mm} UTC"))
            && summary.ends_with(" UTC (release night, by rita)"),
        "{frozen}"
    );
    assert_eq!(frozen["frozen"]["reason"], "release night", "{frozen}");
    assert_eq!(frozen["frozen"]["by"], "rita", "{frozen}");
    assert_eq!(
        frozen["one_off_freeze"]["until"],
        until.as_str(),
        "{frozen}"
    );
    let event = last_event(&server);
    assert_eq!(
        (&event["action"], &event["actor"], &event["subject"]),
        (
            &"environment.freeze-now".into(),
            &"rita".into(),
            &"environment/prd".into()
        ),
        "{event}"
    );
    assert_eq!(event["details"]["reason"], "release night", "{event}");

    // `env list` says so, for people and scripts.
    let listed = server.ferry(&dana, &["env", "list"]).success();
    assert!(
        listed.stdout.contains("prd: frozen until ")
            && listed
                .stdout
                .contains(&format!("{hh_mm} UTC (release night, by rita)")),
        "{listed:?}"
    );
    let envs = server
        .ferry(&dana, &["env", "list", "--json"])
        .success()
        .json();
    assert_eq!(envs[2]["frozen"]["until"], until.as_str(), "{envs}");
    assert!(envs[0].get("frozen").is_none(), "dev is not frozen: {envs}");

    // A deploy is refused, naming the reason and the end; the attempt is audited.
    let events = changes_len(&server);
    let refused = server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "prd", "--json"])
        .fails(3, "\"prd\" is frozen until ");
    assert!(
        refused.stderr.contains(&format!(
            "{hh_mm} UTC (release night, by rita): deploy after that, or after a release \
             manager or admin ends it with `ferry env unfreeze prd`; or an admin of \"prd\" may override the freeze with --break-glass"
        )),
        "{refused:?}"
    );
    assert_eq!(refused.json()["error"]["code"], "frozen", "{refused:?}");
    assert_eq!(changes_len(&server), events, "a refusal changes nothing");
    let event = last_event(&server);
    assert_eq!(
        (&event["action"], &event["actor"], &event["details"]["rule"]),
        (&"refused".into(), &"dana".into(), &"frozen".into()),
        "{event}"
    );
    assert!(
        event["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("(release night, by rita)"),
        "{event}"
    );
    // A promotion refused the same way is recorded once, as the promotion asked.
    let refusals = |server: &Server| {
        let trail = server.admin(&["audit", "--json"]).success().json();
        trail
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "refused")
            .count()
    };
    let before = refusals(&server);
    server
        .ferry(&dana, &["promote", "web", "--from", "pp", "--to", "prd"])
        .fails(3, "\"prd\" is frozen until ");
    assert_eq!(refusals(&server), before + 1);
    let event = last_event(&server);
    assert_eq!(
        event["details"]["asked"], "promote web from pp to prd",
        "{event}"
    );

    // A shorter freeze does not cut it short; a longer one replaces it.
    server
        .ferry(
            &rita,
            &["env", "freeze", "prd", "--for", "1h", "--reason", "x"],
        )
        .fails(
            3,
            "would end it sooner: to shorten it, `ferry env unfreeze prd` first",
        );
    let longer = server
        .admin(&[
            "env",
            "freeze",
            "prd",
            "--for",
            "3h",
            "--reason",
            "longer night",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(longer["frozen"]["reason"], "longer night", "{longer}");
    let replaced = last_event(&server);
    assert!(
        replaced["details"]["replaced_until_ms"].is_i64(),
        "the replaced freeze is named: {replaced}"
    );

    // An admin breaks the glass, as during a freeze window.
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.0",
            "--to",
            "prd",
            "--break-glass",
            "--reason",
            "outage",
            "--wait",
        ])
        .success();
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0");

    // Unfrozen, deployments go through again (to wait for their approval in prd).
    let thawed = server
        .ferry(&rita, &["env", "unfreeze", "prd", "--reason", "done early"])
        .success();
    assert!(
        thawed
            .stdout
            .contains("ended the freeze of prd; it is not frozen now"),
        "{thawed:?}"
    );
    let event = last_event(&server);
    assert_eq!(
        (&event["action"], &event["details"]["frozen_for"]),
        (&"environment.unfreeze-now".into(), &"longer night".into()),
        "{event}"
    );
    let requested = server
        .ferry(&dana, &["deploy", "web", "1.0.1", "--to", "prd", "--json"])
        .success()
        .json();
    assert_eq!(requested["status"], "awaiting_approval", "{requested}");
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    assert!(envs[2].get("frozen").is_none(), "{envs}");
    server
        .ferry(&rita, &["env", "unfreeze", "prd"])
        .fails(3, "prd is not frozen: nothing to unfreeze");
}

#[test]
fn windows_that_leave_no_gap_read_frozen_continuously() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["env", "set", "dev", "--freeze", "0 * * * * 2h"])
        .success();

    let listed = server.admin(&["env", "list"]).success();
    assert!(
        listed
            .stdout
            .contains("dev: frozen continuously (its freeze windows leave no gap)"),
        "{listed:?}"
    );
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    assert_eq!(envs[0]["frozen"]["continuously"], true, "{envs}");
    assert!(envs[0]["frozen"].get("until").is_none(), "{envs}");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev"])
        .fails(
            3,
            "\"dev\" is frozen continuously (its freeze windows leave no gap): a release \
             manager or admin may remove a window with `ferry env set dev --unfreeze \"CRON \
             DURATION\"`",
        );

    // A one-off freeze on top changes nothing about it, and unfreezing it says the windows
    // still hold the environment and how to remove them.
    let frozen = server
        .admin(&["env", "freeze", "dev", "--for", "1h", "--reason", "on top"])
        .success();
    // Both say the one-off freeze exists although the windows outlast it.
    let listed = server.admin(&["env", "list"]).success();
    for said in [&frozen.stdout, &listed.stdout] {
        assert!(
            said.contains("frozen continuously")
                && said.contains("; also frozen until ")
                && said.contains("(on top, by admin)"),
            "{said}"
        );
    }
    let thawed = server.admin(&["env", "unfreeze", "dev"]).success();
    assert!(
        thawed.stderr.contains(
            "warning: dev is still frozen continuously (its freeze windows leave no gap) by its \
             freeze windows; remove one with `ferry env set dev --unfreeze \"CRON DURATION\"`"
        ),
        "{thawed:?}"
    );
    server.admin(&["env", "unfreeze", "dev"]).fails(
        3,
        "dev has no freeze made with `ferry env freeze` to end: it is frozen continuously",
    );
}
