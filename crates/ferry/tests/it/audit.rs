//! The audit trail: every change recorded, and tampering found.

use crate::harness::{audit_summary, Server};

fn setup() -> Server {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "shop-web", "--team", "shop"])
        .success();
    server.admin(&["team", "create", "blog"]).success();
    server
        .admin(&["app", "create", "blog-web", "--team", "blog"])
        .success();
    server
}

async fn tamper(server: &Server, sql: &str) {
    assert_eq!(server.tamper(sql).await, 1, "{sql}");
}

#[test]
fn every_change_is_recorded_with_actor_action_and_subject() {
    let server = setup();
    let summary = audit_summary(&server, 0);
    let events = server.admin(&["audit", "--json"]).success().json();
    assert_eq!(
        summary,
        [
            "ferry server.bootstrap user/admin",
            "admin team.create team/shop",
            "admin app.create app/shop-web",
            "admin team.create team/blog",
            "admin app.create app/blog-web",
        ]
    );
    assert_eq!(events[1]["prev_hash"], events[0]["hash"]);

    let for_app = server
        .admin(&["audit", "--app", "shop-web", "--json"])
        .success()
        .json();
    assert_eq!(for_app.as_array().unwrap().len(), 1);
    let table = server.admin(&["audit"]).success().stdout;
    assert!(table.starts_with("SEQ  TIME"), "{table}");

    // Filtered by action, actor and time.
    let kept = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["audit", "--json"];
        all.extend(args);
        let events = server.admin(&all).success().json();
        let events = events.as_array().unwrap().iter();
        events
            .map(|e| e["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        kept(&["--action", "team.create"]),
        ["team/shop", "team/blog"]
    );
    assert_eq!(kept(&["--actor", "ferry"]), ["user/admin"]);
    let since = events[2]["at"].as_str().unwrap();
    assert_eq!(kept(&["--since", since]).len(), 3, "at or after {since}");
    assert_eq!(kept(&["--until", since]).len(), 2, "before {since}");
    server
        .admin(&["audit", "--since", "yesterday"])
        .fails(3, "since \"yesterday\" is not an RFC 3339 time");
}

#[test]
fn team_members_read_their_apps_trail_but_not_the_whole_one() {
    let server = setup();
    let dev = server.create_user("dana", "developer", &["shop"]);
    server
        .ferry(&dev, &["audit", "--app", "shop-web"])
        .success();
    server
        .ferry(&dev, &["audit", "--app", "blog-web"])
        .fails(1, "no application named \"blog-web\"");
    server
        .ferry(&dev, &["audit"])
        .fails(3, "use --app APP for one application");
    server.ferry(&dev, &["audit", "verify"]).success();
}

#[tokio::test]
async fn an_altered_event_breaks_verification_at_that_event() {
    let server = setup();
    let ok = server
        .admin(&["audit", "verify", "--json"])
        .success()
        .json();
    assert_eq!(
        (ok["ok"].as_bool(), ok["events"].as_u64()),
        (Some(true), Some(5))
    );

    tamper(
        &server,
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
    )
    .await;
    let run = server
        .admin(&["audit", "verify"])
        .fails(1, "the audit trail is broken at event 3");
    assert!(run.stderr.contains("altered"), "{run:?}");
    let json = server.admin(&["audit", "verify", "--json"]);
    assert_eq!(json.code, 1);
    let report = json.json();
    assert_eq!(
        (report["ok"].as_bool(), report["first_bad"]["seq"].as_i64()),
        (Some(false), Some(3))
    );
}

#[tokio::test]
async fn removed_events_break_verification() {
    let server = setup();
    tamper(&server, "DELETE FROM audit_events WHERE seq = 2").await;
    server.admin(&["audit", "verify"]).fails(
        1,
        "the audit trail is broken at event 3: events 2 to 2 are missing",
    );

    let server = setup();
    tamper(&server, "DELETE FROM audit_events WHERE seq = 5").await;
    server
        .admin(&["audit", "verify"])
        .fails(1, "events were removed from the end");
}

#[tokio::test]
async fn a_rehashed_event_without_the_key_still_breaks_the_chain() {
    let server = setup();
    // Someone with the database but not the key recomputes an unkeyed hash for their edit.
    let forged = blake3::hash(b"forged").to_hex().to_string();
    tamper(
        &server,
        &format!("UPDATE audit_events SET actor = 'mallory', hash = '{forged}' WHERE seq = 4"),
    )
    .await;
    server
        .admin(&["audit", "verify"])
        .fails(1, "broken at event 4");
}

/// Runs `statements` against the server's database, as someone who can write the file but
/// does not have the audit key.
async fn rewrite(server: &Server, statements: &[&str]) {
    for sql in statements {
        server.tamper(sql).await;
    }
}

#[tokio::test]
async fn a_trail_cut_short_with_its_head_rewritten_fails_verification_and_takes_no_change() {
    let server = setup();
    server.admin(&["team", "create", "ops"]).success();
    server.admin(&["team", "create", "web"]).success();
    server.admin(&["audit", "verify"]).success();
    // The last three events go, and the head is rewritten from the rows that remain: the
    // chain itself is intact, only its seal can tell.
    rewrite(
        &server,
        &[
            "DELETE FROM audit_events WHERE seq > (SELECT max(seq) - 3 FROM audit_events)",
            "UPDATE audit_head SET seq = (SELECT max(seq) FROM audit_events),
                 hash = (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1)",
        ],
    )
    .await;
    let run = server.admin(&["audit", "verify"]).fails(
        1,
        "the audit trail is broken at event 4: the recorded head (event 4) is not sealed with the audit key: it was rewritten, so events after 4 may have been removed from the end",
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    let report = server.admin(&["audit", "verify", "--json"]).json();
    assert_eq!(
        (report["ok"].as_bool(), report["first_bad"]["seq"].as_i64()),
        (Some(false), Some(4))
    );

    // Linking a new event after the rewritten head would seal the cut anew: every change is
    // refused instead, and the cut stays visible.
    server.admin(&["team", "create", "late"]).fails(
        1,
        "the audit trail's head (event 4) is not sealed with this server's audit key",
    );
    server
        .admin(&["audit", "verify"])
        .fails(1, "broken at event 4");
    let teams = server.admin(&["team", "list", "--json"]).success().json();
    assert!(teams
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"] != "late"));
}

#[test]
fn the_audit_key_can_live_outside_the_data_directory() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("audit-key");
    let key_arg = key.to_str().unwrap();
    let server = Server::start_with(&["--audit-key", key_arg]);
    server.admin(&["team", "create", "shop"]).success();
    assert_eq!(crate::harness::mode(&key), 0o600);
    assert!(!server.data_dir().join("audit-key").exists());
    server.admin(&["audit", "verify"]).success();
    let (status, dir, _) = server.stop();
    assert!(status.success());

    // Without its key the database does not start; with it, the trail verifies and grows.
    let data = dir.path().join("data");
    let run = crate::harness::Run::of(&mut crate::harness::server_command(&data));
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("audit-key is missing but the database exists"),
        "{run:?}"
    );
    let server = Server::start_in_with(dir, &["--audit-key", key_arg]);
    server.admin(&["team", "create", "blog"]).success();
    server.admin(&["audit", "verify"]).success();
    let (_, dir, _) = server.stop();

    // Another trail's key (a server behind a load balancer given the wrong file): it does
    // not start, so it never answers beside the others with refusals and false alarms.
    let other = keys.path().join("other-key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = crate::harness::Run::of(
        crate::harness::server_command(&data).args(["--audit-key", other.to_str().unwrap()]),
    );
    run.fails(1, "is not this trail's key");
    let server = Server::start_in_with(dir, &["--audit-key", key_arg]);
    server.admin(&["audit", "verify"]).success();
    server.admin(&["team", "create", "ops"]).success();
}
