//! A capture (`ferry drift capture`): the release made of a target's hand edits, the
//! finished deployment recording the target running it, its report, its drift found empty
//! and its backport obligation commit together with their audit events, or nothing does.

use ferry_domain::backport::ObligationStatus;
use ferry_domain::deployment::{Deployment, Kind, Status, Strategy, TargetAppState};
use ferry_domain::support::BackportMode;

use super::audit;
use super::reads::moved;
use crate::{
    AuditFilter, Backport, DeploymentRecord, DesiredChange, DriftReport, NewCapture, NewRelease,
    Release, Store, StoreError, TargetReport,
};

/// The capture of `web` on `dev-1` (which runs 1.1) as `version`.
fn capture(version: &str, at: i64) -> NewCapture {
    let release = Release {
        app: "web".into(),
        version: version.into(),
        digest: format!("digest-{version}"),
        manifest_blob: format!("manifest-{version}"),
        files: 2,
        bytes: 10,
        source: r#"{"kind":"captured","target":"dev-1","user":"admin"}"#.into(),
        notes: None,
        created_ms: at,
        created_by: "admin".into(),
        hotfix_of: Some("1.1".into()),
        incident: None,
    };
    NewCapture {
        release: NewRelease {
            release,
            blobs: vec![(format!("manifest-{version}"), 1), ("content-1".into(), 9)],
            closes: Vec::new(),
            fulfils: Vec::new(),
        },
        release_audit: audit(
            "release.create",
            &format!("release/web/{version}"),
            Some("web"),
        ),
        deployment: DeploymentRecord {
            config: 0,
            id: 0,
            app: "web".into(),
            env: "dev".into(),
            version: version.into(),
            kind: Kind::Deploy,
            state: Deployment::captured("dev-1".into(), "1.1".into(), at),
            revision: 0,
            requested_by: "admin".into(),
            created_ms: at,
            updated_ms: at,
            overrides: "{}".into(),
            review: Vec::new(),
        },
        changes: vec![DesiredChange {
            config: 0,
            target: "dev-1".into(),
            app: "web".into(),
            version: Some(version.into()),
            deployment_id: 0,
            stage_only: false,
        }],
        report: TargetReport {
            current_config: 0,
            target: "dev-1".into(),
            app: "web".into(),
            current_version: Some(version.into()),
            state: TargetAppState::Succeeded,
            detail: None,
            at_ms: at,
        },
        capture_audit: audit("drift.captured", "", Some("web")),
        drift: DriftReport {
            target: "dev-1".into(),
            app: "web".into(),
            version: version.into(),
            paths: Vec::new(),
            path_count: 0,
            checked_ms: at,
        },
        opens: Some((
            Backport {
                id: 0,
                app: "web".into(),
                hotfix_version: version.into(),
                base_version: "1.1".into(),
                incident: None,
                mode: BackportMode::Backport,
                status: ObligationStatus::Open,
                closed_by: None,
                reason: None,
                opened_ms: at,
                closed_ms: None,
            },
            audit(
                "backport.open",
                &format!("release/web/{version}"),
                Some("web"),
            ),
        )),
    }
}

/// How many audit events concern `web`.
async fn events(store: &dyn Store) -> usize {
    store
        .audit_events(&AuditFilter {
            app: Some("web".into()),
            limit: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

/// The capture part of the reads story: target `dev-1` (in dev) runs `web` 1.1, no
/// deployment of `web` to dev is active, and `last` is the status revision now.
pub async fn capture_part(store: &dyn Store, last: &mut i64) {
    let before = events(store).await;
    let captured = store.capture_release(capture("1.1.1", 400)).await.unwrap();
    assert!(moved(store, last).await, "a target runs a captured release");
    assert_eq!(captured.release.hotfix_of.as_deref(), Some("1.1"));
    assert!(captured.deployment.went_live());
    assert_eq!(captured.deployment.status(), Status::Succeeded);
    let backport = captured.backport.expect("the obligation opens");
    assert_eq!(backport.status, ObligationStatus::Open);
    assert_eq!(
        store.release("web", "1.1.1").await.unwrap(),
        Some(captured.release.clone())
    );
    let placed = store.target_apps(Some("dev-1")).await.unwrap();
    let web = placed.iter().find(|p| p.app == "web").unwrap();
    assert_eq!(web.current_version.as_deref(), Some("1.1.1"));
    assert_eq!(web.desired_version.as_deref(), Some("1.1.1"));
    assert_eq!(web.deployment_id, Some(captured.deployment.id));
    let drift = store.target_drift(Some("web")).await.unwrap();
    let dev_1 = drift.iter().find(|d| d.report.target == "dev-1").unwrap();
    assert_eq!(
        (dev_1.report.version.as_str(), dev_1.report.path_count),
        ("1.1.1", 0)
    );
    assert!(store
        .backports(Some("web"))
        .await
        .unwrap()
        .iter()
        .any(|b| b.id == backport.id && b.hotfix_version == "1.1.1"));
    let trail = store
        .audit_events(&AuditFilter {
            app: Some("web".into()),
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events(store).await, before + 3);
    let subjects: Vec<(String, String)> = trail
        .iter()
        .map(|e| (e.record.action.clone(), e.record.subject.clone()))
        .collect();
    assert!(
        subjects.contains(&(
            "drift.captured".into(),
            format!("deployment/{}", captured.deployment.id)
        )),
        "{subjects:?}"
    );

    // The version taken: refused, nothing changes.
    let again = store.capture_release(capture("1.1.1", 410)).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "{again:?}"
    );
    // Another deployment of web to dev active: refused, nothing is created.
    let mut running = Deployment::new(Strategy::Rolling, vec![("dev-1".into(), None)]);
    running.start(420);
    let active = store
        .create_deployment(
            DeploymentRecord {
                state: running,
                version: "1.2".into(),
                ..capture("1.2", 420).deployment
            },
            Vec::new(),
            audit("deployment.deploy", "", Some("web")),
            None,
        )
        .await
        .unwrap();
    moved(store, last).await;
    let before = events(store).await;
    let refused = store.capture_release(capture("1.1.2", 430)).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    assert_eq!(store.release("web", "1.1.2").await.unwrap(), None);
    assert_eq!(
        events(store).await,
        before,
        "a refusal writes no audit event"
    );
    assert!(!moved(store, last).await, "refusals change nothing");
    // The story goes on without the deployment in the way.
    let mut ended = active;
    ended.state.status = Status::Cancelled;
    store
        .update_deployment(
            crate::DeploymentUpdate::of(&ended),
            audit("deployment.cancel", "", Some("web")),
        )
        .await
        .unwrap();
    moved(store, last).await;
}
