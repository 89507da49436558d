//! Targets: enrollment, credentials, placements, and what each should run and reported.

use async_trait::async_trait;

use crate::*;

/// Targets: enrollment, credentials, placements, and what each should run and reported.
#[async_trait]
pub trait Fleet: Send + Sync + 'static {
    /// Creates the target if it does not exist (refused if it exists in another environment
    /// or is enrolled already) and stores a one-time enrollment token for it. A removed
    /// target of that environment comes back, not enrolled, to be taken over by a new agent.
    async fn create_enrollment(
        &self,
        env: &str,
        target: &str,
        token_hash: &str,
        expires_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<Target>;
    /// Consumes an unexpired enrollment token and stores the agent's credential. The audit
    /// record's subject becomes `target/NAME`.
    async fn enroll_target(
        &self,
        token_hash: &str,
        credential_hash: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<Target>;
    /// The target an agent credential (by its hash) belongs to.
    async fn target_by_credential(&self, credential_hash: &str) -> StoreResult<Option<Target>>;
    /// All targets in service (not removed), by name.
    async fn list_targets(&self) -> StoreResult<Vec<Target>>;
    /// Takes a target out of service: its agent's credential and its unused enrollment
    /// tokens stop working, and it leaves the target list, placements and what targets
    /// report. Its history stays (deployments, audit) and so does what it should run, for
    /// the agent that enrolls under its name again. Not found when there is no such target
    /// in service.
    async fn remove_target(
        &self,
        target: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<Target>;
    /// Places an application on exactly these targets of an environment.
    async fn place_app(
        &self,
        app: &str,
        env: &str,
        targets: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// The targets an application runs on in an environment: its placements there (those
    /// in service), or every enrolled target of the environment when it has none.
    async fn placement(&self, app: &str, env: &str) -> StoreResult<Vec<String>>;

    /// Desired and reported state of every target in service and application, or of one
    /// target's.
    async fn target_apps(&self, target: Option<&str>) -> StoreResult<Vec<TargetApp>>;

    /// The latest drift findings ([`UnauditedWrites::record_drift`]) of every target in
    /// service, or of one application's, by application and target.
    async fn target_drift(&self, app: Option<&str>) -> StoreResult<Vec<TargetDrift>>;

    /// Stores a task for a target's agent (in service) about an application, with the audit
    /// record of the operation it starts; the record's details may name the task as
    /// `"task": 0`, which is replaced with its number. Not found when the target or the
    /// application does not exist.
    async fn request_task(&self, task: NewTask, audit: AuditRecord) -> StoreResult<TaskRecord>;
    /// One task, by number.
    async fn task(&self, id: i64) -> StoreResult<Option<TaskRecord>>;
    /// The pending tasks of `target` requested since `since_ms`, oldest first.
    async fn pending_tasks(&self, target: &str, since_ms: i64) -> StoreResult<Vec<TaskRecord>>;
}
