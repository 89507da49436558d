//! The reads that cover every application at once, and the status revision: each read returns
//! exactly what the per-application reads return, and the revision moves with every write
//! `status` shows and with no other. Runs on its own empty store.

use ferry_domain::backport::ObligationStatus;
use ferry_domain::deployment::{Deployment, Kind, Status, Strategy, TargetAppState, TargetState};
use ferry_domain::pipeline::default_pipeline;
use ferry_domain::role::built_in_roles;
use ferry_domain::support::BackportMode;

use super::{audit, new_user, ship_hotfix};
use crate::{
    Backport, BadVersion, Bootstrap, DeploymentRecord, DeploymentUpdate, DesiredChange,
    EnvironmentChange, NewApp, PolicyChange, Store, TargetReport,
};

/// What the agent of `dev-1` reports about `web`.
fn report(version: &str, state: TargetAppState, step: Option<&str>, at_ms: i64) -> TargetReport {
    TargetReport {
        current_config: 0,
        target: "dev-1".into(),
        app: "web".into(),
        current_version: Some(version.into()),
        state,
        detail: step.map(str::to_owned),
        at_ms,
    }
}

/// Whether the status revision moved since `last`, which becomes the current one.
pub(super) async fn moved(store: &dyn Store, last: &mut i64) -> bool {
    let now = store.status_revision().await.unwrap();
    assert!(now >= *last, "the revision went back from {last} to {now}");
    let moved = now != *last;
    *last = now;
    moved
}

fn deployment(app: &str, env: &str, version: &str, kind: Kind) -> DeploymentRecord {
    let mut state = Deployment::new(Strategy::Rolling, vec![(format!("{env}-1"), None)]);
    state.start(0);
    DeploymentRecord {
        config: 0,
        id: 0,
        app: app.into(),
        env: env.into(),
        version: version.into(),
        kind,
        state,
        revision: 0,
        requested_by: "admin".into(),
        created_ms: 10,
        updated_ms: 10,
        overrides: "{}".into(),
        review: Vec::new(),
    }
}

fn obligation(hotfix_version: &str) -> Backport {
    Backport {
        id: 0,
        app: "web".into(),
        hotfix_version: hotfix_version.into(),
        base_version: "1.0".into(),
        incident: None,
        mode: BackportMode::Backport,
        status: ObligationStatus::Open,
        closed_by: None,
        reason: None,
        opened_ms: 30,
        closed_ms: None,
    }
}

/// Creates a deployment of `version` to the target of `env`, saves one step of its progress,
/// and finishes it with `status` (marking `bad` rolled back); checks the revision moves when
/// it starts and when it finishes, and not for the step in between.
async fn deploy(
    store: &dyn Store,
    last: &mut i64,
    (app, env, version, kind): (&str, &str, &str, Kind),
    status: Status,
    bad: Option<&str>,
) {
    let change = DesiredChange {
        config: 0,
        target: format!("{env}-1"),
        app: app.into(),
        version: Some(version.into()),
        deployment_id: 0,
        stage_only: kind == Kind::Stage,
    };
    let mut record = store
        .create_deployment(
            deployment(app, env, version, kind),
            vec![change],
            audit(&format!("deployment.{kind}"), "", Some(app)),
            None,
        )
        .await
        .unwrap();
    assert!(moved(store, last).await, "a deployment starts");
    record.state.steps[0].state = TargetState::Succeeded;
    record.updated_ms = 11;
    store
        .record_deployment_progress(DeploymentUpdate::of(&record))
        .await
        .unwrap();
    record.revision += 1;
    assert!(
        !moved(store, last).await,
        "a running deployment saves its progress"
    );
    record.state.status = status;
    record.updated_ms = 12;
    store
        .update_deployment(
            DeploymentUpdate {
                bad_version: bad.map(str::to_owned),
                ..DeploymentUpdate::of(&record)
            },
            audit("deployment.finish", "", Some(app)),
        )
        .await
        .unwrap();
    assert!(moved(store, last).await, "a deployment finishes");
}

/// Runs the reads story on an empty store.
pub async fn reads_story(store: &dyn Store) {
    let pipeline = default_pipeline();
    let envs: Vec<&str> = pipeline.iter().map(|e| e.name.as_str()).collect();
    let bootstrap = Bootstrap {
        environments: pipeline.clone(),
        roles: built_in_roles(&envs),
        admin: new_user("admin", "admin", &[]),
    };
    store
        .bootstrap(bootstrap, audit("server.bootstrap", "", None))
        .await
        .unwrap();
    let mut last = store.status_revision().await.unwrap();
    store
        .create_team("shop", audit("team.create", "", None))
        .await
        .unwrap();
    assert!(!moved(store, &mut last).await, "teams do not show");
    for name in ["web", "api", "zeta"] {
        let app = NewApp {
            name: name.into(),
            team: "shop".into(),
            keep_releases: 5,
            created_ms: 1,
        };
        store
            .create_app(app, audit("app.create", "", Some(name)))
            .await
            .unwrap();
        assert!(moved(store, &mut last).await, "an application shows");
    }

    // Targets show by name; enrolling and heartbeats do not change what shows.
    for env in ["dev", "pp"] {
        let target = format!("{env}-1");
        store
            .create_enrollment(
                env,
                &target,
                &format!("enroll-{env}"),
                100,
                audit("target.enroll-token", "", None),
            )
            .await
            .unwrap();
        assert!(moved(store, &mut last).await, "a target is created");
        store
            .enroll_target(
                &format!("enroll-{env}"),
                &format!("cred-{env}"),
                5,
                audit("target.enroll", "", None),
            )
            .await
            .unwrap();
        assert!(!moved(store, &mut last).await, "enrolling changes no row");
        store.touch_targets(&[(target.clone(), 6)]).await.unwrap();
        assert!(!moved(store, &mut last).await, "a heartbeat");
    }

    // web: rolled back in dev; in pp rolled back, then deployed by name again (no longer bad),
    // then a stage-only deployment, which never goes live. api: rolled back in dev, then a
    // failed deployment; an unfinished one in pp. zeta: nothing.
    let web = |env, version, kind| ("web", env, version, kind);
    let api = |env, version, kind| ("api", env, version, kind);
    for (what, status, bad) in [
        (web("dev", "1.0", Kind::Deploy), Status::Succeeded, None),
        (web("dev", "1.1", Kind::Deploy), Status::Succeeded, None),
        (
            web("dev", "1.0", Kind::Rollback),
            Status::Succeeded,
            Some("1.1"),
        ),
        (web("pp", "1.0", Kind::Deploy), Status::Succeeded, None),
        (web("pp", "1.1", Kind::Deploy), Status::Succeeded, None),
        (
            web("pp", "1.0", Kind::Rollback),
            Status::Succeeded,
            Some("1.1"),
        ),
        (web("pp", "1.1", Kind::Deploy), Status::Succeeded, None),
        (web("pp", "1.2", Kind::Stage), Status::Succeeded, None),
        (api("dev", "1.9", Kind::Deploy), Status::Succeeded, None),
        (api("dev", "2.0", Kind::Deploy), Status::Succeeded, None),
        (
            api("dev", "1.9", Kind::Rollback),
            Status::Succeeded,
            Some("2.0"),
        ),
        (api("dev", "2.1", Kind::Deploy), Status::Failed, None),
    ] {
        deploy(store, &mut last, what, status, bad).await;
    }
    store
        .create_deployment(
            deployment("api", "pp", "1.9", Kind::Deploy),
            vec![],
            audit("deployment.deploy", "", Some("api")),
            None,
        )
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "a deployment starts");

    // What targets report: their version and state show, the step they are at does not.
    store
        .report_target_app(report("1.0", TargetAppState::Succeeded, None, 20))
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "a report with a new state");
    store
        .report_target_app(report("1.0", TargetAppState::Succeeded, Some("hooks"), 21))
        .await
        .unwrap();
    assert!(!moved(store, &mut last).await, "the same state again");
    store
        .report_target_app(report("1.0", TargetAppState::Deploying, Some("fetch"), 22))
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "another state");
    store
        .report_target_app(report("1.1", TargetAppState::Deploying, Some("fetch"), 22))
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "another version");
    super::drift::drift_part(store, &mut last).await;
    super::tasks::tasks_part(store).await;

    // Backport obligations: opened (with their hotfix's deployment), waived, done.
    let first = ship_hotfix(store, obligation("1.0.1")).await.unwrap();
    assert!(moved(store, &mut last).await, "an obligation opens");
    let second = ship_hotfix(store, obligation("1.0.2")).await.unwrap();
    assert!(moved(store, &mut last).await, "an obligation opens");
    store
        .waive_backport(
            second.id,
            "lee",
            "never",
            40,
            audit("backport.waive", "", None),
        )
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "an obligation is waived");
    assert!(store
        .complete_backport(
            first.id,
            "release 1.3",
            41,
            audit("backport.done", "", None)
        )
        .await
        .unwrap());
    assert!(moved(store, &mut last).await, "an obligation is done");

    // The pipeline shows too.
    store
        .create_environment("qa", Some("dev"), audit("environment.create", "", None))
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "an environment is created");
    store
        .change_environment(
            "qa",
            EnvironmentChange {
                policy: Some((
                    PolicyChange {
                        approvals_required: Some(1),
                        ..PolicyChange::default()
                    },
                    audit("environment.set-policy", "", None),
                )),
                ..EnvironmentChange::default()
            },
        )
        .await
        .unwrap();
    assert!(moved(store, &mut last).await, "an environment changes");

    // The reads of every application return what the reads of each return.
    let apps = store.list_apps().await.unwrap();
    let mut env_names: Vec<String> = store
        .list_environments()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    env_names.sort();
    let mut live_one_by_one = Vec::new();
    let mut bad_one_by_one = Vec::new();
    for app in &apps {
        let history: Vec<DeploymentRecord> = store
            .list_deployments(Some(&app.name), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(DeploymentRecord::went_live)
            .collect();
        for env in &env_names {
            live_one_by_one.extend(history.iter().find(|d| &d.env == env).cloned());
            for version in store.bad_versions(&app.name, env).await.unwrap() {
                bad_one_by_one.push(BadVersion {
                    app: app.name.clone(),
                    env: env.clone(),
                    version,
                });
            }
        }
    }
    let live = store.live_deployments().await.unwrap();
    assert_eq!(live, live_one_by_one);
    let summary: Vec<(&str, &str, &str, &str)> = live
        .iter()
        .map(|d| {
            (
                d.app.as_str(),
                d.env.as_str(),
                d.version.as_str(),
                d.kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("api", "dev", "1.9", "rollback"),
            ("web", "dev", "1.0", "rollback"),
            ("web", "pp", "1.1", "deploy"),
            ("web", "prd", "1.0.2", "deploy"),
        ]
    );
    let bad = store.every_bad_version().await.unwrap();
    assert_eq!(bad, bad_one_by_one);
    let bad = |app: &str, env: &str, version: &str| BadVersion {
        app: app.into(),
        env: env.into(),
        version: version.into(),
    };
    assert_eq!(
        store.every_bad_version().await.unwrap(),
        [bad("api", "dev", "2.0"), bad("web", "dev", "1.1")]
    );
    assert!(!moved(store, &mut last).await, "reads change nothing");
    super::capture::capture_part(store, &mut last).await;
}
