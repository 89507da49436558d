//! The storage trait every ferry backend implements (SQLite now, PostgreSQL later), the
//! records it stores, and the conformance story each backend runs in its tests.
//!
//! Architecture invariant: every mutating method of [`Store`] takes the [`AuditRecord`] of the
//! change and commits it to the hash chain in the same transaction, so no change exists
//! without its audit event and no audit event without its change. The few writes that have
//! no audit event are apart, in [`UnauditedWrites`], each saying why none is needed.

#[cfg(feature = "conformance")]
pub mod conformance;
mod notifications;
mod reads;
mod records;

use async_trait::async_trait;
pub use ferry_domain::audit::{AuditEvent, AuditRecord, ChainHead};
use ferry_domain::incident::IncidentStatus;
use ferry_domain::permission::{Level, Role};
use ferry_domain::pipeline::Environment;
use ferry_domain::routing::RoutingRule;
pub use notifications::*;
pub use reads::*;
pub use records::*;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {kind} named {name:?}")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{0}")]
    Refused(String),
    /// The row changed since it was read (another request or another server won the race):
    /// nothing changed; read it again and retry, or give up.
    #[error("{0}")]
    Conflict(String),
    #[error("storage failed: {0}")]
    Backend(String),
}

/// Shorthand for results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// The writes that have no audit event: bookkeeping of agents, deployment steps and
/// notifications, none of which is a person's (or the server's) decision. Each says why it
/// needs no event; `ARCHITECTURE.md` lists them. Anything else that changes state belongs in
/// [`Store`], with its audit record.
#[async_trait]
pub trait UnauditedWrites: Send + Sync + 'static {
    /// Records that a target's agent was heard from: a heartbeat, written every few seconds
    /// while the agent polls; it only tells people when the agent was last seen.
    async fn touch_target(&self, target: &str, now_ms: i64) -> StoreResult<()>;
    /// Records what an agent reported about one application (the release it serves, the
    /// step it is at): an observation of the target, not a change anyone made; the
    /// deployment that asked for it is audited.
    async fn report_target_app(&self, report: TargetReport) -> StoreResult<()>;
    /// Records the step a target reached while it deploys, only while deployment
    /// `deployment_id` is still at `revision` (so a progress report that arrives after the
    /// report that moved the deployment on never overwrites it); whether it was recorded.
    async fn record_target_progress(
        &self,
        report: TargetReport,
        deployment_id: i64,
        revision: i64,
    ) -> StoreResult<bool>;
    /// Saves a deployment's progress: its state machine after an agent's report or a
    /// timeout, with the report and the desired-state changes it leads to, over the
    /// revision it was read at like [`Store::update_deployment`]. The request that started
    /// the deployment and its end are audited; the steps between follow from them and are
    /// kept in the deployment itself.
    async fn record_deployment_progress(&self, update: DeploymentUpdate<'_>) -> StoreResult<()>;
    /// The sequence number of the last audit event turned into deliveries. The first call
    /// on a store sets it to the current end of the audit trail, so enabling notifications
    /// does not replay history; the cursor only says how far the trail was read.
    async fn notification_cursor(&self) -> StoreResult<i64>;
    /// Queues `deliveries` and moves the cursor from `from` to `to`, in one transaction.
    /// Refused, changing nothing, when the cursor is not at `from` (another notifier moved
    /// it). Deliveries are derived from audit events, which are the record.
    async fn advance_notifications(
        &self,
        from: i64,
        to: i64,
        deliveries: Vec<NewDelivery>,
    ) -> StoreResult<()>;
    /// Claims up to `limit` pending deliveries due at `now_ms` on channels in use, oldest
    /// first: no other claim returns them before `claimed_until_ms`, when a notifier that
    /// died while sending them is assumed gone and they are due again. A claim is a lease,
    /// not a change.
    async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Records the outcome of an attempt at `at_ms` and returns the delivery as it is now:
    /// what a receiver answered, not a change anyone made; the delivery log shows it.
    async fn record_attempt(
        &self,
        id: i64,
        at_ms: i64,
        attempt: Attempt,
    ) -> StoreResult<DeliveryRecord>;
}

/// Everything ferry keeps, behind one interface both backends implement. Every write here
/// takes its audit record; the writes without one are [`UnauditedWrites`].
#[async_trait]
pub trait Store: UnauditedWrites {
    /// On an empty store, creates the pipeline, the roles and the first admin and returns
    /// true; on a store that already has users, changes nothing and returns false.
    async fn bootstrap(&self, bootstrap: Bootstrap, audit: AuditRecord) -> StoreResult<bool>;

    /// The user an API token (by its hash) belongs to.
    async fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<User>>;
    /// Creates a user with one API token.
    async fn create_user(&self, user: NewUser, audit: AuditRecord) -> StoreResult<User>;
    /// All users, by name.
    async fn list_users(&self) -> StoreResult<Vec<User>>;

    /// Creates a team.
    async fn create_team(&self, name: &str, audit: AuditRecord) -> StoreResult<Team>;
    /// All teams, by name.
    async fn list_teams(&self) -> StoreResult<Vec<Team>>;

    /// All roles with their levels in every environment.
    async fn list_roles(&self) -> StoreResult<Vec<Role>>;
    /// Sets one role's level in one environment.
    async fn set_role_level(
        &self,
        role: &str,
        env: &str,
        level: Level,
        audit: AuditRecord,
    ) -> StoreResult<Role>;

    /// The pipeline, first environment first.
    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;
    /// Inserts an environment after another (or at the end); it starts with that
    /// environment's policy and every role's level there.
    async fn create_environment(
        &self,
        name: &str,
        after: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<Environment>;
    /// Changes an environment's policy and freeze windows, each part with its audit event,
    /// all in one transaction: refused as a whole (nothing changes) when the environment is
    /// unknown, a window to add exists already or one to remove does not.
    async fn change_environment(
        &self,
        name: &str,
        change: EnvironmentChange,
    ) -> StoreResult<Environment>;

    /// Creates an application owned by a team.
    async fn create_app(&self, app: NewApp, audit: AuditRecord) -> StoreResult<App>;
    /// All applications, by name.
    async fn list_apps(&self) -> StoreResult<Vec<App>>;
    /// One application.
    async fn app(&self, name: &str) -> StoreResult<Option<App>>;

    /// Creates a release and counts a reference to each of its blobs. The same version with
    /// the same digest is `Identical`; with another digest it is refused (releases are
    /// immutable).
    async fn create_release(
        &self,
        release: NewRelease,
        audit: AuditRecord,
    ) -> StoreResult<ReleaseOutcome>;
    /// An application's releases, newest first.
    async fn list_releases(&self, app: &str) -> StoreResult<Vec<Release>>;
    /// One release.
    async fn release(&self, app: &str, version: &str) -> StoreResult<Option<Release>>;
    /// Deletes releases of an application (retention), each with the blobs it referenced,
    /// whose reference counts drop; blobs no release references any more become garbage.
    async fn delete_releases(
        &self,
        app: &str,
        releases: Vec<(String, Vec<String>)>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Whether any release references each blob, by hash: the blobs garbage collection
    /// must keep.
    async fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>>;

    /// Creates the target if it does not exist (refused if it exists in another environment
    /// or is enrolled already) and stores a one-time enrollment token for it.
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
    /// All targets, by name.
    async fn list_targets(&self) -> StoreResult<Vec<Target>>;
    /// Places an application on exactly these targets of an environment.
    async fn place_app(
        &self,
        app: &str,
        env: &str,
        targets: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// The targets an application runs on in an environment: its placements there, or
    /// every target of the environment when it has none.
    async fn placement(&self, app: &str, env: &str) -> StoreResult<Vec<String>>;

    /// Desired and reported state of every target and application, or of one target's.
    async fn target_apps(&self, target: Option<&str>) -> StoreResult<Vec<TargetApp>>;

    /// Creates a running deployment with its first desired-state changes; refused while
    /// another deployment of the app to the environment runs. The audit record's subject
    /// becomes `deployment/ID`. `incident`, when given, is saved in the same transaction (a
    /// hotfix's base moved when the hotfix starts), refused like [`Store::update_incident`]
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
    /// One deployment.
    async fn deployment(&self, id: i64) -> StoreResult<Option<DeploymentRecord>>;
    /// The per-app grants of an application.
    async fn app_grants(&self, app: &str) -> StoreResult<Vec<AppGrant>>;
    /// Sets a user's level on an application in an environment (`none` removes it).
    async fn set_app_grant(&self, grant: AppGrant, audit: AuditRecord) -> StoreResult<()>;
    /// Makes `user` a member of `team` with `role` (`None`: their default role) or changes
    /// their role there; with `remove`, takes them out of the team (not found if they were
    /// not in it).
    async fn set_membership(
        &self,
        team: &str,
        user: &str,
        role: Option<&str>,
        remove: bool,
        audit: AuditRecord,
    ) -> StoreResult<()>;
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
    /// Freeze windows of one environment, or of all.
    async fn freeze_windows(&self, env: Option<&str>) -> StoreResult<Vec<FreezeWindowRecord>>;
    /// Deployments, newest first, of one application or all.
    async fn list_deployments(
        &self,
        app: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<DeploymentRecord>>;
    /// Deployments still running.
    async fn running_deployments(&self) -> StoreResult<Vec<DeploymentRecord>>;
    /// Versions rolled back in an environment.
    async fn bad_versions(&self, app: &str, env: &str) -> StoreResult<Vec<String>>;

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

    /// A team's support settings (no rotation and the default escalation time until set).
    async fn team_support(&self, team: &str) -> StoreResult<TeamSupport>;
    /// Replaces a team's support settings.
    async fn set_team_support(&self, support: TeamSupport, audit: AuditRecord) -> StoreResult<()>;
    /// Names the team that maintains an application (`None`: its owner).
    async fn set_maintainer(
        &self,
        app: &str,
        team: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Routing rules by category.
    async fn routing_rules(&self) -> StoreResult<Vec<RoutingRule>>;
    /// Routes a category to a team (`None` removes the rule; not found if there was none).
    async fn set_routing_rule(
        &self,
        category: &str,
        team: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Records a new incident (its `id` is ignored) and, on the backlog path, a backlog item
    /// for `backlog_team` (the application's maintaining team, whichever team the incident
    /// was routed to). The audit record's subject becomes `incident/ID`.
    async fn open_incident(
        &self,
        incident: IncidentRecord,
        backlog_team: &str,
        audit: AuditRecord,
    ) -> StoreResult<(IncidentRecord, Option<BacklogItem>)>;
    /// Incidents, newest first; of one application when given; resolved ones only with
    /// `resolved`.
    async fn incidents(
        &self,
        app: Option<&str>,
        resolved: bool,
    ) -> StoreResult<Vec<IncidentRecord>>;
    /// One incident.
    async fn incident(&self, id: i64) -> StoreResult<Option<IncidentRecord>>;
    /// Stores an incident's new status, assignee, escalation, history and hotfix base
    /// (base, suggested version and source), provided it still
    /// has the status and escalation level it was read with (refused otherwise: someone else
    /// changed it meanwhile).
    async fn update_incident(
        &self,
        incident: IncidentRecord,
        read_status: IncidentStatus,
        read_level: u32,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Backlog items, newest first; of one application when given.
    async fn backlog(&self, app: Option<&str>) -> StoreResult<Vec<BacklogItem>>;

    /// Backport obligations, newest first; of one application when given.
    async fn backports(&self, app: Option<&str>) -> StoreResult<Vec<Backport>>;
    /// Opens a backport obligation (its `id` is ignored); `None` when the hotfix already has
    /// one, and then nothing changes.
    async fn open_backport(
        &self,
        backport: Backport,
        audit: AuditRecord,
    ) -> StoreResult<Option<Backport>>;
    /// Closes an open obligation as done by `by` (`release VERSION`). `false` when it is no
    /// longer open, and then nothing changes and no audit event is written.
    async fn complete_backport(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Waives an open obligation: `by` and `reason` are recorded (refused unless open).
    async fn waive_backport(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Adds a notification channel to a team (not found if there is no such team). The
    /// audit record's subject becomes `channel/ID`.
    async fn add_channel(
        &self,
        channel: NewChannel,
        audit: AuditRecord,
    ) -> StoreResult<ChannelRecord>;
    /// Channels of one team or of all, oldest first; removed ones only with
    /// `include_removed`.
    async fn channels(
        &self,
        team: Option<&str>,
        include_removed: bool,
    ) -> StoreResult<Vec<ChannelRecord>>;
    /// Removes a team's channel (not found unless the team has it in use): it stays, marked
    /// removed, with its delivery log, and its pending deliveries fail.
    async fn remove_channel(
        &self,
        team: &str,
        id: i64,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Queues a delivery someone asked for (a channel test) with its audit event, whose
    /// sequence number becomes the delivery's `audit_seq`. Refused unless the channel is in
    /// use by the delivery's team.
    async fn queue_delivery(
        &self,
        delivery: NewDelivery,
        audit: AuditRecord,
    ) -> StoreResult<DeliveryRecord>;
    /// Audit events after sequence number `seq`, oldest first, at most `limit`.
    async fn audit_events_after(&self, seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// A team's deliveries, newest first, at most `limit`.
    async fn deliveries(&self, team: &str, limit: u32) -> StoreResult<Vec<DeliveryRecord>>;
    /// One delivery.
    async fn delivery(&self, id: i64) -> StoreResult<Option<DeliveryRecord>>;

    /// Audit events matching a filter, oldest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
    /// The whole chain and its recorded head, for verification.
    async fn audit_chain(&self) -> StoreResult<AuditChain>;
}
