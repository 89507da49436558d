use crate::deployment::{Kind, Status};
use crate::incident::Severity;
use crate::support::{BackportMode, SupportPath};
use serde_json::json;

use super::*;
use crate::permission::Level;

fn record(action: &str, details: &str) -> AuditRecord {
    AuditRecord {
        at_ms: 1_800_000_000_000,
        actor: "dana".into(),
        action: action.into(),
        subject: "x/y".into(),
        app: Some("shop-web".into()),
        details: details.into(),
    }
}

/// Builds the record of `action`, checks it stores `name` and exactly the `details` text
/// ferry wrote before its actions were typed, and that it reads back as `action`.
fn check(action: AuditAction, name: &str, details: &str) {
    let built = action.record(1_800_000_000_000, "dana", "x/y".into(), Some("shop-web"));
    assert_eq!(built, record(name, details), "{action:?}");
    assert_eq!(AuditAction::parse(&built).as_ref(), Ok(&action), "{name}");
}

/// Reads a stored `details` document of `name` and checks it is `expected`.
fn check_stored(name: &str, details: &str, expected: AuditAction) {
    assert_eq!(
        AuditAction::parse(&record(name, details)),
        Ok(expected),
        "{name} {details}"
    );
}

fn deploy(version: &str) -> DeployChange {
    DeployChange {
        config: 0,
        version: version.into(),
        strategy: None,
        reason: None,
        allow_downgrade: false,
    }
}

fn requested<C>(change: C) -> DeploymentRequested<C> {
    DeploymentRequested {
        change,
        env: "prd".into(),
        override_guard: None,
        review: Vec::new(),
        break_glass: None,
        team: "shop".into(),
        skipped_offline: Vec::new(),
        skip_backup: None,
    }
}

fn rollback() -> RollbackChange {
    RollbackChange {
        from: "1.1".into(),
        to: "1.0".into(),
        reason: Some("broken".into()),
    }
}

fn guard_override() -> GuardOverride {
    GuardOverride {
        reason: "demo".into(),
        overridden: vec![OverriddenHotfix {
            hotfix_version: "1.0.1".into(),
            incident: Some(7),
            missing: vec!["checkout.js".into()],
        }],
    }
}

fn break_glass(kind: &str) -> BreakGlassUsed {
    BreakGlassUsed {
        kind: Kind::parse(kind).unwrap(),
        reason: "outage".into(),
        summary: "s".into(),
    }
}

/// One case per way ferry writes each action, with the text it stores.
fn cases() -> Vec<(AuditAction, &'static str, &'static str)> {
    use AuditAction as A;
    vec![
        (
            A::ServerBootstrap(ServerBootstrap {
                pipeline: vec!["dev".into(), "pp".into(), "prd".into()],
                admin: "admin".into(),
            }),
            "server.bootstrap",
            r#"{"admin":"admin","pipeline":["dev","pp","prd"]}"#,
        ),
        (A::TeamCreate(TeamCreate {}), "team.create", "{}"),
        (
            A::TeamMember(TeamMember::Set {
                user: "lee".into(),
                role: Some("lead".into()),
            }),
            "team.member",
            r#"{"role":"lead","user":"lee"}"#,
        ),
        (
            A::TeamMember(TeamMember::Set {
                user: "lee".into(),
                role: None,
            }),
            "team.member",
            r#"{"role":null,"user":"lee"}"#,
        ),
        (
            A::TeamMember(TeamMember::Removed { user: "lee".into() }),
            "team.member",
            r#"{"removed":true,"user":"lee"}"#,
        ),
        (
            A::TeamSupport(TeamSupport {
                members: Some(vec!["amy".into(), "bob".into()]),
                shift_ms: Some(604_800_000),
                start_ms: Some(5),
                escalate_after_ms: 900_000,
            }),
            "team.support",
            r#"{"escalate_after_ms":900000,"members":["amy","bob"],"shift_ms":604800000,"start_ms":5}"#,
        ),
        (
            A::TeamSupport(TeamSupport {
                members: None,
                shift_ms: None,
                start_ms: None,
                escalate_after_ms: 900_000,
            }),
            "team.support",
            r#"{"escalate_after_ms":900000,"members":null,"shift_ms":null,"start_ms":null}"#,
        ),
        (
            A::UserCreate(UserCreate {
                role: "developer".into(),
                teams: vec![
                    TeamRole {
                        team: "shop".into(),
                        role: Some("lead".into()),
                    },
                    TeamRole {
                        team: "ops".into(),
                        role: None,
                    },
                ],
            }),
            "user.create",
            r#"{"role":"developer","teams":[{"role":"lead","team":"shop"},{"role":null,"team":"ops"}]}"#,
        ),
        (
            A::RoleSetLevel(RoleSetLevel {
                env: "prd".into(),
                level: Level::Approve,
            }),
            "role.set-level",
            r#"{"env":"prd","level":"approve"}"#,
        ),
        (
            A::EnvironmentCreate(EnvironmentCreate {
                after: Some("pp".into()),
            }),
            "environment.create",
            r#"{"after":"pp"}"#,
        ),
        (
            A::EnvironmentDelete(EnvironmentDelete { position: 1 }),
            "environment.delete",
            r#"{"position":1}"#,
        ),
        (
            A::EnvironmentRename(EnvironmentRename { to: "uat".into() }),
            "environment.rename",
            r#"{"to":"uat"}"#,
        ),
        (
            A::EnvironmentSetPolicy(EnvironmentSetPolicy {
                approvals: None,
                self_approval: None,
                protected: None,
                optional: Some(true),
            }),
            "environment.set-policy",
            r#"{"approvals":null,"optional":true,"protected":null,"self_approval":null}"#,
        ),
        (
            A::EnvironmentSetPolicy(EnvironmentSetPolicy {
                approvals: Some(2),
                self_approval: None,
                protected: Some(true),
                optional: None,
            }),
            "environment.set-policy",
            r#"{"approvals":2,"protected":true,"self_approval":null}"#,
        ),
        (
            A::EnvironmentFreeze(FreezeWindow {
                window: "0 18 * * FRI 64h".into(),
            }),
            "environment.freeze",
            r#"{"window":"0 18 * * FRI 64h"}"#,
        ),
        (
            A::EnvironmentUnfreeze(FreezeWindow {
                window: "0 18 * * FRI 64h".into(),
            }),
            "environment.unfreeze",
            r#"{"window":"0 18 * * FRI 64h"}"#,
        ),
        (
            A::EnvironmentFreezeNow(FreezeNow {
                until_ms: 1_800_000_600_000,
                reason: "release night".into(),
                replaced_until_ms: None,
            }),
            "environment.freeze-now",
            r#"{"reason":"release night","until_ms":1800000600000}"#,
        ),
        (
            A::EnvironmentFreezeNow(FreezeNow {
                until_ms: 1_800_000_600_000,
                reason: "longer".into(),
                replaced_until_ms: Some(1_800_000_300_000),
            }),
            "environment.freeze-now",
            r#"{"reason":"longer","replaced_until_ms":1800000300000,"until_ms":1800000600000}"#,
        ),
        (
            A::EnvironmentUnfreezeNow(UnfreezeNow {
                until_ms: 1_800_000_600_000,
                frozen_for: "release night".into(),
                frozen_by: "anna".into(),
                reason: Some("done early".into()),
            }),
            "environment.unfreeze-now",
            r#"{"frozen_by":"anna","frozen_for":"release night","reason":"done early","until_ms":1800000600000}"#,
        ),
        (
            A::AppCreate(AppCreate {
                team: "shop".into(),
                keep: 10,
            }),
            "app.create",
            r#"{"keep":10,"team":"shop"}"#,
        ),
        (
            A::AppGrant(AppGrant {
                user: "dana".into(),
                env: "prd".into(),
                level: Level::Deploy,
            }),
            "app.grant",
            r#"{"env":"prd","level":"deploy","user":"dana"}"#,
        ),
        (
            A::AppPlace(AppPlace {
                env: "prd".into(),
                targets: vec!["prd-1".into(), "prd-2".into()],
            }),
            "app.place",
            r#"{"env":"prd","targets":["prd-1","prd-2"]}"#,
        ),
        (
            A::AppBackups(AppBackups {
                every: Some("24h".into()),
                keep: "7,7d,4w".into(),
            }),
            "app.backups",
            r#"{"every":"24h","keep":"7,7d,4w"}"#,
        ),
        (
            A::BackupRequest(BackupRequest {
                env: "prd".into(),
                task: 4,
            }),
            "backup.request",
            r#"{"env":"prd","task":4}"#,
        ),
        (
            A::BackupCreate(BackupCreate {
                env: "prd".into(),
                target: "prd-1".into(),
                reason: crate::app_backup::BackupReason::BeforeDeployment,
                version: Some("1.1".into()),
                digest: "ab".into(),
                files: 3,
                bytes: 300,
                new_bytes: 10,
            }),
            "backup.create",
            r#"{"bytes":300,"digest":"ab","env":"prd","files":3,"new_bytes":10,"reason":"before_deployment","target":"prd-1","version":"1.1"}"#,
        ),
        (
            A::BackupRestore(BackupRestore {
                target: "prd-1".into(),
                paths: vec!["uploads".into()],
                task: 5,
            }),
            "backup.restore",
            r#"{"paths":["uploads"],"target":"prd-1","task":5}"#,
        ),
        (
            A::BackupPrune(BackupPrune {
                removed: vec![4, 5],
                keep: "7d".into(),
            }),
            "backup.prune",
            r#"{"keep":"7d","removed":[4,5]}"#,
        ),
        (
            A::AppKeep(AppKeep { keep: 3, was: 10 }),
            "app.keep",
            r#"{"keep":3,"was":10}"#,
        ),
        (
            A::AppRunAs(AppRunAs {
                user: Some("shop".into()),
                was: None,
            }),
            "app.run-as",
            r#"{"user":"shop","was":null}"#,
        ),
        (
            A::AppMaintainer(AppMaintainer { maintainer: None }),
            "app.maintainer",
            r#"{"maintainer":null}"#,
        ),
        (
            A::TargetEnrollToken(TargetEnrollToken { env: "dev".into() }),
            "target.enroll-token",
            r#"{"env":"dev"}"#,
        ),
        (A::TargetEnroll(TargetEnroll {}), "target.enroll", "{}"),
        (
            A::DriftRevert(DriftRevert {
                env: "prd".into(),
                task: 8,
                version: "1.0.0".into(),
            }),
            "drift.revert",
            r#"{"env":"prd","task":8,"version":"1.0.0"}"#,
        ),
        (
            A::DriftCapture(DriftCapture {
                env: "prd".into(),
                task: 7,
                version: "1.0.1".into(),
                incident: Some(3),
            }),
            "drift.capture",
            r#"{"env":"prd","incident":3,"task":7,"version":"1.0.1"}"#,
        ),
        (
            A::DriftCaptured(DriftCaptured {
                target: "web-1".into(),
                env: "prd".into(),
                version: "1.0.1".into(),
                hotfix_of: "1.0".into(),
                added: 1,
                removed: 2,
                modified: 3,
            }),
            "drift.captured",
            r#"{"added":1,"env":"prd","hotfix_of":"1.0","modified":3,"removed":2,"target":"web-1","version":"1.0.1"}"#,
        ),
        (
            A::TargetRemove(TargetRemove { env: "dev".into() }),
            "target.remove",
            r#"{"env":"dev"}"#,
        ),
        (
            A::UserRotateToken(UserRotateToken {}),
            "user.rotate-token",
            "{}",
        ),
        (A::UserDisable(UserDisable {}), "user.disable", "{}"),
        (A::UserEnable(UserEnable {}), "user.enable", "{}"),
        (
            A::ReleaseCreate(ReleaseCreate {
                digest: "d1".into(),
                files: 3,
                bytes: 1024,
                source: json!({"kind": "dir", "path": "/src"}),
                hotfix_of: Some("1.0.0".into()),
                incident: Some(7),
                closes: vec![2],
                backports_done: vec![],
            }),
            "release.create",
            r#"{"backports_done":[],"bytes":1024,"closes":[2],"digest":"d1","files":3,"hotfix_of":"1.0.0","incident":7,"source":{"kind":"dir","path":"/src"}}"#,
        ),
        (
            A::ReleasePrune(ReleasePrune {
                removed: vec!["0.9".into()],
                keep: 5,
            }),
            "release.prune",
            r#"{"keep":5,"removed":["0.9"]}"#,
        ),
        (
            A::ChannelAdd(ChannelAdd {
                team: "shop".into(),
                kind: "webhook".into(),
                description: "webhook https://hooks.example/x".into(),
                allow_private: false,
            }),
            "channel.add",
            r#"{"description":"webhook https://hooks.example/x","kind":"webhook","team":"shop"}"#,
        ),
        (
            A::ChannelAdd(ChannelAdd {
                team: "shop".into(),
                kind: "webhook".into(),
                description: "webhook http://10.0.0.5/x".into(),
                allow_private: true,
            }),
            "channel.add",
            r#"{"allow_private":true,"description":"webhook http://10.0.0.5/x","kind":"webhook","team":"shop"}"#,
        ),
        (
            A::ChannelRemove(ChannelRemove {
                team: "shop".into(),
                channel: 3,
                description: "e-mail to ops@example.com".into(),
            }),
            "channel.remove",
            r#"{"channel":3,"description":"e-mail to ops@example.com","team":"shop"}"#,
        ),
        (
            A::ChannelTest(ChannelTest {
                team: "shop".into(),
                channel: 3,
                description: "d".into(),
                message: "m1".into(),
            }),
            "channel.test",
            r#"{"channel":3,"description":"d","message":"m1","team":"shop"}"#,
        ),
        (
            A::RouteSet(RouteSet {
                category: "infrastructure".into(),
                team: "ops".into(),
            }),
            "route.set",
            r#"{"category":"infrastructure","team":"ops"}"#,
        ),
        (
            A::RouteRemove(RouteRemove {
                category: "infrastructure".into(),
            }),
            "route.remove",
            r#"{"category":"infrastructure"}"#,
        ),
        (
            A::IncidentOpen(IncidentOpen {
                env: "prd".into(),
                severity: Severity::Critical,
                title: "checkout down".into(),
                path: SupportPath::HotfixBackport,
                team: "shop".into(),
                assignee: Some("amy".into()),
                base_version: Some("1.0.0".into()),
            }),
            "incident.open",
            r#"{"assignee":"amy","base_version":"1.0.0","env":"prd","path":"hotfix-backport","severity":"critical","team":"shop","title":"checkout down"}"#,
        ),
        (
            A::IncidentAck(IncidentChange {
                incident: 7,
                note: Some("on it".into()),
                team: "shop".into(),
                title: "checkout down".into(),
            }),
            "incident.ack",
            r#"{"incident":7,"note":"on it","team":"shop","title":"checkout down"}"#,
        ),
        (
            A::IncidentResolve(IncidentChange {
                incident: 7,
                note: None,
                team: "shop".into(),
                title: "checkout down".into(),
            }),
            "incident.resolve",
            r#"{"incident":7,"note":null,"team":"shop","title":"checkout down"}"#,
        ),
        (
            A::IncidentEscalate(IncidentEscalate {
                incident: 7,
                level: 2,
                assignee: None,
                team: "shop".into(),
                title: "checkout down".into(),
                severity: Severity::Critical,
            }),
            "incident.escalate",
            r#"{"assignee":null,"incident":7,"level":2,"severity":"critical","team":"shop","title":"checkout down"}"#,
        ),
        (
            A::IncidentRebase(IncidentRebase {
                incident: 7,
                from: "1.0.0".into(),
                base_version: "1.0.1".into(),
                suggested_version: "1.0.2".into(),
                team: "shop".into(),
            }),
            "incident.rebase",
            r#"{"base_version":"1.0.1","from":"1.0.0","incident":7,"suggested_version":"1.0.2","team":"shop"}"#,
        ),
        (
            A::BackportOpen(BackportOpen {
                hotfix_version: "1.0.1".into(),
                base_version: "1.0.0".into(),
                incident: Some(7),
                mode: BackportMode::Merge,
                team: Some("shop".into()),
            }),
            "backport.open",
            r#"{"base_version":"1.0.0","hotfix_version":"1.0.1","incident":7,"mode":"merge","team":"shop"}"#,
        ),
        (
            A::BackportDone(BackportDone {
                backport: 4,
                hotfix_version: "1.0.1".into(),
                release: "1.2.0".into(),
                team: None,
            }),
            "backport.done",
            r#"{"backport":4,"hotfix_version":"1.0.1","release":"1.2.0","team":null}"#,
        ),
        (
            A::BackportWaive(BackportWaive {
                backport: 4,
                hotfix_version: "1.0.1".into(),
                reason: "product line dropped".into(),
                team: "shop".into(),
            }),
            "backport.waive",
            r#"{"backport":4,"hotfix_version":"1.0.1","reason":"product line dropped","team":"shop"}"#,
        ),
        (
            A::DriftCheck(DriftCheck {
                env: "prd".into(),
                task: 7,
            }),
            "drift.check",
            r#"{"env":"prd","task":7}"#,
        ),
        (
            A::DriftDetected(DriftDetected {
                env: "prd".into(),
                version: "1.0.0".into(),
                paths: 2,
                examples: vec![DriftedExample {
                    path: "index.php".into(),
                    change: crate::drift::DriftChange::Content,
                }],
                team: "shop".into(),
            }),
            "drift.detected",
            r#"{"env":"prd","examples":[{"change":"content","path":"index.php"}],"paths":2,"team":"shop","version":"1.0.0"}"#,
        ),
        (
            A::DeploymentDeploy(requested(DeployChange {
                strategy: Some("rolling".into()),
                reason: Some("release day".into()),
                allow_downgrade: true,
                ..deploy("1.1")
            })),
            "deployment.deploy",
            r#"{"allow_downgrade":true,"env":"prd","reason":"release day","strategy":"rolling","team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentDeploy(DeploymentRequested {
                review: vec!["checkout.js".into()],
                ..requested(deploy("1.1"))
            }),
            "deployment.deploy",
            r#"{"allow_downgrade":false,"env":"prd","reason":null,"review":["checkout.js"],"strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentStage(requested(deploy("1.1"))),
            "deployment.stage",
            r#"{"allow_downgrade":false,"env":"prd","reason":null,"strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentRollback(requested(rollback())),
            "deployment.rollback",
            r#"{"env":"prd","from":"1.1","reason":"broken","team":"shop","to":"1.0"}"#,
        ),
        (
            A::DeploymentOverrideGuard(DeploymentRequested {
                override_guard: Some(guard_override()),
                ..requested(RequestedChange::Deploy(deploy("1.1")))
            }),
            "deployment.override_guard",
            r#"{"allow_downgrade":false,"env":"prd","override_guard":{"overridden":[{"hotfix_version":"1.0.1","incident":7,"missing":["checkout.js"]}],"reason":"demo"},"reason":null,"strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentOverrideGuard(DeploymentRequested {
                override_guard: Some(guard_override()),
                ..requested(RequestedChange::Rollback(rollback()))
            }),
            "deployment.override_guard",
            r#"{"env":"prd","from":"1.1","override_guard":{"overridden":[{"hotfix_version":"1.0.1","incident":7,"missing":["checkout.js"]}],"reason":"demo"},"reason":"broken","team":"shop","to":"1.0"}"#,
        ),
        (
            A::DeploymentBreakGlass(DeploymentRequested {
                break_glass: Some(break_glass("deploy")),
                ..requested(RequestedChange::Deploy(deploy("1.1")))
            }),
            "deployment.break_glass",
            r#"{"allow_downgrade":false,"break_glass":{"kind":"deploy","reason":"outage","summary":"s"},"env":"prd","reason":null,"strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentBreakGlass(DeploymentRequested {
                break_glass: Some(break_glass("rollback")),
                override_guard: Some(guard_override()),
                review: vec!["a.txt".into()],
                ..requested(RequestedChange::Rollback(rollback()))
            }),
            "deployment.break_glass",
            r#"{"break_glass":{"kind":"rollback","reason":"outage","summary":"s"},"env":"prd","from":"1.1","override_guard":{"overridden":[{"hotfix_version":"1.0.1","incident":7,"missing":["checkout.js"]}],"reason":"demo"},"reason":"broken","review":["a.txt"],"team":"shop","to":"1.0"}"#,
        ),
        (
            A::DeploymentApprove(DeploymentApprove {
                version: "1.1".into(),
                env: "prd".into(),
                reason: None,
                approvals: 1,
                required: 2,
                started: false,
            }),
            "deployment.approve",
            r#"{"approvals":1,"env":"prd","reason":null,"required":2,"started":false,"version":"1.1"}"#,
        ),
        (
            A::DeploymentReject(DeploymentReject {
                version: "1.1".into(),
                env: "prd".into(),
                reason: "not today".into(),
                withdrawn: true,
            }),
            "deployment.reject",
            r#"{"env":"prd","reason":"not today","version":"1.1","withdrawn":true}"#,
        ),
        (
            A::DeploymentDeploy(DeploymentRequested {
                skipped_offline: vec!["prd-2".into()],
                ..requested(deploy("1.1"))
            }),
            "deployment.deploy",
            r#"{"allow_downgrade":false,"env":"prd","reason":null,"skipped_offline":["prd-2"],"strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentDeploy(DeploymentRequested {
                skip_backup: Some("disk full".into()),
                ..requested(deploy("1.1"))
            }),
            "deployment.deploy",
            r#"{"allow_downgrade":false,"env":"prd","reason":null,"skip_backup":"disk full","strategy":null,"team":"shop","version":"1.1"}"#,
        ),
        (
            A::DeploymentCancel(DeploymentCancel {
                version: "1.1".into(),
                env: "prd".into(),
                reason: "wrong build".into(),
                was: Status::Running,
                team: "shop".into(),
            }),
            "deployment.cancel",
            r#"{"env":"prd","reason":"wrong build","team":"shop","version":"1.1","was":"running"}"#,
        ),
        (
            A::ConfigChange(ConfigChange {
                env: "prd".into(),
                revision: 3,
                changes: vec![crate::config_revision::ConfigChange {
                    key: crate::config::ConfigKey::parse("API_KEY").unwrap(),
                    change: crate::config_revision::ChangeKind::Changed,
                    secret: true,
                }],
            }),
            "config.change",
            r#"{"changes":[{"change":"changed","key":"API_KEY","secret":true}],"env":"prd","revision":3}"#,
        ),
        (
            A::ConfigReveal(ConfigReveal {
                env: "prd".into(),
                revision: 3,
                keys: vec![crate::config::ConfigKey::parse("API_KEY").unwrap()],
                team: "shop".into(),
            }),
            "config.reveal",
            r#"{"env":"prd","keys":["API_KEY"],"revision":3,"team":"shop"}"#,
        ),
        (
            A::ConfigReseal(ConfigReseal {
                revisions: 4,
                key_id: "0123456789abcdef".into(),
                previous_key_id: Some("fedcba9876543210".into()),
            }),
            "config.reseal",
            r#"{"key_id":"0123456789abcdef","previous_key_id":"fedcba9876543210","revisions":4}"#,
        ),
        (
            A::UserSetPassword(UserSetPassword {}),
            "user.set-password",
            "{}",
        ),
        (
            A::UserLogin(UserLogin {
                method: crate::login::LoginMethod::Password,
            }),
            "user.login",
            r#"{"method":"password"}"#,
        ),
        (A::UserLogout(UserLogout {}), "user.logout", "{}"),
        (
            A::Refused(Refused {
                asked: "deploy web 1.3.0 to prd".into(),
                rule: "frozen".into(),
                reason: "prd is frozen".into(),
            }),
            "refused",
            r#"{"asked":"deploy web 1.3.0 to prd","reason":"prd is frozen","rule":"frozen"}"#,
        ),
        (
            A::DeploymentFinish(DeploymentFinish {
                config: 0,
                status: Status::RolledBack,
                reason: Some("prd-2: health check failed".into()),
                version: "1.1".into(),
                env: "prd".into(),
            }),
            "deployment.finish",
            r#"{"env":"prd","reason":"prd-2: health check failed","status":"rolled_back","version":"1.1"}"#,
        ),
    ]
}

#[test]
fn every_action_is_stored_as_before_and_reads_back() {
    for (action, name, details) in cases() {
        check(action, name, details);
    }
}

#[test]
fn every_kind_has_a_case_and_its_own_name() {
    let covered: Vec<AuditKind> = cases().iter().map(|(a, _, _)| a.kind()).collect();
    for kind in AuditKind::ALL {
        assert!(covered.contains(kind), "no case writes {kind}");
        assert_eq!(AuditKind::from_name(kind.name()), Some(*kind));
        assert_eq!(
            AuditKind::ALL
                .iter()
                .filter(|k| k.name() == kind.name())
                .count(),
            1,
            "{kind}"
        );
    }
    assert_eq!(AuditKind::ALL.len(), 67);
}

#[test]
fn shapes_older_ferry_versions_stored_still_read() {
    use AuditAction as A;
    // Deployments before `--allow-downgrade` existed.
    check_stored(
        "deployment.deploy",
        r#"{"env":"prd","reason":null,"strategy":null,"version":"1.1"}"#,
        A::DeploymentDeploy(DeploymentRequested {
            team: String::new(),
            ..requested(deploy("1.1"))
        }),
    );
    // Rollbacks before they took a reason.
    check_stored(
        "deployment.rollback",
        r#"{"env":"prd","from":"1.1","to":"1.0"}"#,
        A::DeploymentRollback(DeploymentRequested {
            team: String::new(),
            ..requested(RollbackChange {
                reason: None,
                ..rollback()
            })
        }),
    );
    // Break-glass before the regression guard and team channels.
    check_stored(
        "deployment.break_glass",
        r#"{"allow_downgrade":false,"break_glass":{"kind":"deploy","reason":"outage","summary":"s"},"env":"prd","reason":"outage","strategy":null,"version":"1.1"}"#,
        A::DeploymentBreakGlass(DeploymentRequested {
            break_glass: Some(break_glass("deploy")),
            team: String::new(),
            ..requested(RequestedChange::Deploy(DeployChange {
                reason: Some("outage".into()),
                ..deploy("1.1")
            }))
        }),
    );
    // Releases before hotfixes, and before incidents and backports.
    let release = |hotfix_of: Option<&str>| {
        A::ReleaseCreate(ReleaseCreate {
            digest: "d1".into(),
            files: 1,
            bytes: 2,
            source: json!({"kind": "dir"}),
            hotfix_of: hotfix_of.map(str::to_owned),
            incident: None,
            closes: vec![],
            backports_done: vec![],
        })
    };
    check_stored(
        "release.create",
        r#"{"bytes":2,"digest":"d1","files":1,"source":{"kind":"dir"}}"#,
        release(None),
    );
    check_stored(
        "release.create",
        r#"{"bytes":2,"digest":"d1","files":1,"hotfix_of":"1.0","source":{"kind":"dir"}}"#,
        release(Some("1.0")),
    );
    // The policy change once recorded its whole request.
    check_stored(
        "environment.set-policy",
        r#"{"approvals":2,"freeze":[],"protected":null,"self_approval":null,"unfreeze":[]}"#,
        A::EnvironmentSetPolicy(EnvironmentSetPolicy {
            approvals: Some(2),
            self_approval: None,
            protected: None,
            optional: None,
        }),
    );
    // An incident without a production release to base a hotfix on.
    check_stored(
        "incident.open",
        r#"{"assignee":null,"env":"prd","path":"backlog","severity":"low","team":"shop","title":"t"}"#,
        A::IncidentOpen(IncidentOpen {
            env: "prd".into(),
            severity: Severity::Low,
            title: "t".into(),
            path: SupportPath::Backlog,
            team: "shop".into(),
            assignee: None,
            base_version: None,
        }),
    );
}

#[test]
fn unreadable_events_are_errors() {
    let error = |name: &str, details: &str| AuditAction::parse(&record(name, details)).unwrap_err();
    assert_eq!(
        error("deployment.launch", "{}"),
        AuditParseError::UnknownAction("deployment.launch".into())
    );
    for (name, details) in [
        ("incident.open", "{}"),
        ("incident.open", "not json"),
        (
            "incident.ack",
            r#"{"incident":"seven","team":"shop","title":"t"}"#,
        ),
        ("team.create", "null"),
        (
            "deployment.override_guard",
            r#"{"env":"prd","team":"shop"}"#,
        ),
        ("role.set-level", r#"{"env":"prd","level":"superuser"}"#),
    ] {
        let AuditParseError::Malformed { kind, reason } = error(name, details) else {
            panic!("{name} {details} is not malformed");
        };
        assert_eq!(kind.name(), name);
        assert!(!reason.is_empty());
    }
    assert_eq!(
        error("incident.open", "{}").to_string(),
        "the details of audit action incident.open cannot be read (missing field `env` at line 1 column 2): run `ferry audit verify` to check the trail"
    );
}

#[test]
fn a_deployment_request_is_named_after_its_strongest_override() {
    let name = |glass: bool, guard: bool, stage_only: bool, rollback_change: bool| {
        let change = match rollback_change {
            true => RequestedChange::Rollback(rollback()),
            false => RequestedChange::Deploy(deploy("1.1")),
        };
        DeploymentRequested {
            break_glass: glass.then(|| break_glass("deploy")),
            override_guard: guard.then(guard_override),
            ..requested(change)
        }
        .into_action(stage_only)
        .name()
    };
    let cases = [
        ((false, false, false, false), "deployment.deploy"),
        ((false, false, true, false), "deployment.stage"),
        ((false, false, false, true), "deployment.rollback"),
        ((false, true, false, false), "deployment.override_guard"),
        ((false, true, false, true), "deployment.override_guard"),
        ((true, false, false, false), "deployment.break_glass"),
        ((true, true, false, true), "deployment.break_glass"),
    ];
    for ((glass, guard, stage_only, rollback_change), expected) in cases {
        assert_eq!(
            name(glass, guard, stage_only, rollback_change),
            expected,
            "glass {glass}, guard {guard}, stage-only {stage_only}, rollback {rollback_change}"
        );
    }
}
