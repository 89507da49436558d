//! The storage trait every ferry backend implements (SQLite now, PostgreSQL later), the
//! records it stores, and the conformance story each backend runs in its tests.
//!
//! Architecture invariant: every mutating method of [`Store`] takes the [`AuditRecord`] of the
//! change and commits it to the hash chain in the same transaction, so no change exists
//! without its audit event and no audit event without its change. The few writes that have
//! no audit event are apart, in [`UnauditedWrites`], each saying why none is needed.

mod app_backups;
mod configuration;
#[cfg(feature = "conformance")]
pub mod conformance;
mod content_hold;
mod notifications;
mod parts;
mod reads;
mod records;
mod schema_plan;

pub use app_backups::*;
use async_trait::async_trait;
pub use configuration::*;
pub use content_hold::*;
pub use ferry_domain::audit::{AuditEvent, AuditRecord, ChainHead, RecordedHead};
use ferry_domain::incident::IncidentStatus;
use ferry_domain::permission::{Level, Role};
use ferry_domain::pipeline::Environment;
use ferry_domain::routing::RoutingRule;
pub use notifications::*;
pub use parts::*;
pub use reads::*;
pub use records::*;
pub use schema_plan::*;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {kind} named {name:?}{}", where_to_look(kind))]
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
    /// Another process held the database locked longer than the store waits: nothing
    /// changed; the request may succeed later.
    #[error("{0}")]
    Locked(String),
    /// The audit trail's recorded head does not carry its seal under this store's key: the
    /// trail was cut short, or the key is another trail's. No change can be recorded.
    #[error("{0}")]
    UnsealedTrail(String),
}

/// Where a user sees the things of a kind, for a "no such thing" error.
fn where_to_look(kind: &str) -> &'static str {
    match kind {
        "application" => ": see `ferry app list`",
        "environment" => ": see `ferry env list`",
        "role" => ": see `ferry role list`",
        "target" => ": see `ferry target list`",
        "team" => ": see `ferry team list`",
        "user" => ": see `ferry user list`",
        "freeze window" => ": `ferry env list` shows them",
        "routing rule for category" => ": see `ferry route list`",
        _ => "",
    }
}

/// Shorthand for results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// The writes that have no audit event: bookkeeping of agents, deployment steps and
/// notifications, none of which is a person's (or the server's) decision. Each says why it
/// needs no event; `ARCHITECTURE.md` lists them. Anything else that changes state belongs in
/// [`Store`], with its audit record.
#[async_trait]
pub trait UnauditedWrites: Send + Sync + 'static {
    /// Records when targets' agents were heard from (target, heard at), in one transaction:
    /// heartbeats, written every few seconds while agents poll; they only tell people when
    /// an agent was last seen. A removed target's heartbeat changes nothing.
    async fn touch_targets(&self, heard: &[(String, i64)]) -> StoreResult<()>;
    /// Records what a target's agent said of itself (its build, its disk): an observation,
    /// like a heartbeat. A removed target's changes nothing.
    async fn record_agent_build(&self, target: &str, build: &AgentBuild) -> StoreResult<()>;
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
    /// revision it was read at like [`Deployments::update_deployment`]. The request that started
    /// the deployment and its end are audited; the steps between follow from them and are
    /// kept in the deployment itself.
    async fn record_deployment_progress(&self, update: DeploymentUpdate<'_>) -> StoreResult<()>;
    /// Keeps what `target`'s hooks and health check printed deploying `version` in
    /// deployment `deployment_id`, in order after the steps it logged for other releases
    /// of it, replacing what it logged for `version` before (a deploy run again after the
    /// agent reconnected). What a target printed is an observation; the deployment that
    /// asked for it is audited. Nothing changes when `logs` is empty.
    async fn record_step_logs(
        &self,
        deployment_id: i64,
        target: &str,
        version: &str,
        logs: Vec<ferry_domain::step_log::StepLog>,
        at_ms: i64,
    ) -> StoreResult<()>;
    /// Keeps what `report.target`'s agent last found comparing `report.app`'s files with
    /// the release it runs, replacing what it found before (an empty list says it found
    /// nothing). Drift is an observation of the target, like [`Self::report_target_app`]:
    /// nobody decided it, and the hand edits it reveals were made outside ferry. Not found
    /// when the target (in service) or the application does not exist.
    ///
    /// When these are the first findings of drift on the release (the last found none, or
    /// were about another release), `detected` is appended to the audit trail in the same
    /// transaction, so the maintaining team hears of it once; returns whether it was.
    async fn record_drift(&self, report: DriftReport, detected: AuditRecord) -> StoreResult<bool>;
    /// Records how an agent says one of its target's pending tasks went, and returns the
    /// task as it is now: what the agent did, not a decision (the request was audited, and
    /// what the task changed is audited by its own call). Not found when the task is not
    /// `outcome.target`'s; refused when it is over already.
    async fn finish_task(&self, outcome: TaskOutcome) -> StoreResult<TaskRecord>;
    /// Claims `key_id` as the id of the secret key the installation's secrets are sealed
    /// with, when none is claimed yet, and returns the id claimed (this one, or the one a
    /// server claimed first). Bookkeeping of a file no one chose in ferry, like the audit
    /// key: it lets every server sharing the database refuse to start with another key
    /// before any secret exists. `Configuration::reseal_config` changes it, audited.
    async fn claim_secret_key(&self, key_id: &str) -> StoreResult<String>;
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
    /// Claims up to `limit` pending deliveries that are `due` on channels in use, oldest
    /// first, until `due.claimed_until_ms`. A claim is a lease, not a change.
    async fn claim_due_deliveries(
        &self,
        due: DueDeliveries,
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

/// Everything ferry keeps, behind one interface both backends implement, in parts by
/// resource (`parts/`). Every write in the parts takes its audit record; the writes without
/// one are [`UnauditedWrites`]. Callers bring the parts' methods into scope with
/// `use ferry_store::prelude::*`.
pub trait Store:
    UnauditedWrites
    + Access
    + Pipeline
    + Catalog
    + Fleet
    + Deployments
    + Support
    + Notifications
    + AuditTrail
    + AppBackups
    + Configuration
{
}

impl<T> Store for T where
    T: UnauditedWrites
        + Access
        + Pipeline
        + Catalog
        + Fleet
        + Deployments
        + Support
        + Notifications
        + AuditTrail
        + AppBackups
        + Configuration
{
}

/// The store's traits, to call their methods on a `dyn Store`.
pub mod prelude {
    pub use crate::{
        Access, AppBackups, AuditTrail, Catalog, Configuration, Deployments, Fleet, Notifications,
        Pipeline, Store, Support, UnauditedWrites,
    };
}
