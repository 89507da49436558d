//! The story every backend must tell the same way: written once against [`Store`], run by
//! each backend's tests (SQLite always, PostgreSQL where one is reachable).

use ferry_domain::audit::{verify_chain, AuditEvent, AuditRecord};
use ferry_domain::deployment::{Deployment, Kind, Status, Strategy, TargetAppState};
use ferry_domain::freeze::OneOffFreeze;
use ferry_domain::permission::Level;
use ferry_domain::pipeline::{default_pipeline, Policy};
use ferry_domain::role::built_in_roles;

pub mod app_backups;
pub mod capture;
pub mod configuration;
pub mod drift;
pub mod races;
pub mod reads;
pub mod revocation;
pub mod step_logs;
pub mod support;
pub mod tasks;

use crate::{
    AppGrant, ApprovalRecord, AuditFilter, Backport, Bootstrap, ContentHold, DeliveryStatus,
    DeploymentRecord, DeploymentUpdate, DesiredChange, DueDeliveries, EnvironmentChange,
    FreezeWindowRecord, Membership, NewApp, NewRelease, NewUser, OneOffFreezeRecord, PolicyChange,
    Release, ReleaseOutcome, Store, StoreError, TargetReport, TokenHolder,
};

fn audit(action: &str, subject: &str, app: Option<&str>) -> AuditRecord {
    AuditRecord {
        at_ms: 1_800_000_000_000,
        actor: "admin".into(),
        action: action.into(),
        subject: subject.into(),
        app: app.map(str::to_owned),
        details: "{}".into(),
    }
}

fn new_user(name: &str, role: &str, teams: &[(&str, Option<&str>)]) -> NewUser {
    NewUser {
        name: name.into(),
        default_role: role.into(),
        teams: teams
            .iter()
            .map(|(team, role)| Membership {
                team: (*team).into(),
                role: role.map(str::to_owned),
            })
            .collect(),
        token_hash: format!("hash-of-{name}"),
        created_ms: 1_800_000_000_000,
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{what}: expected not found, got {other:?}"),
    }
}

fn assert_exists<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::AlreadyExists { .. }) => {}
        other => panic!("{what}: expected already exists, got {other:?}"),
    }
}

/// A change of an environment's policy alone.
fn policy_change(change: PolicyChange, record: AuditRecord) -> EnvironmentChange {
    EnvironmentChange {
        policy: Some((change, record)),
        ..EnvironmentChange::default()
    }
}

/// Opens `obligation` as the server does: with the end of a deployment of its hotfix to
/// production, in the same transaction. Returns the obligation opened, or `None` when the
/// hotfix had one already.
async fn ship_hotfix(store: &dyn Store, obligation: Backport) -> Option<Backport> {
    let app = obligation.app.clone();
    let mut shipped = store
        .create_deployment(
            DeploymentRecord {
                config: 0,
                id: 0,
                app: app.clone(),
                env: "prd".into(),
                version: obligation.hotfix_version.clone(),
                kind: Kind::Deploy,
                state: Deployment::new(Strategy::Rolling, Vec::new()),
                revision: 0,
                requested_by: "lee".into(),
                created_ms: obligation.opened_ms,
                updated_ms: obligation.opened_ms,
                overrides: "{}".into(),
                review: Vec::new(),
            },
            vec![],
            audit("deployment.deploy", "", Some(&app)),
            None,
        )
        .await
        .unwrap();
    shipped.state.status = Status::Succeeded;
    let before = store.backports(Some(&app)).await.unwrap();
    store
        .update_deployment(
            DeploymentUpdate {
                opens: Some((obligation, audit("backport.open", "", Some(&app)))),
                ..DeploymentUpdate::of(&shipped)
            },
            audit("deployment.finish", "", Some(&app)),
        )
        .await
        .unwrap();
    let after = store.backports(Some(&app)).await.unwrap();
    after
        .into_iter()
        .find(|b| before.iter().all(|old| old.id != b.id))
}

/// What an empty store starts with: the default pipeline, the built-in roles, and `admin`.
fn first_start() -> Bootstrap {
    let pipeline = default_pipeline();
    let env_names: Vec<&str> = pipeline.iter().map(|env| env.name.as_str()).collect();
    Bootstrap {
        environments: pipeline.clone(),
        roles: built_in_roles(&env_names),
        admin: new_user("admin", "admin", &[]),
    }
}

pub async fn story(store: &dyn Store, audit_key: &[u8; 32]) {
    content_holds(store).await;
    let pipeline = default_pipeline();
    let bootstrap = first_start();
    assert!(store
        .bootstrap(
            bootstrap.clone(),
            audit("server.bootstrap", "user/admin", None)
        )
        .await
        .unwrap());
    assert!(!store
        .bootstrap(bootstrap, audit("server.bootstrap", "user/admin", None))
        .await
        .unwrap());
    assert_eq!(store.list_environments().await.unwrap(), pipeline);
    assert_eq!(store.list_roles().await.unwrap().len(), 6);

    // Teams.
    let team = store
        .create_team("shop", audit("team.create", "team/shop", None))
        .await
        .unwrap();
    assert_eq!(team.name, "shop");
    assert_exists(
        store
            .create_team("shop", audit("team.create", "team/shop", None))
            .await,
        "duplicate team",
    );
    store
        .create_team("blog", audit("team.create", "team/blog", None))
        .await
        .unwrap();
    let teams: Vec<String> = store
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(teams, ["blog", "shop"]);

    // Users and tokens.
    let dana = store
        .create_user(
            new_user(
                "dana",
                "developer",
                &[("shop", Some("lead")), ("blog", None)],
            ),
            audit("user.create", "user/dana", None),
        )
        .await
        .unwrap();
    assert_eq!(dana.default_role, "developer");
    assert_eq!(
        dana.teams,
        [
            Membership {
                team: "blog".into(),
                role: None
            },
            Membership {
                team: "shop".into(),
                role: Some("lead".into())
            },
        ]
    );
    assert_eq!(
        store.user_by_token("hash-of-dana").await.unwrap(),
        Some(TokenHolder {
            user: dana.clone(),
            roles: store.list_roles().await.unwrap()
        })
    );
    assert_eq!(store.user_by_token("hash-of-nobody").await.unwrap(), None);
    assert_exists(
        store
            .create_user(
                new_user("dana", "viewer", &[]),
                audit("user.create", "user/dana", None),
            )
            .await,
        "duplicate user",
    );
    assert_not_found(
        store
            .create_user(
                new_user("eve", "root", &[]),
                audit("user.create", "user/eve", None),
            )
            .await,
        "unknown role",
    );
    assert_not_found(
        store
            .create_user(
                new_user("eve", "viewer", &[("nope", None)]),
                audit("user.create", "user/eve", None),
            )
            .await,
        "unknown team",
    );
    assert_not_found(
        store
            .create_user(
                new_user("eve", "viewer", &[("shop", Some("root"))]),
                audit("user.create", "user/eve", None),
            )
            .await,
        "unknown team role",
    );
    let users: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(users, ["admin", "dana"]);

    // The pipeline.
    let qa = store
        .create_environment(
            "qa",
            Some("dev"),
            audit("environment.create", "environment/qa", None),
        )
        .await
        .unwrap();
    assert_eq!((qa.position, qa.policy), (1, Policy::OPEN));
    let dr = store
        .create_environment(
            "dr",
            None,
            audit("environment.create", "environment/dr", None),
        )
        .await
        .unwrap();
    assert_eq!((dr.position, dr.policy), (4, Policy::PRODUCTION));
    let order: Vec<String> = store
        .list_environments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(order, ["dev", "qa", "pp", "prd", "dr"]);
    assert_exists(
        store
            .create_environment(
                "qa",
                Some("pp"),
                audit("environment.create", "environment/qa", None),
            )
            .await,
        "duplicate environment",
    );
    assert_not_found(
        store
            .create_environment(
                "uat",
                Some("test"),
                audit("environment.create", "environment/uat", None),
            )
            .await,
        "insert after an unknown environment",
    );
    let roles = store.list_roles().await.unwrap();
    let developer = roles.iter().find(|r| r.name == "developer").unwrap();
    assert_eq!(developer.level_in("qa"), Level::Deploy);
    assert_eq!(developer.level_in("dr"), Level::Deploy);

    let prd = store
        .change_environment(
            "prd",
            policy_change(
                PolicyChange {
                    approvals_required: Some(2),
                    ..PolicyChange::default()
                },
                audit("environment.set-policy", "environment/prd", None),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        prd.policy,
        Policy {
            approvals_required: 2,
            ..Policy::PRODUCTION
        }
    );
    assert_not_found(
        store
            .change_environment(
                "nope",
                policy_change(
                    PolicyChange::default(),
                    audit("environment.set-policy", "environment/nope", None),
                ),
            )
            .await,
        "policy of an unknown environment",
    );

    // Roles.
    let developer = store
        .set_role_level(
            "developer",
            "prd",
            Level::View,
            audit("role.set-level", "role/developer", None),
        )
        .await
        .unwrap();
    assert_eq!(developer.level_in("prd"), Level::View);
    assert_eq!(developer.level_in("pp"), Level::Deploy);
    match store
        .set_role_level(
            "admin",
            "prd",
            Level::View,
            audit("role.set-level", "role/admin", None),
        )
        .await
    {
        Err(StoreError::Refused(_)) => {}
        other => panic!("editing admin: expected refused, got {other:?}"),
    }
    assert_not_found(
        store
            .set_role_level(
                "developer",
                "nope",
                Level::View,
                audit("role.set-level", "role/developer", None),
            )
            .await,
        "level in an unknown environment",
    );
    assert_not_found(
        store
            .set_role_level(
                "root",
                "dev",
                Level::View,
                audit("role.set-level", "role/root", None),
            )
            .await,
        "unknown role",
    );

    // Applications.
    let app = store
        .create_app(
            NewApp {
                name: "shop-web".into(),
                team: "shop".into(),
                keep_releases: 5,
                created_ms: 1,
            },
            audit("app.create", "app/shop-web", Some("shop-web")),
        )
        .await
        .unwrap();
    assert_eq!((app.team.as_str(), app.keep_releases), ("shop", 5));
    assert_eq!(store.app("shop-web").await.unwrap(), Some(app));
    assert_eq!(store.app("nope").await.unwrap(), None);
    assert_exists(
        store
            .create_app(
                NewApp {
                    name: "shop-web".into(),
                    team: "blog".into(),
                    keep_releases: 5,
                    created_ms: 1,
                },
                audit("app.create", "app/shop-web", Some("shop-web")),
            )
            .await,
        "duplicate application",
    );
    assert_not_found(
        store
            .create_app(
                NewApp {
                    name: "wiki".into(),
                    team: "nope".into(),
                    keep_releases: 5,
                    created_ms: 1,
                },
                audit("app.create", "app/wiki", Some("wiki")),
            )
            .await,
        "application of an unknown team",
    );
    assert_eq!(store.list_apps().await.unwrap().len(), 1);

    // Releases and blob references.
    let release = |version: &str, digest: &str, blobs: &[&str]| NewRelease {
        release: Release {
            app: "shop-web".into(),
            version: version.into(),
            digest: digest.into(),
            manifest_blob: format!("m-{digest}"),
            files: 2,
            bytes: 10,
            source: "{}".into(),
            notes: None,
            created_ms: 2,
            created_by: "admin".into(),
            hotfix_of: None,
            incident: None,
        },
        blobs: blobs.iter().map(|b| ((*b).to_owned(), 5)).collect(),
        closes: Vec::new(),
        fulfils: Vec::new(),
    };
    let first = store
        .create_release(
            release("1.0", "d1", &["a", "b"]),
            audit("release.create", "release/shop-web/1.0", Some("shop-web")),
        )
        .await
        .unwrap();
    assert!(matches!(first, ReleaseOutcome::Created { .. }));
    let again = store
        .create_release(
            release("1.0", "d1", &["a", "b"]),
            audit("release.create", "release/shop-web/1.0", Some("shop-web")),
        )
        .await
        .unwrap();
    assert!(matches!(again, ReleaseOutcome::Identical(_)));
    match store
        .create_release(
            release("1.0", "d2", &["c"]),
            audit("release.create", "release/shop-web/1.0", Some("shop-web")),
        )
        .await
    {
        Err(StoreError::Refused(message)) => assert!(message.contains("immutable"), "{message}"),
        other => panic!("different content under an existing version: {other:?}"),
    }
    store
        .create_release(
            release("1.1", "d3", &["b", "c"]),
            audit("release.create", "release/shop-web/1.1", Some("shop-web")),
        )
        .await
        .unwrap();
    let versions: Vec<String> = store
        .list_releases("shop-web")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, ["1.1", "1.0"]);
    assert_eq!(
        store
            .release("shop-web", "1.0")
            .await
            .unwrap()
            .unwrap()
            .digest,
        "d1"
    );
    let referenced = store.referenced_blobs().await.unwrap();
    assert_eq!(referenced.len(), 3);
    store
        .delete_releases(
            "shop-web",
            vec![("1.0".into(), vec!["a".into(), "b".into()])],
            audit("release.prune", "app/shop-web", Some("shop-web")),
        )
        .await
        .unwrap();
    let referenced = store.referenced_blobs().await.unwrap();
    assert!(!referenced.contains("a") && referenced.contains("b") && referenced.contains("c"));
    assert_not_found(
        store
            .delete_releases(
                "shop-web",
                vec![("1.0".into(), vec![])],
                audit("release.prune", "app/shop-web", Some("shop-web")),
            )
            .await,
        "deleting a release twice",
    );

    // Targets: enrollment, placement, desired and reported state.
    store
        .create_enrollment(
            "dev",
            "dev-1",
            "enroll-1",
            10_000,
            audit("target.enroll-token", "target/dev-1", None),
        )
        .await
        .unwrap();
    match store
        .create_enrollment(
            "pp",
            "dev-1",
            "enroll-x",
            10_000,
            audit("target.enroll-token", "target/dev-1", None),
        )
        .await
    {
        Err(StoreError::Refused(message)) => assert!(
            message.contains("belongs to environment \"dev\""),
            "{message}"
        ),
        other => panic!("a target in two environments: {other:?}"),
    }
    match store
        .enroll_target(
            "enroll-1",
            "cred-1",
            20_000,
            audit("target.enroll", "", None),
        )
        .await
    {
        Err(StoreError::Refused(message)) => assert!(message.contains("expired"), "{message}"),
        other => panic!("an expired token: {other:?}"),
    }
    store
        .create_enrollment(
            "dev",
            "dev-1",
            "enroll-2",
            30_000,
            audit("target.enroll-token", "target/dev-1", None),
        )
        .await
        .unwrap();
    let target = store
        .enroll_target(
            "enroll-2",
            "cred-1",
            20_000,
            audit("target.enroll", "", None),
        )
        .await
        .unwrap();
    assert_eq!(
        (target.name.as_str(), target.enrolled_ms),
        ("dev-1", Some(20_000))
    );
    assert!(store
        .enroll_target(
            "enroll-2",
            "cred-2",
            20_000,
            audit("target.enroll", "", None)
        )
        .await
        .is_err());
    assert_eq!(
        store
            .target_by_credential("cred-1")
            .await
            .unwrap()
            .unwrap()
            .name,
        "dev-1"
    );
    assert_eq!(store.placement("shop-web", "dev").await.unwrap(), ["dev-1"]);
    assert!(store.placement("shop-web", "pp").await.unwrap().is_empty());

    // Deployments: one running per app and environment, each delivering its release with
    // a configuration revision.
    let deployment = |status: Status| DeploymentRecord {
        config: 2,
        id: 0,
        app: "shop-web".into(),
        env: "dev".into(),
        version: "1.1".into(),
        kind: Kind::Deploy,
        state: Deployment {
            status,
            ..Deployment::new(
                Strategy::Rolling,
                vec![("dev-1".into(), Some("1.0".into()))],
            )
        },
        revision: 0,
        requested_by: "admin".into(),
        created_ms: 3,
        updated_ms: 3,
        overrides: "{}".into(),
        review: Vec::new(),
    };
    let report = |state: TargetAppState, version: &str, at_ms: i64| TargetReport {
        current_config: 2,
        target: "dev-1".into(),
        app: "shop-web".into(),
        current_version: Some(version.into()),
        state,
        detail: None,
        at_ms,
    };
    let change = |version: Option<&str>| DesiredChange {
        config: 2,
        target: "dev-1".into(),
        app: "shop-web".into(),
        version: version.map(str::to_owned),
        deployment_id: 0,
        stage_only: false,
    };
    let mut created = store
        .create_deployment(
            deployment(Status::Running),
            vec![change(Some("1.1"))],
            audit("deployment.deploy", "", Some("shop-web")),
            None,
        )
        .await
        .unwrap();
    match store
        .create_deployment(
            deployment(Status::Running),
            vec![],
            audit("deployment.deploy", "", Some("shop-web")),
            None,
        )
        .await
    {
        Err(StoreError::Refused(message)) => assert!(
            message.contains(&format!(
                "deployment {} of shop-web to dev is not finished",
                created.id
            )),
            "{message}"
        ),
        other => panic!("a second running deployment: {other:?}"),
    }
    let desired = store.target_apps(Some("dev-1")).await.unwrap();
    assert_eq!(
        (
            desired[0].desired_version.as_deref(),
            desired[0].deployment_id
        ),
        (Some("1.1"), Some(created.id))
    );
    assert_eq!(
        (
            desired[0].deployment_kind,
            desired[0].deployment_version.as_deref()
        ),
        (Some(Kind::Deploy), Some("1.1"))
    );
    assert_eq!(
        (desired[0].desired_config, desired[0].deployment_config),
        (2, 2)
    );
    assert_eq!(created.config, 2);
    assert!(store.target_apps(Some("pp-9")).await.unwrap().is_empty());
    store
        .report_target_app(report(TargetAppState::Succeeded, "1.1", 4))
        .await
        .unwrap();
    let reported = store.target_apps(Some("dev-1")).await.unwrap();
    assert_eq!(reported[0].current_config, 2);
    let read_back = store.deployment(created.id).await.unwrap().unwrap();
    assert_eq!(read_back.config, 2);
    step_logs::step_logs_part(store, created.id).await;
    created.state.status = Status::Succeeded;
    created.updated_ms = 5;
    store
        .update_deployment(
            DeploymentUpdate {
                bad_version: Some("1.0".into()),
                ..DeploymentUpdate::of(&created)
            },
            audit("deployment.finish", "", Some("shop-web")),
        )
        .await
        .unwrap();
    assert_eq!(store.running_deployments().await.unwrap().len(), 0);
    assert_eq!(store.active_deployments().await.unwrap().len(), 0);
    let finished = store.deployment(created.id).await.unwrap().unwrap();
    assert_eq!(
        (finished.status(), finished.revision),
        (Status::Succeeded, 1)
    );
    // A change made from a revision that is no longer the latest is refused.
    match store
        .record_deployment_progress(DeploymentUpdate::of(&created))
        .await
    {
        Err(StoreError::Conflict(message)) => assert!(
            message.contains(&format!("deployment {} changed meanwhile", created.id)),
            "{message}"
        ),
        other => panic!("a save over a stale revision: {other:?}"),
    }
    assert_eq!(
        store
            .list_deployments(Some("shop-web"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.bad_versions("shop-web", "dev").await.unwrap(),
        ["1.0"]
    );
    let reported = &store.target_apps(None).await.unwrap()[0];
    assert_eq!(
        (reported.current_version.as_deref(), reported.state),
        (Some("1.1"), TargetAppState::Succeeded)
    );

    // Policy: a deployment awaiting approval counts as active, stages ahead, and starts
    // with the approval that completes it; approvals are once per person.
    let mut awaiting = store
        .create_deployment(
            DeploymentRecord {
                version: "1.2".into(),
                overrides: r#"{"allow_downgrade":true}"#.into(),
                review: vec!["1.0.1: a.js".into(), "1.0.1: b.js".into()],
                ..deployment(Status::AwaitingApproval)
            },
            vec![DesiredChange {
                version: Some("1.2".into()),
                stage_only: true,
                ..change(None)
            }],
            audit("deployment.deploy", "", Some("shop-web")),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_deployment(
                deployment(Status::Running),
                vec![],
                audit("x", "", None),
                None
            )
            .await,
        Err(StoreError::Refused(_))
    ));
    // Awaiting approval is active, not running.
    let active: Vec<i64> = (store.active_deployments().await.unwrap().iter())
        .map(|d| d.id)
        .collect();
    assert_eq!(active, [awaiting.id]);
    assert!(store.running_deployments().await.unwrap().is_empty());
    // What was granted and listed on the request is kept for the approval.
    let stored = store.deployment(awaiting.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.overrides.as_str(), stored.review.as_slice()),
        (
            r#"{"allow_downgrade":true}"#,
            ["1.0.1: a.js".to_owned(), "1.0.1: b.js".to_owned()].as_slice()
        )
    );
    assert_eq!(
        store.deployment(created.id).await.unwrap().unwrap().review,
        Vec::<String>::new()
    );
    let row = &store.target_apps(Some("dev-1")).await.unwrap()[0];
    assert_eq!(
        row.stage,
        Some((ferry_domain::served::Served::new("1.2", 2), awaiting.id))
    );
    assert_eq!(
        row.desired_version.as_deref(),
        Some("1.1"),
        "staging leaves it"
    );
    let approval = |approver: &str| ApprovalRecord {
        deployment_id: awaiting.id,
        approver: approver.into(),
        version: "1.2".into(),
        reason: None,
        at_ms: 6,
    };
    awaiting.state.status = Status::Running;
    store
        .approve(
            approval("dana"),
            &awaiting,
            vec![change(Some("1.2"))],
            audit("deployment.approve", "", Some("shop-web")),
        )
        .await
        .unwrap();
    let started = store.deployment(awaiting.id).await.unwrap().unwrap();
    assert!(matches!(
        store
            .approve(approval("erin"), &started, vec![], audit("x", "", None))
            .await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.approvals(awaiting.id).await.unwrap().len(), 1);
    assert_eq!((started.status(), started.revision), (Status::Running, 1));
    awaiting = started;
    let row = &store.target_apps(Some("dev-1")).await.unwrap()[0];
    assert_eq!(row.desired_version.as_deref(), Some("1.2"));
    awaiting.state.status = Status::Succeeded;
    store
        .record_deployment_progress(DeploymentUpdate::of(&awaiting))
        .await
        .unwrap();
    assert_eq!(
        store.target_apps(Some("dev-1")).await.unwrap()[0].stage,
        None
    );

    // Freeze windows and per-app grants.
    let window = FreezeWindowRecord {
        env: "dev".into(),
        expression: "0 18 * * FRI 2d16h".into(),
        created_ms: 7,
    };
    let freeze = |window: &FreezeWindowRecord, action: &str| EnvironmentChange {
        freeze: vec![(window.clone(), audit(action, "", None))],
        ..EnvironmentChange::default()
    };
    let unfreeze = |action: &str| EnvironmentChange {
        unfreeze: vec![(window.expression.clone(), audit(action, "", None))],
        ..EnvironmentChange::default()
    };
    store
        .change_environment("dev", freeze(&window, "environment.freeze"))
        .await
        .unwrap();
    let before = store.audit_chain().await.unwrap().events.len();
    assert!(matches!(
        store.change_environment("dev", freeze(&window, "x")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // Refused as a whole: a policy change given with it is not made either.
    let refused = EnvironmentChange {
        policy: Some((
            PolicyChange {
                protected: Some(true),
                ..PolicyChange::default()
            },
            audit("x", "", None),
        )),
        ..freeze(&window, "x")
    };
    assert!(store.change_environment("dev", refused).await.is_err());
    let dev = store.list_environments().await.unwrap().remove(0);
    assert!(!dev.policy.protected, "nothing of a refused change is made");
    assert_eq!(store.audit_chain().await.unwrap().events.len(), before);
    assert_eq!(
        store.freeze_windows(Some("dev")).await.unwrap(),
        std::slice::from_ref(&window)
    );
    assert!(store.freeze_windows(Some("pp")).await.unwrap().is_empty());
    store
        .change_environment("dev", unfreeze("environment.unfreeze"))
        .await
        .unwrap();
    assert!(matches!(
        store.change_environment("dev", unfreeze("x")).await,
        Err(StoreError::NotFound { .. })
    ));

    // One-off freezes: one per environment, replaced over the end the caller read, ended
    // over the end it has; a stale end changes nothing and writes no event.
    let one_off = |until_ms, reason: &str| OneOffFreezeRecord {
        env: "dev".into(),
        freeze: OneOffFreeze {
            from_ms: 10,
            until_ms,
            reason: reason.into(),
            by: "dana".into(),
        },
    };
    assert!(store.one_off_freezes(None).await.unwrap().is_empty());
    store
        .freeze_now(
            one_off(100, "release night"),
            None,
            audit("environment.freeze-now", "", None),
        )
        .await
        .unwrap();
    let before = store.audit_chain().await.unwrap().events.len();
    for stale in [None, Some(99)] {
        assert!(matches!(
            store
                .freeze_now(one_off(200, "x"), stale, audit("x", "", None))
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(matches!(
        store.end_freeze("dev", 99, audit("x", "", None)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .freeze_now(
                OneOffFreezeRecord {
                    env: "nowhere".into(),
                    ..one_off(100, "x")
                },
                None,
                audit("x", "", None)
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.audit_chain().await.unwrap().events.len(), before);
    assert_eq!(
        store.one_off_freezes(Some("dev")).await.unwrap(),
        vec![one_off(100, "release night")]
    );
    store
        .freeze_now(
            one_off(200, "longer"),
            Some(100),
            audit("environment.freeze-now", "", None),
        )
        .await
        .unwrap();
    assert_eq!(
        store.one_off_freezes(None).await.unwrap(),
        vec![one_off(200, "longer")]
    );
    assert!(store.one_off_freezes(Some("pp")).await.unwrap().is_empty());
    store
        .end_freeze("dev", 200, audit("environment.unfreeze-now", "", None))
        .await
        .unwrap();
    assert!(store.one_off_freezes(None).await.unwrap().is_empty());
    let grant = |level| AppGrant {
        app: "shop-web".into(),
        user: "dana".into(),
        env: "prd".into(),
        level,
    };
    store
        .set_app_grant(
            grant(Level::Deploy),
            audit("app.grant", "", Some("shop-web")),
        )
        .await
        .unwrap();
    assert_eq!(
        store.app_grants("shop-web").await.unwrap(),
        [grant(Level::Deploy)]
    );
    let dana = store.list_users().await.unwrap();
    let dana = dana.iter().find(|u| u.name == "dana").unwrap();
    assert_eq!(dana.grants, [grant(Level::Deploy)]);
    store
        .set_app_grant(grant(Level::None), audit("app.grant", "", Some("shop-web")))
        .await
        .unwrap();
    assert!(store.app_grants("shop-web").await.unwrap().is_empty());

    // Team membership: change a role, remove and add back; unknown names change nothing.
    let dana_teams = || async {
        let users = store.list_users().await.unwrap();
        users.into_iter().find(|u| u.name == "dana").unwrap().teams
    };
    let member = |team: &str, role: Option<&str>| Membership {
        team: team.into(),
        role: role.map(Into::into),
    };
    let before = dana_teams().await;
    let change = |team, role, remove| {
        store.set_membership(team, "dana", role, remove, audit("team.member", "", None))
    };
    change("shop", Some("viewer"), false).await.unwrap();
    assert!(dana_teams().await.contains(&member("shop", Some("viewer"))));
    change("blog", None, true).await.unwrap();
    assert_eq!(dana_teams().await, [member("shop", Some("viewer"))]);
    change("blog", None, false).await.unwrap();
    change("shop", Some("lead"), false).await.unwrap();
    assert_eq!(dana_teams().await, before);
    for (team, user, role, remove) in [
        ("nope", "dana", None, false),
        ("shop", "nobody", None, false),
        ("shop", "dana", Some("no-such-role"), false),
        ("nope", "dana", None, true),
    ] {
        assert!(matches!(
            store
                .set_membership(team, user, role, remove, audit("x", "", None))
                .await,
            Err(StoreError::NotFound { .. })
        ));
    }
    change("blog", None, true).await.unwrap();
    assert!(matches!(
        change("blog", None, true).await,
        Err(StoreError::NotFound { .. })
    ));
    change("blog", None, false).await.unwrap();
    assert_eq!(dana_teams().await, before);

    // The audit chain: one event per change that happened, none for refusals.
    let actions: Vec<String> = store
        .audit_events(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.action)
        .collect();
    assert_eq!(
        actions,
        [
            "server.bootstrap",
            "team.create",
            "team.create",
            "user.create",
            "environment.create",
            "environment.create",
            "environment.set-policy",
            "role.set-level",
            "app.create",
            "release.create",
            "release.create",
            "release.prune",
            "target.enroll-token",
            "target.enroll-token",
            "target.enroll",
            "deployment.deploy",
            "deployment.finish",
            "deployment.deploy",
            "deployment.approve",
            "environment.freeze",
            "environment.unfreeze",
            "environment.freeze-now",
            "environment.freeze-now",
            "environment.unfreeze-now",
            "app.grant",
            "app.grant",
            "team.member",
            "team.member",
            "team.member",
            "team.member",
            "team.member",
            "team.member",
        ]
    );
    let for_app = store
        .audit_events(&AuditFilter {
            app: Some("shop-web".into()),
            limit: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(for_app.len(), 10);
    let last_two = store
        .audit_events(&AuditFilter {
            app: None,
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(last_two.iter().map(|e| e.seq).collect::<Vec<_>>(), [31, 32]);
    // Each filter keeps what it names, as filtering the whole trail does.
    let every = store.audit_events(&AuditFilter::default()).await.unwrap();
    let middle = every[every.len() / 2].record.clone();
    type Keeps<'a> = &'a dyn Fn(&AuditEvent) -> bool;
    let filters: [(AuditFilter, Keeps); 4] = [
        (
            AuditFilter {
                action: Some("team.member".into()),
                ..Default::default()
            },
            &|e| e.record.action == "team.member",
        ),
        (
            AuditFilter {
                actor: Some(middle.actor.clone()),
                ..Default::default()
            },
            &|e| e.record.actor == middle.actor,
        ),
        (
            AuditFilter {
                since_ms: Some(middle.at_ms),
                ..Default::default()
            },
            &|e| e.record.at_ms >= middle.at_ms,
        ),
        (
            AuditFilter {
                until_ms: Some(middle.at_ms),
                app: Some("shop-web".into()),
                ..Default::default()
            },
            &|e| e.record.at_ms < middle.at_ms && e.record.app.as_deref() == Some("shop-web"),
        ),
    ];
    for (filter, keeps) in filters {
        let kept = store.audit_events(&filter).await.unwrap();
        let expected: Vec<i64> = every.iter().filter(|e| keeps(e)).map(|e| e.seq).collect();
        assert_eq!(
            kept.iter().map(|e| e.seq).collect::<Vec<_>>(),
            expected,
            "{filter:?}"
        );
    }
    let chain = store.audit_chain().await.unwrap();
    assert_eq!(
        verify_chain(audit_key, &chain.events, chain.head.as_ref()),
        Ok(32)
    );

    notifications(store, audit_key).await;
    app_backups::app_backups_part(store, "shop-web").await;
    configuration::configuration_part(store, "shop-web").await;
}

/// Deliveries due at `now_ms`, claimed until `until_ms`, none ever scheduled more than 10
/// minutes ahead.
fn due(now_ms: i64, until_ms: i64) -> DueDeliveries {
    DueDeliveries {
        now_ms,
        latest_schedule_ms: now_ms + 600_000,
        claimed_until_ms: until_ms,
    }
}

/// Channels, deliveries and the notification cursor, on the store the story built (teams
/// `shop` and `blog`). Writes four audit events: `channel.add` twice, `channel.test` and
/// `channel.remove`.
async fn notifications(store: &dyn Store, audit_key: &[u8; 32]) {
    use crate::{Attempt, NewChannel, NewDelivery};
    const T: i64 = 1_800_000_000_000;
    let events_before = store.audit_chain().await.unwrap().events.len() as i64;

    // The cursor starts at the end of the trail, so history is not replayed.
    let start = store.notification_cursor().await.unwrap();
    assert_eq!(start, events_before);
    assert_eq!(store.notification_cursor().await.unwrap(), start);
    assert!(store
        .audit_events_after(start, 100)
        .await
        .unwrap()
        .is_empty());

    // Channels: added with their audit event, listed per team, never for a missing team.
    let new_channel = |team: &str| NewChannel {
        team: team.into(),
        config:
            r#"{"kind":"webhook","url":"https://hooks.example.com/x","secret":"0123456789abcdef"}"#
                .into(),
        description: "webhook https://hooks.example.com/x".into(),
        created_by: "dana".into(),
        created_ms: T,
    };
    let hook = store
        .add_channel(new_channel("shop"), audit("channel.add", "", None))
        .await
        .unwrap();
    assert_eq!((hook.team.as_str(), hook.removed_ms), ("shop", None));
    assert!(
        !format!("{hook:?}").contains("0123456789abcdef"),
        "{hook:?}"
    );
    assert_not_found(
        store
            .add_channel(new_channel("nope"), audit("channel.add", "", None))
            .await,
        "channel of a missing team",
    );
    let blog_hook = store
        .add_channel(new_channel("blog"), audit("channel.add", "", None))
        .await
        .unwrap();
    assert_eq!(
        store.channels(Some("shop"), false).await.unwrap(),
        std::slice::from_ref(&hook)
    );
    assert_eq!(store.channels(None, false).await.unwrap().len(), 2);
    let after = store.audit_events_after(start, 100).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|e| (e.seq, e.record.subject.clone()))
            .collect::<Vec<_>>(),
        [
            (start + 1, format!("channel/{}", hook.id)),
            (start + 2, format!("channel/{}", blog_hook.id)),
        ]
    );
    assert_eq!(store.audit_events_after(start, 1).await.unwrap().len(), 1);

    // A test delivery commits with its audit event, whose seq it records.
    let delivery = |channel_id: i64, team: &str, audit_seq: Option<i64>| NewDelivery {
        channel_id,
        team: team.into(),
        event: "channel.test".into(),
        audit_seq,
        message: r#"{"id":"m"}"#.into(),
        created_ms: T,
    };
    let test = store
        .queue_delivery(
            delivery(hook.id, "shop", None),
            audit("channel.test", "", None),
        )
        .await
        .unwrap();
    assert_eq!(test.audit_seq, Some(start + 3));
    assert_eq!(
        (test.status.as_str(), test.attempts, test.next_attempt_ms),
        ("pending", 0, T)
    );
    assert_eq!(test.channel, hook.description);
    // Another team's channel is refused, and nothing is written.
    assert!(matches!(
        store
            .queue_delivery(
                delivery(blog_hook.id, "shop", None),
                audit("channel.test", "", None)
            )
            .await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.audit_events_after(start, 100).await.unwrap().len(), 3);

    // Deliveries and the cursor move together, or not at all.
    let end = start + 3;
    assert!(matches!(
        store
            .advance_notifications(
                start,
                end,
                vec![
                    delivery(hook.id, "shop", Some(start + 1)),
                    delivery(blog_hook.id, "shop", Some(start + 1)),
                ],
            )
            .await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.notification_cursor().await.unwrap(), start);
    assert_eq!(store.deliveries("shop", 100).await.unwrap().len(), 1);
    store
        .advance_notifications(
            start,
            end,
            vec![
                delivery(hook.id, "shop", Some(start + 1)),
                delivery(blog_hook.id, "blog", Some(start + 2)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.notification_cursor().await.unwrap(), end);
    // A second notifier that read the same cursor is refused and adds nothing.
    assert!(matches!(
        store
            .advance_notifications(start, end, vec![delivery(hook.id, "shop", Some(start + 1))])
            .await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.notification_cursor().await.unwrap(), end);
    let shop_log = store.deliveries("shop", 100).await.unwrap();
    assert_eq!(
        shop_log.iter().map(|d| d.audit_seq).collect::<Vec<_>>(),
        [Some(start + 1), Some(start + 3)],
        "newest first"
    );
    assert_eq!(store.deliveries("shop", 1).await.unwrap().len(), 1);
    assert_eq!(store.deliveries("blog", 100).await.unwrap().len(), 1);
    assert_not_found(
        store.deliveries("nope", 10).await,
        "deliveries of a missing team",
    );

    // Claims: due deliveries once until the claim runs out.
    let claimed = store
        .claim_due_deliveries(due(T, T + 60_000), 2)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.id).collect::<Vec<_>>(),
        [test.id, shop_log[0].id],
        "oldest first, at most the limit"
    );
    assert_eq!(
        store
            .claim_due_deliveries(due(T, T + 60_000), 10)
            .await
            .unwrap()
            .len(),
        1,
        "only the one not claimed yet"
    );
    assert!(store
        .claim_due_deliveries(due(T + 1, T + 60_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_deliveries(due(T - 1, T + 60_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_due_deliveries(due(T + 60_000, T + 120_000), 10)
            .await
            .unwrap()
            .len(),
        3,
        "a claim that ran out is due again"
    );

    // Attempts: a retry waits, a success finishes, a permanent error fails.
    let retried = store
        .record_attempt(
            test.id,
            T + 1_000,
            Attempt::Retry {
                error: "HTTP 500".into(),
                next_attempt_ms: T + 2_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            retried.status.as_str(),
            retried.attempts,
            retried.next_attempt_ms,
            retried.last_attempt_ms,
            retried.last_error.as_deref()
        ),
        ("pending", 1, T + 2_000, Some(T + 1_000), Some("HTTP 500"))
    );
    assert!(store
        .claim_due_deliveries(due(T + 1_999, T + 120_000), 10)
        .await
        .unwrap()
        .is_empty());
    let set_back = T - 2 * 3_600_000;
    assert_eq!(
        store
            .claim_due_deliveries(due(set_back, set_back + 60_000), 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [test.id],
        "a retry scheduled further ahead than any retry is was scheduled before the clock went back"
    );
    assert!(store
        .claim_due_deliveries(due(set_back, set_back + 60_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_due_deliveries(due(T + 2_000, T + 120_000), 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [test.id]
    );
    let delivered = store
        .record_attempt(
            test.id,
            T + 2_500,
            Attempt::Delivered {
                detail: "HTTP 200".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            delivered.status.as_str(),
            delivered.attempts,
            delivered.detail.as_deref(),
            delivered.finished_ms
        ),
        ("delivered", 2, Some("HTTP 200"), Some(T + 2_500))
    );
    let failed = store
        .record_attempt(
            shop_log[0].id,
            T + 3_000,
            Attempt::Failed {
                error: "HTTP 404".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.attempts, failed.finished_ms),
        ("failed", 1, Some(T + 3_000))
    );
    assert_eq!(store.delivery(failed.id).await.unwrap(), Some(failed));
    assert_eq!(store.delivery(999_999).await.unwrap(), None);

    // Removing a channel keeps its log and fails what was still pending.
    let blog_pending = store.deliveries("blog", 10).await.unwrap();
    assert_eq!(blog_pending[0].status, DeliveryStatus::Pending);
    assert_not_found(
        store
            .remove_channel("shop", blog_hook.id, T, audit("channel.remove", "", None))
            .await,
        "another team's channel",
    );
    store
        .remove_channel(
            "blog",
            blog_hook.id,
            T + 4_000,
            audit("channel.remove", "", None),
        )
        .await
        .unwrap();
    assert_not_found(
        store
            .remove_channel("blog", blog_hook.id, T, audit("channel.remove", "", None))
            .await,
        "a removed channel",
    );
    assert!(store
        .channels(Some("blog"), false)
        .await
        .unwrap()
        .is_empty());
    let removed = store.channels(Some("blog"), true).await.unwrap();
    assert_eq!(removed[0].removed_ms, Some(T + 4_000));
    let blog_log = store.deliveries("blog", 10).await.unwrap();
    assert_eq!(
        (blog_log[0].status.as_str(), blog_log[0].finished_ms),
        ("failed", Some(T + 4_000))
    );
    assert!(
        blog_log[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("removed"),
        "{blog_log:?}"
    );
    assert_eq!(blog_log[0].channel, blog_hook.description);
    assert!(matches!(
        store
            .queue_delivery(
                delivery(blog_hook.id, "blog", None),
                audit("channel.test", "", None)
            )
            .await,
        Err(StoreError::Refused(_))
    ));

    // One audit event per change; delivery bookkeeping writes none.
    let actions: Vec<String> = store
        .audit_events_after(start, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.action)
        .collect();
    assert_eq!(
        actions,
        [
            "channel.add",
            "channel.add",
            "channel.test",
            "channel.remove"
        ]
    );
    let chain = store.audit_chain().await.unwrap();
    assert_eq!(
        verify_chain(audit_key, &chain.events, chain.head.as_ref()),
        Ok(events_before as u64 + 4)
    );
}

/// Creations hold content together; garbage collection holds it alone.
pub async fn content_holds(store: &dyn Store) {
    use std::time::Duration;
    let first = store.hold_content(ContentHold::Shared).await.unwrap();
    let second = store.hold_content(ContentHold::Shared).await.unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        store.hold_content(ContentHold::Exclusive),
    )
    .await;
    assert!(
        waited.is_err(),
        "garbage collection held content during a creation"
    );
    drop((first, second));
    let exclusive = tokio::time::timeout(
        Duration::from_secs(10),
        store.hold_content(ContentHold::Exclusive),
    )
    .await
    .expect("garbage collection waits only for creations")
    .unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        store.hold_content(ContentHold::Shared),
    )
    .await;
    assert!(
        waited.is_err(),
        "a creation held content during garbage collection"
    );
    drop(exclusive);
    tokio::time::timeout(
        Duration::from_secs(10),
        store.hold_content(ContentHold::Shared),
    )
    .await
    .expect("a creation waits only for garbage collection")
    .unwrap();
}
