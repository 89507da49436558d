//! A deployment's logs: what each target's hooks and health check printed, shown to
//! exactly whoever may see the deployment.

use ferry_api::{DeploymentLogs, TargetLogs};
use ferry_store::{DeploymentRecord, StepLogRecord};

use super::deployments::visible_deployment;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The logs of deployment `id`, of every target (in the deployment's order) or only
/// `target`, grouped by the release each target ran. A deployment of an application the
/// caller cannot see is not found, as `deployment show` says; a target the deployment does
/// not have is refused naming those it has.
pub async fn logs(
    state: &AppState,
    caller: &Caller,
    id: i64,
    target: Option<&str>,
) -> ServiceResult<DeploymentLogs> {
    let (record, _) = visible_deployment(state, caller, id).await?;
    logs_of(state, &record, target).await
}

/// The logs of deployment `record`, for whoever was found to see it.
pub async fn logs_of(
    state: &AppState,
    record: &DeploymentRecord,
    target: Option<&str>,
) -> ServiceResult<DeploymentLogs> {
    let id = record.id;
    let targets: Vec<&str> = record
        .state
        .steps
        .iter()
        .map(|step| step.target.as_str())
        .collect();
    if let Some(wanted) = target.filter(|wanted| !targets.contains(wanted)) {
        return Err(ServiceError::not_found(format!(
            "deployment {id} has no target {wanted:?}: its targets are {}",
            targets.join(", ")
        )));
    }
    let logged = state.store.step_logs(id, target).await?;
    let targets = targets
        .into_iter()
        .filter(|name| target.is_none_or(|wanted| wanted == *name))
        .flat_map(|name| of_target(name, &record.version, &logged))
        .collect();
    Ok(DeploymentLogs {
        deployment: id,
        app: record.app.clone(),
        targets,
    })
}

/// What `target` logged, a group per release in the order it ran them; one empty group
/// (for the deployment's release) when it logged nothing.
fn of_target(target: &str, version: &str, logged: &[StepLogRecord]) -> Vec<TargetLogs> {
    let mut groups: Vec<TargetLogs> = Vec::new();
    for record in logged.iter().filter(|r| r.target == target) {
        match groups.last_mut() {
            Some(group) if group.version == record.version => group.steps.push(record.log.clone()),
            _ => groups.push(TargetLogs {
                target: target.to_owned(),
                version: record.version.clone(),
                steps: vec![record.log.clone()],
            }),
        }
    }
    if groups.is_empty() {
        groups.push(TargetLogs {
            target: target.to_owned(),
            version: version.to_owned(),
            steps: Vec::new(),
        });
    }
    groups
}
