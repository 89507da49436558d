//! A damaged or drifted database reads as a backend error naming the row, never as a panic
//! or a default: each case writes one bad value past the store's checks and reads it back
//! through the store.

use ferry_store::prelude::*;
use ferry_store::{StoreError, StoreResult};

use crate::SqliteStore;

/// What every case builds on: a team, an environment, a role, a user and an application.
const SEED: &[&str] = &[
    "INSERT INTO teams (name, created_ms) VALUES ('shop', 1)",
    "INSERT INTO environments (name, position, approvals_required, self_approval, protected)
     VALUES ('prd', 0, 1, 0, 1)",
    "INSERT INTO roles (name, capabilities) VALUES ('developer', '')",
    "INSERT INTO users (name, default_role, created_ms) VALUES ('dana', 'developer', 1)",
    "INSERT INTO apps (name, team_id, keep_releases, created_ms) VALUES ('web', 1, 5, 1)",
];

/// The store read that meets the damaged row.
#[derive(Clone, Copy, Debug)]
enum Read {
    Teams,
    Grants,
    Roles,
    Environments,
    Apps,
    Releases,
    TeamSupport,
    Incidents,
    Delivery,
}

async fn read(store: &SqliteStore, what: Read) -> StoreResult<()> {
    match what {
        Read::Teams => store.list_teams().await.map(drop),
        Read::Grants => store.app_grants("web").await.map(drop),
        Read::Roles => store.list_roles().await.map(drop),
        Read::Environments => store.list_environments().await.map(drop),
        Read::Apps => store.list_apps().await.map(drop),
        Read::Releases => store.list_releases("web").await.map(drop),
        Read::TeamSupport => store.team_support("shop").await.map(drop),
        Read::Incidents => store.incidents(None, true).await.map(drop),
        Read::Delivery => store.delivery(1).await.map(drop),
    }
}

/// Seeds a new store, runs `damage` with CHECK constraints off (as a file written by
/// another program, or by hand, may hold anything), and expects `read` to fail with a
/// backend error containing `expect`.
async fn check(damage: &[&str], what: Read, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ferry.db"), [3; 32])
        .await
        .unwrap();
    let mut conn = store.writer.acquire().await.unwrap();
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut *conn)
        .await
        .unwrap();
    for statement in SEED.iter().chain(damage) {
        sqlx::query(statement).execute(&mut *conn).await.unwrap();
    }
    drop(conn);
    match read(&store, what).await {
        Err(StoreError::Backend(message)) => assert!(
            message.contains(expect),
            "{what:?}: {message:?} does not contain {expect:?}"
        ),
        other => panic!("{what:?}: expected a backend error containing {expect:?}, got {other:?}"),
    }
}

const INCIDENT: &str =
    "INSERT INTO incidents (app_id, env, severity, title, status, path, team_id, reporter,
         escalation_level, opened_ms, history)
     VALUES (1, 'prd', 'critical', 'down', 'open', 'backlog', 1, 'dana', 0, 1, ?)";

#[tokio::test]
async fn a_wrong_type_in_a_column_is_an_error_not_a_panic() {
    check(
        &["UPDATE apps SET created_ms = 'yesterday'"],
        Read::Apps,
        r#"decoding column "created_ms": mismatched types"#,
    )
    .await;
    // A tuple read names the column by its position.
    check(
        &["UPDATE teams SET created_ms = 'yesterday'"],
        Read::Teams,
        "decoding column 1: mismatched types",
    )
    .await;
}

#[tokio::test]
async fn unknown_words_are_unreadable() {
    check(
        &["INSERT INTO app_grants (app_id, user_id, env, level) VALUES (1, 1, 'prd', 'owner')"],
        Read::Grants,
        r#"the grant of web to dana in prd is unreadable: unknown level "owner""#,
    )
    .await;
    check(
        &["UPDATE roles SET capabilities = 'fly'"],
        Read::Roles,
        r#"role developer is unreadable: unknown capability "fly""#,
    )
    .await;
}

#[tokio::test]
async fn numbers_out_of_the_records_range_are_unreadable_not_wrapped() {
    check(
        &["UPDATE environments SET position = -1"],
        Read::Environments,
        "environment prd is unreadable: position -1 is out of range",
    )
    .await;
    check(
        &["UPDATE apps SET keep_releases = 5000000000"],
        Read::Apps,
        "application web is unreadable: keep_releases 5000000000 is out of range",
    )
    .await;
    check(
        &[
            "INSERT INTO releases (app_id, version, digest, manifest_blob, files, bytes, source,
               created_ms, created_by)
           VALUES (1, '1.0', 'd', 'm', -3, 10, '{}', 1, 'dana')",
        ],
        Read::Releases,
        "release web 1.0 is unreadable: files -3 is out of range",
    )
    .await;
    check(
        &[
            "INSERT INTO notification_channels (team_id, config, description, created_by,
                 created_ms)
             VALUES (1, '{}', 'webhook', 'dana', 1)",
            "INSERT INTO notification_deliveries (channel_id, team_id, event, message, status,
                 attempts, next_attempt_ms, created_ms)
             VALUES (1, 1, 'incident.open', '{}', 'pending', -1, 1, 1)",
        ],
        Read::Delivery,
        "delivery 1 is unreadable: attempts -1 is out of range",
    )
    .await;
}

#[tokio::test]
async fn a_delivery_status_ferry_does_not_know_is_unreadable() {
    check(
        &[
            "INSERT INTO notification_channels (team_id, config, description, created_by,
                 created_ms)
             VALUES (1, '{}', 'webhook', 'dana', 1)",
            "INSERT INTO notification_deliveries (channel_id, team_id, event, message, status,
                 attempts, next_attempt_ms, created_ms)
             VALUES (1, 1, 'incident.open', '{}', 'lost', 0, 1, 1)",
        ],
        Read::Delivery,
        r#"delivery 1 is unreadable: unknown delivery status "lost": use pending, delivered or failed"#,
    )
    .await;
}

/// Regression: a rotation missing its shift read as a shift of zero, and an incident step
/// missing its actor as a step by nobody; both stored documents now have one strict shape.
#[tokio::test]
async fn stored_json_documents_with_a_missing_or_unknown_field_are_unreadable() {
    check(
        &[
            r#"INSERT INTO team_support (team_id, rotation, escalate_after_ms)
             VALUES (1, '{"members":["dana"],"start_ms":0}', 60000)"#,
        ],
        Read::TeamSupport,
        "the rotation of team shop is unreadable: missing field `shift_ms`",
    )
    .await;
    check(
        &[
            r#"INSERT INTO team_support (team_id, rotation, escalate_after_ms)
             VALUES (1, '{"members":["dana"],"shift_ms":1,"start_ms":0,"timezone":"UTC"}', 60000)"#,
        ],
        Read::TeamSupport,
        "the rotation of team shop is unreadable: unknown field `timezone`",
    )
    .await;
    let incident = INCIDENT.replace('?', r#"'[{"at_ms":1,"what":"opened"}]'"#);
    check(
        &[&incident],
        Read::Incidents,
        "incident 1 is unreadable: history: missing field `actor`",
    )
    .await;
    let incident = INCIDENT.replace('?', r#"'{"at_ms":1}'"#);
    check(
        &[&incident],
        Read::Incidents,
        "incident 1 is unreadable: history: invalid type: map, expected a sequence",
    )
    .await;
}
