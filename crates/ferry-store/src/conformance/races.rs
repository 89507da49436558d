//! Conflicting changes of one deployment through two independent handles on the same
//! database, as two server processes would make them: exactly one of each pair wins, the
//! other is a conflict that changes nothing, and a retry from the latest revision succeeds.
//! Runs on its own empty store, opened twice.

use ferry_domain::deployment::{Deployment, Kind, Status, Strategy, TargetAppState};

use super::{audit, first_start};
use crate::{
    ApprovalRecord, DeploymentRecord, DeploymentUpdate, NewApp, Store, StoreError, TargetReport,
};

/// Runs every race through `first` and `second`, two handles on one empty database.
pub async fn race_story(first: &dyn Store, second: &dyn Store) {
    set_up(first).await;
    step(
        "two reports of one revision",
        two_saves_of_one_revision(first, second),
    )
    .await;
    step(
        "two approvals of one revision",
        two_approvals_of_one_revision(first, second),
    )
    .await;
    step(
        "two deployments of one app and environment",
        two_deployments_at_once(first, second),
    )
    .await;
    step(
        "a progress report after the deployment moved on",
        progress_after_a_move(first, second),
    )
    .await;
}

/// Runs one named step, so that a failure names it.
async fn step(name: &str, race: impl std::future::Future<Output = Result<(), String>>) {
    if let Err(message) = race.await {
        panic!("race story, step {name:?}: {message}");
    }
}

async fn set_up(store: &dyn Store) {
    store
        .bootstrap(first_start(), audit("server.bootstrap", "", None))
        .await
        .unwrap();
    store
        .create_team("shop", audit("team.create", "team/shop", None))
        .await
        .unwrap();
    store
        .create_enrollment("dev", "t-1", "token-t-1", i64::MAX, audit("t", "", None))
        .await
        .unwrap();
    for app in ["web", "api", "shop"] {
        store
            .create_app(
                NewApp {
                    name: app.into(),
                    team: "shop".into(),
                    keep_releases: 5,
                    created_ms: 1,
                },
                audit("app.create", "", None),
            )
            .await
            .unwrap();
    }
}

fn deployment(app: &str, env: &str, status: Status) -> DeploymentRecord {
    DeploymentRecord {
        config: 0,
        id: 0,
        app: app.into(),
        env: env.into(),
        version: "1.0".into(),
        kind: Kind::Deploy,
        state: Deployment {
            status,
            ..Deployment::new(Strategy::Rolling, vec![("t-1".into(), None)])
        },
        revision: 0,
        requested_by: "admin".into(),
        created_ms: 2,
        updated_ms: 2,
        overrides: "{}".into(),
        review: Vec::new(),
    }
}

/// Exactly one of two results is `Ok`, the other a conflict.
fn one_wins<T: std::fmt::Debug>(
    a: &Result<T, StoreError>,
    b: &Result<T, StoreError>,
) -> Result<(), String> {
    let conflict = |r: &Result<T, StoreError>| matches!(r, Err(StoreError::Conflict(_)));
    if (a.is_ok() && conflict(b)) || (b.is_ok() && conflict(a)) {
        Ok(())
    } else {
        Err(format!(
            "expected one success and one conflict, got {a:?} and {b:?}"
        ))
    }
}

async fn two_saves_of_one_revision(first: &dyn Store, second: &dyn Store) -> Result<(), String> {
    let created = first
        .create_deployment(
            deployment("web", "dev", Status::Running),
            vec![],
            audit("d", "", None),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut succeeded = created.clone();
    succeeded.state.status = Status::Succeeded;
    let mut failed = created.clone();
    failed.state.status = Status::Failed;
    failed.state.reason = Some("t-1: timed out".into());
    let (a, b) = tokio::join!(
        first.record_deployment_progress(DeploymentUpdate::of(&succeeded)),
        second.record_deployment_progress(DeploymentUpdate::of(&failed)),
    );
    one_wins(&a, &b)?;
    let stored = second.deployment(created.id).await.unwrap().unwrap();
    let winner = if a.is_ok() { &succeeded } else { &failed };
    if (stored.status(), stored.revision) != (winner.status(), 1) {
        return Err(format!(
            "stored {:?} at revision {}, the winner was {:?}",
            stored.status(),
            stored.revision,
            winner.status()
        ));
    }
    Ok(())
}

async fn two_approvals_of_one_revision(
    first: &dyn Store,
    second: &dyn Store,
) -> Result<(), String> {
    let awaiting = first
        .create_deployment(
            deployment("web", "prd", Status::AwaitingApproval),
            vec![],
            audit("d", "", None),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let approval = |approver: &str| ApprovalRecord {
        deployment_id: awaiting.id,
        approver: approver.into(),
        version: "1.0".into(),
        reason: None,
        at_ms: 3,
    };
    // Both count one approval of two from the same revision: neither starts it.
    let (a, b) = tokio::join!(
        first.approve(approval("lee"), &awaiting, vec![], audit("a", "", None)),
        second.approve(approval("amy"), &awaiting, vec![], audit("a", "", None)),
    );
    one_wins(&a, &b)?;
    let approvals = first.approvals(awaiting.id).await.unwrap();
    if approvals.len() != 1 {
        return Err(format!("the losing approval was recorded: {approvals:?}"));
    }
    // The loser reads again, sees the other approval, and starts the deployment.
    let mut latest = second.deployment(awaiting.id).await.unwrap().unwrap();
    latest.state.start(0);
    let loser = if a.is_ok() { "amy" } else { "lee" };
    second
        .approve(approval(loser), &latest, vec![], audit("a", "", None))
        .await
        .map_err(|e| format!("the retried approval: {e}"))?;
    let started = first.deployment(awaiting.id).await.unwrap().unwrap();
    if (started.status(), started.revision) != (Status::Running, 2) {
        return Err(format!(
            "after the retry: {:?} at revision {}",
            started.status(),
            started.revision
        ));
    }
    Ok(())
}

async fn two_deployments_at_once(first: &dyn Store, second: &dyn Store) -> Result<(), String> {
    let (a, b) = tokio::join!(
        first.create_deployment(
            deployment("api", "dev", Status::Running),
            vec![],
            audit("d", "", None),
            None
        ),
        second.create_deployment(
            deployment("api", "dev", Status::Running),
            vec![],
            audit("d", "", None),
            None
        ),
    );
    let refused = |r: &Result<DeploymentRecord, StoreError>| {
        matches!(r, Err(StoreError::Refused(_) | StoreError::Conflict(_)))
    };
    if !((a.is_ok() && refused(&b)) || (b.is_ok() && refused(&a))) {
        return Err(format!(
            "expected one deployment and one refusal, got {a:?} and {b:?}"
        ));
    }
    Ok(())
}

async fn progress_after_a_move(first: &dyn Store, second: &dyn Store) -> Result<(), String> {
    let created = first
        .create_deployment(
            deployment("shop", "dev", Status::Running),
            vec![],
            audit("d", "", None),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    let report = |state: TargetAppState, detail: &str| TargetReport {
        current_config: 0,
        target: "t-1".into(),
        app: "shop".into(),
        current_version: None,
        state,
        detail: Some(detail.into()),
        at_ms: 4,
    };
    // The deployment moves on through one handle, saving the agent's final report with it.
    let mut finished = created.clone();
    finished.state.status = Status::Succeeded;
    first
        .update_deployment(
            DeploymentUpdate {
                report: Some(report(TargetAppState::Succeeded, "live")),
                ..DeploymentUpdate::of(&finished)
            },
            audit("deployment.finish", "", None),
        )
        .await
        .map_err(|e| e.to_string())?;
    // A progress report read at the old revision arrives through the other: it is dropped.
    let recorded = second
        .record_target_progress(
            report(TargetAppState::Deploying, "running hooks"),
            created.id,
            created.revision,
        )
        .await
        .map_err(|e| e.to_string())?;
    let row = first
        .target_apps(Some("t-1"))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.app == "shop");
    match row {
        Some(row) if !recorded && row.state == TargetAppState::Succeeded => Ok(()),
        other => Err(format!("recorded: {recorded}, row now: {other:?}")),
    }
}
