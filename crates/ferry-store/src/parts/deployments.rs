//! Deployments and their approvals, what went live where, and the status revision.

use async_trait::async_trait;

use crate::*;

/// Deployments and their approvals, what went live where, and the status revision.
#[async_trait]
pub trait Deployments: Send + Sync + 'static {
    /// Creates a running deployment with its first desired-state changes; refused while
    /// another deployment of the app to the environment runs. The audit record's subject
    /// becomes `deployment/ID`. `incident`, when given, is saved in the same transaction (a
    /// hotfix's base moved when the hotfix starts), refused like [`Support::update_incident`](crate::Support::update_incident)
    /// when the incident changed since it was read, and then nothing is created.
    async fn create_deployment(
        &self,
        deployment: DeploymentRecord,
        changes: Vec<DesiredChange>,
        audit: AuditRecord,
        incident: Option<IncidentUpdate>,
    ) -> StoreResult<DeploymentRecord>;
    /// Saves the end of a deployment (it finished, or was rejected or withdrawn while it
    /// awaited approval) with what follows from it and its audit event, over the revision
    /// the deployment was read at (`deployment.revision`), which grows by one; otherwise
    /// [`StoreError::Conflict`] and nothing changes. The steps before its end are
    /// [`UnauditedWrites::record_deployment_progress`].
    async fn update_deployment(
        &self,
        update: DeploymentUpdate<'_>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Creates a release captured from a target and the finished deployment recording the
    /// target running it (its desired state, its report, its drift found empty), and opens
    /// the backport obligation, with their audit records, in one transaction. Refused,
    /// changing nothing, when the version exists already (whatever its content: a capture
    /// names a new release) or another deployment of the application to the environment is
    /// active.
    async fn capture_release(&self, capture: NewCapture) -> StoreResult<Captured>;
    /// One deployment.
    async fn deployment(&self, id: i64) -> StoreResult<Option<DeploymentRecord>>;
    /// The approvals of a deployment, oldest first.
    async fn approvals(&self, deployment_id: i64) -> StoreResult<Vec<ApprovalRecord>>;
    /// Records an approval (refused unless the deployment awaits approval, and if the
    /// approver approved it already) and saves `deployment` (started, with `changes`, when
    /// the approval is the last one needed) in the same transaction, over the revision it
    /// was read at: of two approvals counted from the same revision, one is a
    /// [`StoreError::Conflict`], so the approval that completes the count always sees the
    /// others.
    async fn approve(
        &self,
        approval: ApprovalRecord,
        deployment: &DeploymentRecord,
        changes: Vec<DesiredChange>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Deployments, newest first, of one application or all.
    async fn list_deployments(
        &self,
        app: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>>;
    /// Deployments still running.
    async fn running_deployments(&self) -> StoreResult<Vec<DeploymentRecord>>;
    /// Deployments awaiting approval or running, oldest first.
    async fn active_deployments(&self) -> StoreResult<Vec<DeploymentRecord>>;
    /// Versions rolled back in an environment.
    async fn bad_versions(&self, app: &str, env: &str) -> StoreResult<Vec<String>>;
    /// What the targets of a deployment logged ([`UnauditedWrites::record_step_logs`]), of
    /// one target or all, by target and step.
    async fn step_logs(
        &self,
        deployment_id: i64,
        target: Option<&str>,
    ) -> StoreResult<Vec<StepLogRecord>>;

    /// A number that changes in the same transaction as every write that can change what
    /// `status` shows: applications, environments, targets, what targets report (version and
    /// state), deployments starting or finishing, releases rolled back and backport
    /// obligations. Heartbeats and progress details leave it alone. Read it before the data a
    /// cached view is built from: a view built after reading revision `r` holds at least
    /// everything up to `r`.
    async fn status_revision(&self) -> StoreResult<i64>;
    /// For every application and environment, the newest deployment that went live there
    /// (what `list_deployments` and [`DeploymentRecord::went_live`] give app by app), by
    /// application and environment.
    async fn live_deployments(&self) -> StoreResult<Vec<DeploymentRecord>>;
    /// Every version rolled back in any environment (what `bad_versions` gives one
    /// application and environment at a time), by application, environment and version.
    async fn every_bad_version(&self) -> StoreResult<Vec<BadVersion>>;
}
