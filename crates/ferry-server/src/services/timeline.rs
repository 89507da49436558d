//! An incident's story from open to closed: its own steps (opened, routed, escalated,
//! acknowledged, rebased, resolved) with what followed from it elsewhere: the hotfix
//! release made for it, that release's deployments, and the backport obligation it opened
//! and how that closed. Read from where each is recorded, so it is never out of step.

use ferry_store::{IncidentRecord, IncidentStep};

use super::ServiceResult;
use crate::state::AppState;

/// Deployments of an application read for a timeline, at most.
const DEPLOYMENTS_READ: u32 = 1000;

/// `incident`'s steps and what followed from it, oldest first.
pub async fn timeline(
    state: &AppState,
    incident: &IncidentRecord,
) -> ServiceResult<Vec<IncidentStep>> {
    let mut steps = incident.history.clone();
    let step = |at_ms: i64, actor: &str, what: String| IncidentStep {
        at_ms,
        actor: actor.to_owned(),
        what,
    };
    let hotfixes: Vec<_> = state
        .store
        .list_releases(&incident.app)
        .await?
        .into_iter()
        .filter(|r| r.incident == Some(incident.id))
        .collect();
    for release in &hotfixes {
        let from = release.hotfix_of.as_deref().unwrap_or("?");
        steps.push(step(
            release.created_ms,
            &release.created_by,
            format!("hotfix release {} created from {from}", release.version),
        ));
    }
    let deployments = state
        .store
        .list_deployments(Some(&incident.app), DEPLOYMENTS_READ)
        .await?;
    for deployment in deployments
        .iter()
        .filter(|d| hotfixes.iter().any(|r| r.version == d.version))
    {
        steps.push(step(
            deployment.created_ms,
            &deployment.requested_by,
            format!(
                "deployment {} of {} to {}: {}",
                deployment.id,
                deployment.version,
                deployment.env,
                deployment.status()
            ),
        ));
    }
    for backport in state
        .store
        .backports(Some(&incident.app))
        .await?
        .into_iter()
        .filter(|b| b.incident == Some(incident.id))
    {
        steps.push(step(
            backport.opened_ms,
            crate::bootstrap::SERVER_ACTOR,
            format!(
                "backport obligation {} opened: {} must reach dev ({})",
                backport.id, backport.hotfix_version, backport.mode
            ),
        ));
        if let (Some(at), Some(by)) = (backport.closed_ms, &backport.closed_by) {
            steps.push(step(
                at,
                by,
                format!("backport obligation {} {}", backport.id, backport.status),
            ));
        }
    }
    steps.sort_by_key(|s| s.at_ms);
    Ok(steps)
}
