//! The permission matrix: every operation of the API, as every built-in role, in every
//! environment it takes, against the table below. An operation of the OpenAPI document
//! without a row fails, and so does a row whose operation is gone.
//!
//! An answer is *allowed* unless it is 401 or 403: 2xx, or 404, 409 or 422 from what the
//! handler checks after permission. It is *denied* when it is 403. Each request is built so
//! that an allowed call changes nothing: it names something missing, something that exists
//! already, or a deployment that conflicts, and the handler asks for permission before it
//! finds out. The whole run must leave the audit trail as it was.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deployments::{release, site, start_agent};
use crate::harness::{audit_len, Agent, Server};

/// The built-in roles, in the order of a grid's columns.
const ROLES: [&str; 6] = [
    "viewer",
    "support",
    "developer",
    "lead",
    "release-manager",
    "admin",
];

/// Every environment of the default pipeline.
const ALL: &[&str] = &["dev", "pp", "prd"];
/// The operation takes no environment.
const NONE: &[&str] = &[];
/// Environments something is promoted to: nothing comes before dev.
const PROMOTED_TO: &[&str] = &["pp", "prd"];

/// One operation, or one flavour of it (`variant`), and who may call it.
///
/// A grid has a column per role of `ROLES`, twice: first as the user's role in team `shop`
/// (their default role is viewer), then as the user's default role (a member of `shop`
/// without an override; the last column is the first admin, who is in no team). Mismatches
/// name them `shop:ROLE` and `default:ROLE`. `y` is allowed, `-` denied, in each
/// environment of `envs`: built-in roles hold one level in all of them.
///
/// The request: `send` is the path (and query), `body` the JSON sent, if any. Placeholders:
/// `{app}` and `{team}` (web of shop), `{env}`, `{previous}` (the environment before it),
/// `{target}` (an enrolled target there), `{done}` (a finished deployment of web there),
/// `{waiting}` (one awaiting approval there) and `{token}` (the caller's own token).
struct Row {
    op: &'static str,
    variant: &'static str,
    envs: &'static [&'static str],
    expect: Expect,
    send: &'static str,
    body: &'static str,
}

enum Expect {
    /// A user operation: who may, as a grid.
    Grid(&'static str),
    /// An agent operation: every user token is answered with one of these.
    Refused(&'static [u16]),
}

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Grid columns: viewer support developer lead release-manager admin, in shop │ as default.
    // Anyone with a token: who they are, and lists filtered to what they may see.
    user("GET /api/v1/me", "", NONE, "yyyyyy yyyyyy", "/api/v1/me", ""),
    user("GET /api/v1/teams", "", NONE, "yyyyyy yyyyyy", "/api/v1/teams", ""),
    user("GET /api/v1/users", "", NONE, "yyyyyy yyyyyy", "/api/v1/users", ""),
    user("GET /api/v1/roles", "", NONE, "yyyyyy yyyyyy", "/api/v1/roles", ""),
    user("GET /api/v1/environments", "", NONE, "yyyyyy yyyyyy", "/api/v1/environments", ""),
    user("GET /api/v1/targets", "", NONE, "yyyyyy yyyyyy", "/api/v1/targets", ""),
    user("GET /api/v1/apps", "", NONE, "yyyyyy yyyyyy", "/api/v1/apps", ""),
    user("GET /api/v1/deployments", "", NONE, "yyyyyy yyyyyy", "/api/v1/deployments", ""),
    user("GET /api/v1/deployments", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/deployments?app={app}", ""),
    user("GET /api/v1/status", "", NONE, "yyyyyy yyyyyy", "/api/v1/status", ""),
    user("GET /api/v1/status", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/status?app={app}", ""),
    user("GET /api/v1/drift", "", NONE, "yyyyyy yyyyyy", "/api/v1/drift", ""),
    user("GET /api/v1/drift", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/drift?app={app}", ""),
    // Anyone who sees the app may ask its agents to check; a target that does not run it
    // asks none.
    user("POST /api/v1/drift/check", "", NONE, "yyyyyy yyyyyy", "/api/v1/drift/check",
        r#"{"app": "{app}", "target": "nowhere-1"}"#),
    // Capturing hand edits creates a release and deploys it: both rights, in the target's
    // environment. The target runs nothing, which is found after permission.
    user("POST /api/v1/drift/capture", "", ALL, "--yyyy --yyyy", "/api/v1/drift/capture",
        r#"{"target": "{target}", "app": "{app}", "version": "9.9.9"}"#),
    // Reverting hand edits: deploy level in the target's environment; the target runs
    // nothing, which is found after permission.
    user("POST /api/v1/drift/revert", "", ALL, "--yyyy --yyyy", "/api/v1/drift/revert",
        r#"{"target": "{target}", "app": "{app}"}"#),
    user("GET /api/v1/tasks/{id}", "", NONE, "yyyyyy yyyyyy", "/api/v1/tasks/999999", ""),
    // Backups of application data: lists filtered to what the caller may see; a missing
    // backup is missing to everyone (who may restore an existing one: tests/it/backups.rs).
    user("GET /api/v1/backups", "", NONE, "yyyyyy yyyyyy", "/api/v1/backups", ""),
    user("GET /api/v1/backups", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/backups?app={app}", ""),
    user("GET /api/v1/backups/{id}", "", NONE, "yyyyyy yyyyyy", "/api/v1/backups/999999", ""),
    user("POST /api/v1/backups/{id}/restore", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/backups/999999/restore", "{}"),
    user("GET /api/v1/backups/{id}/manifest", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/backups/999999/manifest", ""),
    user("POST /api/v1/backups/{id}/blobs/fetch", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/backups/999999/blobs/fetch", r#"{"hashes": []}"#),
    // Taking one: deploy level in the environment; a target that does not run the app is
    // asked nothing.
    user("POST /api/v1/backups", "", ALL, "--yyyy --yyyy", "/api/v1/backups",
        r#"{"app": "{app}", "env": "{env}", "target": "nowhere-1"}"#),
    user("GET /api/v1/audit/verify", "", NONE, "yyyyyy yyyyyy", "/api/v1/audit/verify", ""),
    // Configuration: view level to see keys, deploy level to change them (unsetting a key
    // that is not set is refused after permission), admins alone read secrets back.
    user("GET /api/v1/apps/{app}/config/{env}", "", ALL, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/config/{env}", ""),
    user("GET /api/v1/apps/{app}/config/{env}", "reveal", ALL, "------ -----y",
        "/api/v1/apps/{app}/config/{env}?reveal=true", ""),
    user("POST /api/v1/apps/{app}/config/{env}", "", ALL, "--yyyy --yyyy",
        "/api/v1/apps/{app}/config/{env}", r#"{"unset": ["NOT_SET"]}"#),
    user("GET /api/v1/apps/{app}/config/{env}/history", "", ALL, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/config/{env}/history", ""),
    user("GET /api/v1/apps/{app}/config/{env}/compare", "", ALL, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/config/{env}/compare?with=dev", ""),
    // Applying: deploy level; nothing runs there, which is found after permission.
    user("POST /api/v1/apps/{app}/config/{env}/apply", "", ALL, "--yyyy --yyyy",
        "/api/v1/apps/{app}/config/{env}/apply", "{}"),

    // Organisation-wide, decided by the default role: admin, or change-policy.
    user("POST /api/v1/teams", "", NONE, "------ -----y",
        "/api/v1/teams", r#"{"name": "shop"}"#),
    user("POST /api/v1/users", "", NONE, "------ -----y",
        "/api/v1/users", r#"{"name": "shop-viewer"}"#),
    // Another user's token (one's own is anyone's to rotate: revocation.rs), and who is
    // disabled: admins only.
    user("POST /api/v1/users/{name}/token", "", NONE, "------ -----y",
        "/api/v1/users/no-such-user/token", ""),
    user("PUT /api/v1/users/{name}/password", "", NONE, "------ -----y",
        "/api/v1/users/no-such-user/password", r#"{"password": "long enough to pass"}"#),
    user("POST /api/v1/users/{name}/disable", "", NONE, "------ -----y",
        "/api/v1/users/no-such-user/disable", ""),
    user("POST /api/v1/users/{name}/enable", "", NONE, "------ -----y",
        "/api/v1/users/no-such-user/enable", ""),
    user("PUT /api/v1/roles/{name}/levels", "", ALL, "------ -----y",
        "/api/v1/roles/no-such-role/levels", r#"{"env": "{env}", "level": "view"}"#),
    user("POST /api/v1/admin/fsck", "", NONE, "------ -----y", "/api/v1/admin/fsck", ""),
    user("POST /api/v1/environments", "", NONE, "------ ----yy",
        "/api/v1/environments", r#"{"name": "dev", "after": "pp"}"#),
    user("PATCH /api/v1/environments/{name}", "", ALL, "------ ----yy",
        "/api/v1/environments/{env}", r#"{"unfreeze": ["0 0 1 1 * 1m"]}"#),
    user("DELETE /api/v1/environments/{name}", "", NONE, "------ ----yy", "/api/v1/environments/no-such-env", ""),
    user("POST /api/v1/environments/{name}/rename", "", NONE, "------ ----yy",
        "/api/v1/environments/no-such-env/rename", r#"{"to": "uat"}"#),
    user("POST /api/v1/environments/{name}/freeze", "", NONE, "------ ----yy",
        "/api/v1/environments/no-such-env/freeze", r#"{"for": "1h", "reason": "x"}"#),
    user("POST /api/v1/environments/{name}/unfreeze", "", NONE, "------ ----yy",
        "/api/v1/environments/no-such-env/unfreeze", "{}"),
    user("POST /api/v1/targets/enroll", "", ALL, "------ ----yy",
        "/api/v1/targets/enroll", r#"{"env": "{env}", "name": "{target}"}"#),
    user("DELETE /api/v1/targets/{name}", "", NONE, "------ ----yy", "/api/v1/targets/no-such-target", ""),
    user("GET /api/v1/audit", "whole trail", NONE, "------ ----yy", "/api/v1/audit?limit=1", ""),

    // Seeing the team's applications: every role of the team.
    user("GET /api/v1/audit", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/audit?app={app}&limit=1", ""),
    user("GET /api/v1/apps/{name}", "", NONE, "yyyyyy yyyyyy", "/api/v1/apps/{app}", ""),
    user("GET /api/v1/apps/{app}/releases", "", NONE, "yyyyyy yyyyyy", "/api/v1/apps/{app}/releases", ""),
    user("GET /api/v1/apps/{app}/releases/{version}", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/releases/1.0.0", ""),
    user("GET /api/v1/apps/{app}/releases/{version}/manifest", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/releases/1.0.0/manifest", ""),
    user("GET /api/v1/apps/{app}/releases/{from}/diff/{to}", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/releases/1.0.0/diff/1.0.1", ""),
    user("POST /api/v1/apps/{app}/blobs/fetch", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/apps/{app}/blobs/fetch", r#"{"hashes": []}"#),
    user("GET /api/v1/deployments/{id}", "", ALL, "yyyyyy yyyyyy", "/api/v1/deployments/{done}", ""),
    user("GET /api/v1/deployments/{id}/logs", "", ALL, "yyyyyy yyyyyy",
        "/api/v1/deployments/{done}/logs", ""),

    // Making applications and releases: a role that can deploy somewhere.
    user("POST /api/v1/apps", "", NONE, "--yyyy --yyyy",
        "/api/v1/apps", r#"{"name": "web", "team": "{team}"}"#),
    user("POST /api/v1/apps/{app}/blobs/missing", "", NONE, "--yyyy --yyyy",
        "/api/v1/apps/{app}/blobs/missing", r#"{"hashes": []}"#),
    user("POST /api/v1/apps/{app}/blobs", "", NONE, "--yyyy --yyyy", "/api/v1/apps/{app}/blobs", ""),
    user("POST /api/v1/apps/{app}/releases", "", NONE, "--yyyy --yyyy", "/api/v1/apps/{app}/releases",
        r#"{"version": "0.0.0-none", "manifest": {"entries": []}, "source": {"kind": "directory", "path": "none"}}"#),
    user("POST /api/v1/apps/{app}/prune", "", NONE, "--yyyy --yyyy", "/api/v1/apps/{app}/prune", ""),

    // Deploying: the deploy level in the environment; break-glass needs admin there.
    user("POST /api/v1/apps/{app}/deployments", "", ALL, "--yyyy --yyyy",
        "/api/v1/apps/{app}/deployments", r#"{"version": "0.0.0-none", "env": "{env}"}"#),
    user("POST /api/v1/apps/{app}/deployments", "break-glass", ALL, "-----y -----y",
        "/api/v1/apps/{app}/deployments",
        r#"{"version": "1.0.0", "env": "{env}", "break_glass": true, "reason": "matrix"}"#),
    user("POST /api/v1/apps/{app}/rollbacks", "", ALL, "--yyyy --yyyy",
        "/api/v1/apps/{app}/rollbacks", r#"{"env": "{env}", "to": "0.0.0-none"}"#),
    user("POST /api/v1/apps/{app}/promotions", "", PROMOTED_TO, "--yyyy --yyyy",
        "/api/v1/apps/{app}/promotions", r#"{"from": "{previous}", "to": "{env}"}"#),

    // Approving and placing: the approve level in the environment.
    user("POST /api/v1/deployments/{id}/approve", "", ALL, "---yyy ---yyy",
        "/api/v1/deployments/{waiting}/approve", r#"{"version": "0.0.0-none"}"#),
    // Cancelling: the deploy level that started it (a finished one is refused after that).
    user("POST /api/v1/deployments/{id}/cancel", "", ALL, "--yyyy --yyyy",
        "/api/v1/deployments/{done}/cancel", r#"{"reason": "matrix"}"#),
    user("POST /api/v1/deployments/{id}/reject", "", ALL, "---yyy ---yyy",
        "/api/v1/deployments/{done}/reject", r#"{"reason": "matrix"}"#),
    user("PUT /api/v1/apps/{app}/placement", "", ALL, "---yyy ---yyy",
        "/api/v1/apps/{app}/placement", r#"{"env": "{env}", "targets": ["no-such-target"]}"#),

    // Per-app grants: the team's lead or an admin, and no one grants more than they hold.
    user("GET /api/v1/apps/{name}/grants", "", NONE, "yyyyyy yyyyyy", "/api/v1/apps/{app}/grants", ""),
    user("PUT /api/v1/apps/{name}/grants", "", ALL, "---y-y ---y-y",
        "/api/v1/apps/{app}/grants", r#"{"user": "no-such-user", "env": "{env}", "level": "view"}"#),
    user("PUT /api/v1/apps/{name}/grants", "admin level, above a lead's", ALL, "-----y -----y",
        "/api/v1/apps/{app}/grants", r#"{"user": "no-such-user", "env": "{env}", "level": "admin"}"#),

    // Team membership: the team's lead (up to their own role) or an admin.
    user("GET /api/v1/teams/{team}/members", "", NONE, "yyyyyy yyyyyy", "/api/v1/teams/{team}/members", ""),
    user("PUT /api/v1/teams/{team}/members/{user}", "", NONE, "---y-y ---y-y",
        "/api/v1/teams/{team}/members/no-such-user", r#"{"role": "viewer"}"#),
    user("DELETE /api/v1/teams/{team}/members/{user}", "", NONE, "---y-y ---y-y",
        "/api/v1/teams/{team}/members/no-such-user", ""),

    // Notification channels: the team sees them and their deliveries; its lead or an admin
    // changes and tests them.
    user("GET /api/v1/teams/{team}/channels", "", NONE, "yyyyyy yyyyyy", "/api/v1/teams/{team}/channels", ""),
    user("POST /api/v1/teams/{team}/channels", "", NONE, "---y-y ---y-y", "/api/v1/teams/{team}/channels",
        r#"{"kind": "webhook", "url": "ftp://example.com/matrix", "secret": "short"}"#),
    user("POST /api/v1/teams/{team}/channels", "to private addresses", NONE, "------ -----y",
        "/api/v1/teams/{team}/channels",
        r#"{"kind": "webhook", "url": "http://127.0.0.1/matrix", "secret": "short", "allow_private": true}"#),
    user("DELETE /api/v1/teams/{team}/channels/{id}", "", NONE, "---y-y ---y-y",
        "/api/v1/teams/{team}/channels/999999", ""),
    user("POST /api/v1/teams/{team}/channels/{id}/test", "", NONE, "---y-y ---y-y",
        "/api/v1/teams/{team}/channels/999999/test", ""),
    user("GET /api/v1/teams/{team}/deliveries", "", NONE, "yyyyyy yyyyyy", "/api/v1/teams/{team}/deliveries", ""),
    user("GET /api/v1/teams/{team}/deliveries/{id}", "", NONE, "yyyyyy yyyyyy",
        "/api/v1/teams/{team}/deliveries/999999", ""),

    // Support: incidents need the support role or higher in the team; `{incident}` is a
    // resolved one, so acknowledging or resolving it again is refused after permission.
    user("GET /api/v1/incidents", "", NONE, "yyyyyy yyyyyy", "/api/v1/incidents?all=true", ""),
    user("GET /api/v1/incidents", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/incidents?app={app}", ""),
    user("POST /api/v1/incidents", "", NONE, "-yyyyy -yyyyy", "/api/v1/incidents",
        r#"{"app": "{app}", "env": "nowhere", "severity": "low", "title": "matrix"}"#),
    user("GET /api/v1/incidents/{id}", "", NONE, "yyyyyy yyyyyy", "/api/v1/incidents/{incident}", ""),
    user("POST /api/v1/incidents/{id}/ack", "", NONE, "-yyyyy -yyyyy", "/api/v1/incidents/{incident}/ack", "{}"),
    user("POST /api/v1/incidents/{id}/resolve", "", NONE, "-yyyyy -yyyyy",
        "/api/v1/incidents/{incident}/resolve", "{}"),
    user("POST /api/v1/incidents/{id}/hotfix", "", NONE, "--yyyy --yyyy", "/api/v1/incidents/{incident}/hotfix", ""),
    user("GET /api/v1/backlog", "", NONE, "yyyyyy yyyyyy", "/api/v1/backlog", ""),
    user("GET /api/v1/backlog", "one app", NONE, "yyyyyy yyyyyy", "/api/v1/backlog?app={app}", ""),
    user("GET /api/v1/backports", "", NONE, "yyyyyy yyyyyy", "/api/v1/backports?app={app}", ""),
    // No obligation exists here, so every caller gets 404 first; support.rs tests who may waive.
    user("POST /api/v1/backports/{id}/waive", "", NONE, "yyyyyy yyyyyy", "/api/v1/backports/999999/waive",
        r#"{"reason": "matrix"}"#),
    user("GET /api/v1/teams/{team}/support", "", NONE, "yyyyyy yyyyyy", "/api/v1/teams/{team}/support", ""),
    user("PUT /api/v1/teams/{team}/support", "", NONE, "---y-y ---y-y", "/api/v1/teams/{team}/support",
        r#"{"members": ["no-such-user"]}"#),
    user("PUT /api/v1/apps/{name}/maintainer", "", NONE, "---y-y ---y-y", "/api/v1/apps/{app}/maintainer",
        r#"{"team": "no-such-team"}"#),
    user("PATCH /api/v1/apps/{name}", "", NONE, "---y-y ---y-y", "/api/v1/apps/{app}", r#"{"keep": 10}"#),
    user("GET /api/v1/routes", "", NONE, "yyyyyy yyyyyy", "/api/v1/routes", ""),
    user("PUT /api/v1/routes", "", NONE, "------ ----yy", "/api/v1/routes",
        r#"{"category": "matrix", "team": "no-such-team"}"#),
    user("DELETE /api/v1/routes/{category}", "", NONE, "------ ----yy", "/api/v1/routes/no-such-category", ""),

    // Agents: their credential, never a user's token (enrollment takes a one-time token;
    // past ten failed enrollments a minute from one address, 429).
    agent("POST /api/v1/agent/enroll", &[401, 403, 422, 429], "/api/v1/agent/enroll", r#"{"token": "{token}"}"#),
    agent("GET /api/v1/agent/desired", &[401, 403], "/api/v1/agent/desired", ""),
    agent("POST /api/v1/agent/heartbeat", &[401, 403], "/api/v1/agent/heartbeat", ""),
    agent("GET /api/v1/agent/manifest/{app}/{version}", &[401, 403], "/api/v1/agent/manifest/{app}/1.0.0", ""),
    agent("GET /api/v1/agent/apps/{app}/config/{revision}", &[401, 403], "/api/v1/agent/apps/{app}/config/1", ""),
    agent("POST /api/v1/agent/blobs/fetch", &[401, 403], "/api/v1/agent/blobs/fetch", r#"{"hashes": []}"#),
    agent("POST /api/v1/agent/report", &[401, 403], "/api/v1/agent/report",
        r#"{"app": "{app}", "deployment": 1, "outcome": "succeeded"}"#),
    agent("POST /api/v1/agent/drift", &[401, 403], "/api/v1/agent/drift",
        r#"{"app": "{app}", "version": "1.0.0", "paths": []}"#),
    agent("POST /api/v1/agent/tasks/{id}", &[401, 403], "/api/v1/agent/tasks/999999",
        r#"{"outcome": "succeeded", "message": "done"}"#),
    agent("POST /api/v1/agent/captures", &[401, 403], "/api/v1/agent/captures",
        r#"{"task": 999999, "app": "{app}", "version": "9.9.9", "hotfix_of": "1.0.0", "manifest": {"entries": []}}"#),
    agent("POST /api/v1/agent/apps/{app}/blobs/missing", &[401, 403],
        "/api/v1/agent/apps/{app}/blobs/missing", r#"{"hashes": []}"#),
    agent("POST /api/v1/agent/apps/{app}/blobs", &[401, 403], "/api/v1/agent/apps/{app}/blobs", ""),
    agent("POST /api/v1/agent/backups", &[401, 403], "/api/v1/agent/backups",
        r#"{"app": "{app}", "reason": "on_demand", "paths": [], "digest": "", "manifest_blob": "", "new_bytes": 0}"#),
];

const fn user(
    op: &'static str,
    variant: &'static str,
    envs: &'static [&'static str],
    grid: &'static str,
    send: &'static str,
    body: &'static str,
) -> Row {
    Row {
        op,
        variant,
        envs,
        expect: Expect::Grid(grid),
        send,
        body,
    }
}

const fn agent(
    op: &'static str,
    refused: &'static [u16],
    send: &'static str,
    body: &'static str,
) -> Row {
    Row {
        op,
        variant: "",
        envs: NONE,
        expect: Expect::Refused(refused),
        send,
        body,
    }
}

/// Listings that must not name team `other` or its application to anyone outside it.
const LISTINGS: [&str; 7] = [
    "/api/v1/teams",
    "/api/v1/users",
    "/api/v1/apps",
    "/api/v1/deployments",
    "/api/v1/status",
    "/api/v1/drift",
    "/api/v1/backups",
];

#[test]
fn every_api_operation_has_a_row() {
    let server = Server::start();
    let http = Http::new(&server.url);
    let (status, text) = http.send("GET", "/api/v1/openapi.json", "", &server.admin_token);
    assert_eq!(status, 200, "{text}");
    let openapi: Value = serde_json::from_str(&text).unwrap();
    let documented: BTreeSet<String> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|method| {
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str())
                })
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let tabled: BTreeSet<String> = TABLE.iter().map(|row| row.op.to_owned()).collect();
    let missing: Vec<&String> = documented.difference(&tabled).collect();
    let stale: Vec<&String> = tabled.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the permission table does not match /api/v1/openapi.json:\n\
         operations without a row (add one to TABLE in matrix.rs): {missing:#?}\n\
         rows for operations that no longer exist: {stale:#?}"
    );
}

#[test]
fn every_role_gets_what_the_table_says_and_nothing_of_other_teams() {
    for row in TABLE {
        if let Expect::Grid(grid) = row.expect {
            assert_eq!(
                columns(grid).len(),
                2 * ROLES.len(),
                "{}: grid {grid:?}",
                row.op
            );
        }
    }
    let world = World::build();
    let events_before = world.settled_audit_len();
    let mut problems = Vec::new();
    let checked = world.check_table(&mut problems);
    let probed = world.check_no_leaks(&mut problems);
    problems.extend(world.events_since(events_before));
    eprintln!("permission matrix: {checked} checks, {probed} leak probes");
    assert!(
        problems.is_empty(),
        "{} problems in the permission matrix:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Who calls: one per column of a grid.
struct Principal {
    label: String,
    token: String,
    /// Administers everything, so sees team `other` by design.
    admin: bool,
}

/// One environment's ready-made state.
struct EnvState {
    name: &'static str,
    previous: Option<&'static str>,
    target: String,
    done: String,
    waiting: String,
}

/// A server with teams `shop` (app `web`) and `other` (app `secret`), a real agent per
/// environment, releases 1.0.0 and 1.0.1 of web, web 1.0.0 live in dev and pp, and in every
/// environment a finished deployment and one awaiting approval.
struct World {
    server: Server,
    http: Http,
    _agents: Vec<Agent>,
    envs: Vec<EnvState>,
    principals: Vec<Principal>,
    /// A deployment of `secret`.
    secret_deployment: String,
    /// The hash of a file only `secret`'s release has.
    secret_blob: String,
    /// A resolved incident of web, and one of secret.
    incident: String,
    secret_incident: String,
}

impl World {
    fn build() -> World {
        let server = Server::start();
        for team in ["shop", "other"] {
            server.admin(&["team", "create", team]).success();
        }
        for (app, team) in [("web", "shop"), ("secret", "other")] {
            server
                .admin(&["app", "create", app, "--team", team])
                .success();
        }
        let agents: Vec<Agent> = ALL
            .iter()
            .map(|env| start_agent(&server, env, &format!("t-{env}")))
            .collect();
        release(&server, "1.0.0", "");
        release(&server, "1.0.1", "");
        let secret_site = site(server.dir.path(), "secret", "");
        let secret_path = secret_site.to_str().unwrap();
        server
            .admin(&[
                "release",
                "create",
                "secret",
                "1.0.0",
                "--from",
                secret_path,
            ])
            .success();
        let secret_blob = blake3::hash(b"<h1>secret</h1>\n").to_hex().to_string();

        let deploy = |app: &str, env: &str, expected: &str| {
            let mut args = vec!["deploy", app, "1.0.0", "--to", env, "--json"];
            if expected == "succeeded" {
                args.push("--wait");
            }
            let asked = server.admin(&args).success().json();
            assert_eq!(asked["status"], expected, "deploy {app} to {env}: {asked}");
            asked["id"].to_string()
        };
        let done_dev = deploy("web", "dev", "succeeded");
        let done_pp = deploy("web", "pp", "succeeded");
        let secret_deployment = deploy("secret", "dev", "succeeded");
        let done_prd = deploy("web", "prd", "awaiting_approval");
        server
            .admin(&["reject", &done_prd, "--reason", "matrix setup"])
            .success();
        for env in ["dev", "pp"] {
            server
                .admin(&["env", "set", env, "--approvals", "1"])
                .success();
        }
        let envs = ALL
            .iter()
            .zip([done_dev, done_pp, done_prd])
            .enumerate()
            .map(|(i, (&name, done))| EnvState {
                name,
                previous: i.checked_sub(1).map(|p| ALL[p]),
                target: format!("t-{name}"),
                done,
                waiting: deploy("web", name, "awaiting_approval"),
            })
            .collect();

        let mut principals: Vec<Principal> = ROLES
            .iter()
            .map(|role| Principal {
                label: format!("shop:{role}"),
                token: server.create_user(
                    &format!("shop-{role}"),
                    "viewer",
                    &[&format!("shop:{role}")],
                ),
                admin: false,
            })
            .collect();
        for role in &ROLES[..ROLES.len() - 1] {
            principals.push(Principal {
                label: format!("default:{role}"),
                token: server.create_user(&format!("role-{role}"), role, &["shop"]),
                admin: false,
            });
        }
        principals.push(Principal {
            label: "default:admin".to_owned(),
            token: server.admin_token.clone(),
            admin: true,
        });
        server.create_user("other-developer", "viewer", &["other:developer"]);
        let resolved_incident = |app: &str| {
            let opened = server
                .admin(&[
                    "incident",
                    "open",
                    app,
                    "--env",
                    "dev",
                    "--severity",
                    "low",
                    "--title",
                    "matrix",
                    "--json",
                ])
                .success()
                .json();
            let id = opened["id"].to_string();
            server.admin(&["incident", "resolve", &id]).success();
            id
        };
        let incident = resolved_incident("web");
        let secret_incident = resolved_incident("secret");

        World {
            http: Http::new(&server.url),
            server,
            _agents: agents,
            envs,
            principals,
            secret_deployment,
            secret_blob,
            incident,
            secret_incident,
        }
    }

    /// The number of audit events once the agents have stopped reporting on the setup.
    fn settled_audit_len(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = audit_len(&self.server);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = audit_len(&self.server);
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "the audit trail never settled");
            last = now;
        }
    }

    /// Each audit event written after the first `before`, as a problem: the matrix must
    /// change nothing.
    fn events_since(&self, before: usize) -> Vec<String> {
        let events = self.server.admin(&["audit", "--json"]).success().json();
        events.as_array().unwrap()[before..]
            .iter()
            // A refusal is recorded, and changes nothing.
            .filter(|e| e["action"] != "refused")
            .map(|e| {
                let (actor, action, subject) = (&e["actor"], &e["action"], &e["subject"]);
                format!(
                    "the matrix changed something: {actor} wrote audit event {action} {subject}"
                )
            })
            .collect()
    }

    /// Every row, as every principal, in every environment of the row. Returns the number
    /// of requests.
    fn check_table(&self, problems: &mut Vec<String>) -> usize {
        let mut checked = 0;
        for row in TABLE {
            for env in self.envs_of(row) {
                for (column, who) in self.principals.iter().enumerate() {
                    let (status, text) = self.call(row, env, who, false);
                    checked += 1;
                    let (expected, agreed) = match row.expect {
                        Expect::Grid(grid) => {
                            let allowed = columns(grid)[column] == 'y';
                            let got = match status {
                                403 => Some(false),
                                401 | 500.. => None,
                                _ => Some(true),
                            };
                            (
                                if allowed { "allowed" } else { "denied" },
                                got == Some(allowed),
                            )
                        }
                        Expect::Refused(statuses) => ("refused", statuses.contains(&status)),
                    };
                    if !agreed {
                        problems.push(format!(
                            "{} as {}: expected {expected}, got {status} {}",
                            describe(row, env),
                            who.label,
                            brief(&text)
                        ));
                    }
                }
            }
        }
        checked
    }

    /// Team `other` is invisible to members of `shop`: every request about `secret` (its
    /// name, its deployments, its team) is 404 or 403, listings never name it, and its
    /// content cannot be read through `web`. Returns the number of requests.
    fn check_no_leaks(&self, problems: &mut Vec<String>) -> usize {
        let about_an_app: Vec<&Row> = TABLE
            .iter()
            .filter(|row| matches!(row.expect, Expect::Grid(_)))
            .filter(|row| {
                ["{app}", "{team}", "{done}", "{waiting}", "{incident}"]
                    .iter()
                    .any(|p| row.send.contains(p) || row.body.contains(p))
            })
            .collect();
        let secret_content = format!(r#"{{"hashes": ["{}"]}}"#, self.secret_blob);
        let mut probed = 0;
        for who in self.principals.iter().filter(|who| !who.admin) {
            let mut leak = |what: String, status: u16, text: &str| {
                problems.push(format!(
                    "leak: {what} as {}: got {status} {}",
                    who.label,
                    brief(text)
                ));
            };
            for row in &about_an_app {
                for env in self.envs_of(row) {
                    let (status, text) = self.call(row, env, who, true);
                    probed += 1;
                    if status != 403 && status != 404 {
                        leak(
                            format!("{} about secret, expected 403 or 404,", describe(row, env)),
                            status,
                            &text,
                        );
                    }
                }
            }
            for listing in LISTINGS {
                let (status, text) = self.http.send("GET", listing, "", &who.token);
                probed += 1;
                if text.contains("secret") || text.contains("\"other\"") {
                    leak(
                        format!("GET {listing} names team other or its app"),
                        status,
                        &text,
                    );
                }
            }
            let (status, text) = self.http.send(
                "POST",
                "/api/v1/apps/web/blobs/fetch",
                &secret_content,
                &who.token,
            );
            probed += 1;
            if status != 404 {
                leak(
                    "POST /api/v1/apps/web/blobs/fetch of a file only secret's release has, expected 404,".to_owned(),
                    status,
                    &text,
                );
            }
        }
        probed
    }

    /// The environments a row runs in; `None` once for a row that takes none.
    fn envs_of(&self, row: &Row) -> Vec<Option<&EnvState>> {
        if row.envs.is_empty() {
            return vec![None];
        }
        row.envs
            .iter()
            .map(|name| Some(self.envs.iter().find(|e| e.name == *name).unwrap()))
            .collect()
    }

    /// Sends a row's request as `who`, about web (or, `foreign`, about secret).
    fn call(
        &self,
        row: &Row,
        env: Option<&EnvState>,
        who: &Principal,
        foreign: bool,
    ) -> (u16, String) {
        let (app, team) = if foreign {
            ("secret", "other")
        } else {
            ("web", "shop")
        };
        let incident = if foreign {
            &self.secret_incident
        } else {
            &self.incident
        };
        let mut vars = vec![
            ("app", app),
            ("team", team),
            ("token", who.token.as_str()),
            ("incident", incident.as_str()),
        ];
        if let Some(env) = env {
            let (done, waiting) = if foreign {
                (&self.secret_deployment, &self.secret_deployment)
            } else {
                (&env.done, &env.waiting)
            };
            vars.extend([
                ("env", env.name),
                ("target", env.target.as_str()),
                ("done", done.as_str()),
                ("waiting", waiting.as_str()),
            ]);
            vars.extend(env.previous.map(|previous| ("previous", previous)));
        }
        let method = row.op.split_once(' ').unwrap().0;
        self.http.send(
            method,
            &fill(row.send, &vars),
            &fill(row.body, &vars),
            &who.token,
        )
    }
}

/// A grid's columns, without the spaces that group them.
fn columns(grid: &str) -> Vec<char> {
    let columns: Vec<char> = grid.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(
        columns.iter().all(|c| matches!(c, 'y' | '-')),
        "grid {grid:?}: use y or -"
    );
    columns
}

/// Replaces each `{name}` of `vars` in `template`; a placeholder left over is a table error.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut text = template.to_owned();
    for (name, value) in vars {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    let leftover = text.split('{').skip(1).find_map(|rest| {
        let (name, _) = rest.split_once('}')?;
        let is_placeholder = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase());
        is_placeholder.then_some(name)
    });
    assert!(
        leftover.is_none(),
        "{template:?}: nothing fills the placeholder {leftover:?} here"
    );
    text
}

/// A row as a mismatch names it: operation, flavour, environment.
fn describe(row: &Row, env: Option<&EnvState>) -> String {
    let mut text = row.op.to_owned();
    if !row.variant.is_empty() {
        text += &format!(" ({})", row.variant);
    }
    if let Some(env) = env {
        text += &format!(" in {}", env.name);
    }
    text
}

/// The error message of an answer, or the start of its body.
fn brief(text: &str) -> String {
    let text = match serde_json::from_str::<Value>(text) {
        Ok(value) => value["error"]["message"]
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned),
        Err(_) => format!("({} bytes that are not JSON)", text.len()),
    };
    text.chars().take(200).collect()
}

/// Plain requests with a bearer token, answered as status and body.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(base: &str) -> Http {
        Http {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    fn send(&self, method: &str, path: &str, body: &str, token: &str) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }
}
