//! The audit trail: every change recorded, and tampering found.

use sqlx::Connection;

use crate::harness::Server;

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
    let url = format!("sqlite://{}", server.data_dir().join("ferry.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let changed = sqlx::query(sql).execute(&mut db).await.unwrap();
    assert_eq!(changed.rows_affected(), 1, "{sql}");
    db.close().await.unwrap();
}

#[test]
fn every_change_is_recorded_with_actor_action_and_subject() {
    let server = setup();
    let events = server.admin(&["audit", "--json"]).success().json();
    let summary: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["subject"].as_str().unwrap()
            )
        })
        .collect();
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
