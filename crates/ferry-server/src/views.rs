//! Records as the API shows them: shared by the handlers, the status document and the
//! notifier, so every place writes a time or an obligation the same way.

use ferry_api::{
    AwaitedApprovals, Backport, Deployment, DeploymentApproval, DeploymentStatus, DeploymentTarget,
    Incident, IncidentStep,
};
use ferry_domain::deployment::{Ahead, Status, TargetAppState};
use ferry_store::DeploymentRecord;
use ferry_store::IncidentRecord;

pub use ferry_domain::freeze::rfc3339;

use crate::services::ServiceResult;
use crate::state::AppState;

/// A backport obligation as the API shows it.
pub fn backport_json(backport: ferry_store::Backport) -> Backport {
    Backport {
        id: backport.id,
        app: backport.app,
        hotfix_version: backport.hotfix_version,
        base_version: backport.base_version,
        incident: backport.incident,
        mode: backport.mode,
        status: backport.status,
        closed_by: backport.closed_by,
        reason: backport.reason,
        opened_at: rfc3339(backport.opened_ms),
        closed_at: backport.closed_ms.map(rfc3339),
    }
}

/// How staging ahead goes on a target of a deployment awaiting approval: its word for the
/// API and a sentence for people.
fn staged_ahead(ahead: Option<&Ahead>) -> (&'static str, String) {
    match ahead {
        None => ("staging", "staging the release ahead".to_owned()),
        Some(Ahead::Staged) => (
            "staged",
            "staged: switches at once when approved".to_owned(),
        ),
        Some(Ahead::Failed { reason }) => (
            "stage_failed",
            format!("could not stage ahead, stages again when approved: {reason}"),
        ),
    }
}

/// A deployment as the API shows it.
pub fn deployment_json(record: DeploymentRecord) -> Deployment {
    let status = record.status();
    let state = record.state;
    let awaiting = status == Status::AwaitingApproval;
    let targets = state
        .steps
        .into_iter()
        .map(|step| {
            let (ahead, said) = awaiting.then(|| staged_ahead(step.ahead.as_ref())).unzip();
            DeploymentTarget {
                state: step.state.name().to_owned(),
                reason: step.state.failure().map(str::to_owned),
                target: step.target,
                previous: step.previous,
                step: said,
                ahead: ahead.map(str::to_owned),
            }
        })
        .collect();
    Deployment {
        id: record.id,
        app: record.app,
        env: record.env,
        version: record.version,
        config: record.config,
        kind: record.kind,
        status,
        strategy: state.strategy,
        reason: state.reason,
        requested_by: record.requested_by,
        created_at: rfc3339(record.created_ms),
        updated_at: rfc3339(record.updated_ms),
        targets,
        approvals: None,
        awaits: None,
        review: record.review,
        cancelled: state
            .cancelled
            .map(|c| format!("by {}: {}", c.by, c.reason)),
    }
}

/// A deployment with its approvals, as shown on its own.
pub async fn deployment_with_approvals(
    state: &AppState,
    record: DeploymentRecord,
) -> ServiceResult<Deployment> {
    let approvals = state
        .store
        .approvals(record.id)
        .await?
        .into_iter()
        .map(|a| DeploymentApproval {
            approver: a.approver,
            version: a.version,
            reason: a.reason,
            at: rfc3339(a.at_ms),
        })
        .collect();
    let awaits = match record.status() {
        Status::AwaitingApproval => {
            let policy = crate::services::pipeline::environment(state, &record.env)
                .await?
                .policy;
            Some(AwaitedApprovals {
                required: policy.approvals_required,
                self_approval: policy.self_approval,
            })
        }
        _ => None,
    };
    Ok(Deployment {
        approvals: Some(approvals),
        awaits,
        ..deployment_json(record)
    })
}

/// A deployment as shown on its own: with its approvals and, while it runs, the step each
/// target reported last; once a target succeeded, what its agent noted with the success (a
/// release repaired before the switch).
pub async fn deployment_shown(
    state: &AppState,
    record: DeploymentRecord,
) -> ServiceResult<Deployment> {
    const SUCCEEDED: &str = "succeeded";
    let mut deployment = deployment_with_approvals(state, record).await?;
    let running = deployment.status == DeploymentStatus::Running;
    if !running && !deployment.targets.iter().any(|t| t.state == SUCCEEDED) {
        return Ok(deployment);
    }
    let reported = state.store.target_apps(None).await?;
    for target in &mut deployment.targets {
        let succeeded = target.state == SUCCEEDED;
        target.step = reported
            .iter()
            .find(|r| {
                r.target == target.target
                    && r.deployment_id == Some(deployment.id)
                    && match r.state {
                        TargetAppState::Deploying => running,
                        TargetAppState::Succeeded => succeeded,
                        _ => false,
                    }
            })
            .and_then(|r| r.detail.clone());
    }
    Ok(deployment)
}

/// An incident as the API shows it, with its backlog item and, when a release closed that
/// item, the release.
pub fn incident_json(
    record: IncidentRecord,
    backlog_item: Option<(i64, Option<String>)>,
) -> Incident {
    let (backlog_item, backlog_closed_by) = backlog_item.unzip();
    Incident {
        id: record.id,
        app: record.app,
        env: record.env,
        severity: record.severity,
        title: record.title,
        category: record.category,
        description: record.description,
        status: record.status,
        path: record.path,
        team: record.team,
        reporter: record.reporter,
        assignee: record.assignee,
        escalation_level: record.escalation_level,
        base_version: record.base_version,
        suggested_version: record.suggested_version,
        source: record.source.and_then(|s| serde_json::from_str(&s).ok()),
        backlog_item,
        backlog_closed_by: backlog_closed_by.flatten(),
        opened_at: rfc3339(record.opened_ms),
        acknowledged_at: record.acknowledged_ms.map(rfc3339),
        acknowledged_by: record.acknowledged_by,
        resolved_at: record.resolved_ms.map(rfc3339),
        resolved_by: record.resolved_by,
        history: record
            .history
            .into_iter()
            .map(|s| IncidentStep {
                at: rfc3339(s.at_ms),
                actor: s.actor,
                what: s.what,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_800_000_000_123),
            "2027-01-15T08:00:00.123Z"
        );
    }
}
