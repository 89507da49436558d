//! The wire types of ferry's HTTP API (`/api/v1`), shared by the server, which documents
//! them in its OpenAPI document, and the client, which reads them.
//!
//! API boundary: these types are the contract with scripts; extend them with new optional
//! fields, never rename or remove one without a CHANGELOG.md line.

use std::collections::BTreeMap;

pub use ferry_domain::app_backup::BackupReason;
pub use ferry_domain::backport::ObligationStatus;
pub use ferry_domain::delivery::DeliveryStatus;
pub use ferry_domain::deployment::{
    Kind as DeploymentKind, Outcome, Status as DeploymentStatus, Strategy, TargetAppState,
};
pub use ferry_domain::drift::DriftChange;
pub use ferry_domain::incident::{IncidentStatus, Severity};
pub use ferry_domain::step_log::StepLog;
pub use ferry_domain::support::{BacklogStatus, BackportMode, SupportPath};
pub use ferry_domain::task::TaskState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for scripts (`code`) and people (`message`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of `bad_request`, `unauthorized`, `forbidden`, `not_found`, `already_exists`,
    /// `invalid`, `payload_too_large`, `internal`.
    pub code: String,
    /// One line saying what is wrong and what to do.
    pub message: String,
    /// Structure behind the message, for scripts, when the refusal has any. The regression
    /// guard (`guard`) gives `{"undone": [{"hotfix_version", "incident", "missing"}]}`, one
    /// entry per shipped hotfix the release would undo, newest shipped first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// The caller, as the server knows them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub role: String,
    pub teams: Vec<TeamRole>,
}

/// A team.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Team {
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Creates a team.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
}

/// A membership: the team and the role that replaces the user's default role there
/// (`null`: the default role applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRole {
    pub team: String,
    pub role: Option<String>,
}

/// A member of a team: the role they hold there (`null`: their default role applies) and the
/// role that applies in effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    pub user: String,
    pub role: Option<String>,
    pub effective_role: String,
}

/// Adds a user to a team or changes their role there (`role` absent or `null`: their default
/// role applies inside the team).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    #[serde(default)]
    pub role: Option<String>,
}

/// A user.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub name: String,
    /// The default role.
    pub role: String,
    pub teams: Vec<TeamRole>,
    pub created_at: String,
    /// Disabled by an admin: their tokens are refused until an admin enables them.
    #[serde(default)]
    pub disabled: bool,
    /// When they were disabled, RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

/// Creates a user and their first API token.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    /// The default role; `viewer` when absent.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub teams: Vec<TeamRole>,
}

/// A new user and their API token, shown only this once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: User,
    pub token: String,
}

/// A user's new API token, shown only this once; the old one no longer works.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedToken {
    pub user: String,
    pub token: String,
}

/// An environment of the pipeline and its policy.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    pub name: String,
    /// 0 for the first environment of the pipeline.
    pub position: u32,
    pub approvals: u32,
    pub self_approval: bool,
    pub protected: bool,
    /// Freeze windows, `CRON DURATION` in UTC.
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Releases may skip an optional environment on their way along the pipeline.
    #[serde(default)]
    pub optional: bool,
    /// Set while the environment is frozen: until when, and what holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<FrozenNow>,
    /// The one-off freeze in force (`ferry env freeze`), if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_off_freeze: Option<OneOffFreeze>,
    /// Set when a change left something the caller should know (an environment just
    /// created that releases cannot pass yet, freeze windows that still hold it after an
    /// unfreeze): what it is and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// An environment frozen now: its one-off freeze and its freeze windows, chained.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FrozenNow {
    /// When it thaws, RFC 3339, UTC; absent when it is frozen continuously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Its freeze windows leave no gap: it never thaws on its own.
    #[serde(default)]
    pub continuously: bool,
    /// The reason of the one-off freeze that holds it until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who made the one-off freeze that holds it until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The freeze window that holds it until then, `CRON DURATION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// As people read it: `until 22:00 UTC (release night, by anna)`, `continuously (its
    /// freeze windows leave no gap)`.
    pub summary: String,
}

/// A one-off freeze of an environment (`ferry env freeze`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OneOffFreeze {
    /// When it was made, RFC 3339, UTC.
    pub since: String,
    /// When it ends, RFC 3339, UTC.
    pub until: String,
    pub reason: String,
    /// Who made it.
    pub by: String,
}

/// Freezes an environment from now, for a duration or until a time, with a reason. Freezing
/// an environment frozen this way already replaces that freeze when the new one ends as late
/// or later, and is refused when it would end sooner.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeEnvironment {
    /// How long, as a duration (`2h`, `1h30m`); at most 31 days. Give this or `until`.
    #[serde(default, rename = "for")]
    pub lasting: Option<String>,
    /// Until when, `YYYY-MM-DD HH:MM` in UTC; at most 31 days ahead.
    #[serde(default)]
    pub until: Option<String>,
    /// Why: shown with every refusal while the freeze lasts (at most 200 characters).
    pub reason: String,
}

/// Ends an environment's one-off freeze now.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnfreezeEnvironment {
    /// Why it ends early, for the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Creates an environment after another one (at the end when `after` is absent).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    pub name: String,
    #[serde(default)]
    pub after: Option<String>,
}

/// Renames an environment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameEnvironment {
    /// Its new name.
    pub to: String,
}

/// Changes an environment's policy; absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePolicy {
    #[serde(default)]
    pub approvals: Option<u32>,
    #[serde(default)]
    pub self_approval: Option<bool>,
    #[serde(default)]
    pub protected: Option<bool>,
    /// Whether releases may skip the environment.
    #[serde(default)]
    pub optional: Option<bool>,
    /// Freeze windows to add, `CRON DURATION` in UTC (`0 18 * * FRI 64h`).
    #[serde(default)]
    pub freeze: Vec<String>,
    /// Freeze windows to remove, as listed.
    #[serde(default)]
    pub unfreeze: Vec<String>,
}

/// A role: its level per environment and its capabilities.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub name: String,
    /// Environment name → `none`, `view`, `deploy`, `approve` or `admin`.
    pub levels: BTreeMap<String, String>,
    pub capabilities: Vec<String>,
    pub editable: bool,
}

/// Sets a role's level in one environment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleLevel {
    pub env: String,
    /// `none`, `view`, `deploy`, `approve` or `admin`.
    pub level: String,
}

/// An application, owned by one team.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct App {
    pub name: String,
    pub team: String,
    /// The team that maintains it and gets its incidents, when not its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer: Option<String>,
    /// Releases kept by retention.
    pub keep: u32,
    /// The Unix user its hooks and health checks run as on targets whose agent runs as
    /// root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    pub created_at: String,
    /// How often its data is backed up (as `ferry app set --backup-every` set it, `off`
    /// when not on a schedule), in `GET /api/v1/apps/{name}` and the answer to a change of
    /// its backup settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_every: Option<String>,
    /// Which backups retention keeps, in `GET /api/v1/apps/{name}` and the answer to a
    /// change of its backup settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_keep: Option<String>,
}

/// A level granted to one user on one application in one environment (`none` removes it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppGrant {
    pub user: String,
    pub env: String,
    /// `none`, `view`, `deploy`, `approve` or `admin`.
    pub level: String,
}

/// Creates an application.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub name: String,
    pub team: String,
    /// Releases kept by retention; 10 when absent.
    #[serde(default)]
    pub keep: Option<u32>,
}

/// Changes an application's settings; what is absent stays as it is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeApp {
    /// Releases kept by retention (1 to 1000).
    #[serde(default)]
    pub keep: Option<u32>,
    /// How often its data is backed up on each target (`24h`), or `off`.
    #[serde(default)]
    pub backup_every: Option<String>,
    /// Which backups retention keeps: the newest N, one a day for N days, one a week for N
    /// weeks (`7,7d,4w`).
    #[serde(default)]
    pub backup_keep: Option<String>,
    /// The Unix user its hooks and health checks run as on targets whose agent runs as
    /// root (an admin's setting); `""` clears it.
    #[serde(default)]
    pub run_as: Option<String>,
}

/// One event of the audit trail.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub app: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of checking the whole audit chain.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// Events checked.
    pub events: u64,
    /// The first event where the chain does not hold.
    pub first_bad: Option<BadEvent>,
}

/// Where and why the audit chain breaks.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BadEvent {
    pub seq: i64,
    pub reason: String,
}

/// Blob hashes (64 hex digits) to ask about or fetch.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobHashes {
    pub hashes: Vec<String>,
}

/// The blobs the server does not have yet.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MissingBlobs {
    pub missing: Vec<String>,
}

/// What an upload of a batch of blobs stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredBlobs {
    /// Distinct blobs in the batch.
    pub blobs: u64,
    /// Their bytes: what the caller sent because the server did not hold it for them
    /// (whether another application's releases hold the same content is never told).
    pub new_bytes: u64,
}

/// Creates a release from a manifest whose blobs are all uploaded.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    pub version: String,
    #[schema(value_type = Object)]
    pub manifest: ferry_cas::manifest::Manifest,
    #[schema(value_type = Object)]
    pub source: ferry_cas::source::Source,
    #[serde(default)]
    pub notes: Option<String>,
    /// Accept a tree with no entries.
    #[serde(default)]
    pub allow_empty: bool,
    /// The release this one fixes: a hotfix enters the pipeline at pp.
    #[serde(default)]
    pub hotfix_of: Option<String>,
    /// The incident a hotfix fixes (with `hotfix_of`).
    #[serde(default)]
    pub incident: Option<i64>,
    /// Open backlog items of the application this release closes.
    #[serde(default)]
    pub closes: Vec<i64>,
}

/// A release.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Release {
    pub app: String,
    pub version: String,
    /// The manifest's BLAKE3 digest: equal digests, equal trees.
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    pub notes: Option<String>,
    pub created_at: String,
    pub created_by: String,
    /// The release a hotfix fixes; absent for a product release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotfix_of: Option<String>,
    /// The incident a hotfix fixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
}

/// The answer to creating a release: `created` is false when the version already existed
/// with identical content.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedRelease {
    pub release: Release,
    pub created: bool,
    /// Backlog items this release closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed: Vec<i64>,
    /// Backport obligations this release fulfilled: it includes their hotfix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backports_done: Vec<i64>,
}

/// A path present in only one of two releases.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DiffPath {
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub kind: String,
    pub size: u64,
}

/// A path whose content, mode, kind or target differs between two releases.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DiffModified {
    pub path: String,
    /// `content`, `mode`, `kind` or `target`.
    pub change: String,
    pub old_size: u64,
    pub new_size: u64,
}

/// What changed from one release to another.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseDiff {
    pub app: String,
    pub from: String,
    pub to: String,
    pub added: Vec<DiffPath>,
    pub removed: Vec<DiffPath>,
    pub modified: Vec<DiffModified>,
}

/// Asks for a one-time enrollment token for a new target.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTarget {
    pub env: String,
    pub name: String,
}

/// A one-time enrollment token, shown once; valid for an hour.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentToken {
    pub target: String,
    pub env: String,
    pub token: String,
    pub expires_at: String,
}

/// A target and how it is doing.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Target {
    pub name: String,
    pub env: String,
    pub enrolled: bool,
    pub last_seen: Option<String>,
    /// `online` (its agent was heard from within three heartbeats, 15 s by default),
    /// `offline` or `not_enrolled`; `removed` in the answer to its removal.
    pub health: String,
    /// What its agent last said of itself; absent until it said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<TargetAgent>,
}

/// What a target's agent last said of itself.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetAgent {
    /// Its ferry version (`0.1.0`).
    pub version: String,
    /// The agent protocol it speaks.
    pub protocol: u32,
    /// Bytes free on the filesystem of its root, when it could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free: Option<u64>,
    /// Bytes in all on that filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_total: Option<u64>,
    /// When it said so (RFC 3339).
    pub said_at: String,
}

/// Places an application on exactly these targets of an environment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub env: String,
    pub targets: Vec<String>,
}

/// Asks for a deployment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    pub version: String,
    pub env: String,
    /// `rolling` (default) or `parallel`.
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Only fetch and stage the release on the targets, switching none: a later deployment
    /// of the same release is then only a switch.
    #[serde(default)]
    pub stage_only: bool,
    /// Deploy a release older than the one running (by deployment history).
    #[serde(default)]
    pub allow_downgrade: bool,
    /// Override approvals and freeze windows (admin on the environment; `reason` required).
    #[serde(default)]
    pub break_glass: bool,
    /// Deploy even though the release would undo a shipped hotfix (approve level on the
    /// environment; `reason` required).
    #[serde(default)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline.
    #[serde(default)]
    pub skip_offline: bool,
    /// Why a deployment to a protected environment goes ahead without its targets backing
    /// up the application's data first (audited, and told to the owning team).
    #[serde(default)]
    pub skip_backup: Option<String>,
}

/// Deploys what runs in one environment to the next one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePromotion {
    pub from: String,
    pub to: String,
    /// `rolling` (default) or `parallel`.
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Promote a release older than the one running in `to` (by deployment history).
    #[serde(default)]
    pub allow_downgrade: bool,
    #[serde(default)]
    pub break_glass: bool,
    #[serde(default)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline.
    #[serde(default)]
    pub skip_offline: bool,
    /// Why a deployment to a protected environment goes ahead without its targets backing
    /// up the application's data first (audited, and told to the owning team).
    #[serde(default)]
    pub skip_backup: Option<String>,
}

/// An approval or a rejection of a deployment awaiting approval.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// Required to reject.
    #[serde(default)]
    pub reason: Option<String>,
    /// The release approved; the deployment's own when absent.
    #[serde(default)]
    pub version: Option<String>,
}

/// Cancels a deployment awaiting approval or running.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelDeployment {
    /// Why, for the audit trail and the team's notification.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Asks to go back to a release already on the targets.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRollback {
    pub env: String,
    /// The version to go back to, one that went live in the environment before; the one
    /// before the current one when absent.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Override a freeze window (admin on the environment; `reason` required).
    #[serde(default)]
    pub break_glass: bool,
    /// Go back even though it would undo a shipped hotfix (approve level on the environment;
    /// `reason` required).
    #[serde(default)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline.
    #[serde(default)]
    pub skip_offline: bool,
}

/// One target's part of a deployment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentTarget {
    pub target: String,
    pub previous: Option<String>,
    /// Where the target is in this deployment: `pending`, `deploying`, `succeeded`,
    /// `rolled_back`, `failed`, `rolling_back`, `reverted`, `skipped`, `staging` or `staged`.
    pub state: String,
    pub reason: Option<String>,
    /// The last step the target's agent reported while deploying; once the target
    /// succeeded, what its agent noted with the success, if anything (a release changed on
    /// the target since it was staged, repaired before the switch). Shown for one
    /// deployment, not in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// While the deployment awaits approval, how staging its release ahead goes on the
    /// target: `staging`, `staged` (it only switches once approved) or `stage_failed` (it
    /// stages again when the deployment starts; why in `step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<String>,
}

/// A deployment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: i64,
    pub app: String,
    pub env: String,
    pub version: String,
    /// The configuration revision it delivers with the release (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
    pub kind: DeploymentKind,
    pub status: DeploymentStatus,
    pub strategy: Strategy,
    pub reason: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub targets: Vec<DeploymentTarget>,
    /// Who cancelled it and why, once someone did: a cancelled deployment still runs while
    /// its targets finish their step and go back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
    /// The approvals recorded (shown for one deployment, not in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<DeploymentApproval>>,
    /// While it awaits approval, what it waits for: the approvals its environment asks for
    /// now, and whether the requester may give one (shown for one deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaits: Option<AwaitedApprovals>,
    /// Paths of shipped hotfixes that this release changes differently (merged): allowed by
    /// the regression guard, listed for review (kept with the deployment, for its approvers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<String>,
}

/// The approvals a deployment waits for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AwaitedApprovals {
    /// Approvals needed in all.
    pub required: u32,
    /// Whether the person who asked for it may approve it.
    pub self_approval: bool,
}

/// `ferry deployment logs`: what each target's hooks and health check printed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentLogs {
    pub deployment: i64,
    pub app: String,
    /// Per target (in the deployment's order) and release it ran; a target with nothing
    /// logged (no hooks or health check ran, or it has not reported) has no steps.
    pub targets: Vec<TargetLogs>,
}

/// The steps one target ran for one release of a deployment, in order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetLogs {
    pub target: String,
    pub version: String,
    pub steps: Vec<StepLog>,
}

/// One approval of a deployment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeploymentApproval {
    pub approver: String,
    pub version: String,
    pub reason: Option<String>,
    pub at: String,
}

/// `ferry status`: what runs where.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub apps: Vec<AppStatus>,
}

/// One application in every environment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AppStatus {
    pub app: String,
    pub environments: Vec<EnvStatus>,
    /// Open backport obligations: hotfixes in production that dev does not have yet.
    #[serde(default)]
    pub backports: Vec<Backport>,
}

/// One application in one environment.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvStatus {
    pub env: String,
    /// The version the environment's last successful deployment installed.
    pub version: Option<String>,
    /// The configuration revision it delivered with it (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
    /// When that deployment was a rollback, the release it went back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_from: Option<String>,
    pub targets: Vec<TargetStatus>,
    /// Releases rolled back from this environment: nothing brings them back there unless
    /// someone deploys them by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back_from: Vec<String>,
}

/// One application on one target.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TargetStatus {
    pub target: String,
    pub version: Option<String>,
    /// The configuration revision the target serves with it (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
    pub state: TargetAppState,
    /// Whether the target's files differ from the release it runs (`ferry drift` lists
    /// them); null when its agent found none, or has not checked yet.
    pub drift: Option<DriftSummary>,
}

/// Drift on one target, in short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DriftSummary {
    /// The release the paths differ from.
    pub version: String,
    /// How many paths differ.
    pub paths: u64,
    /// When the first of them was seen (RFC 3339).
    pub since: String,
}

/// What an agent found, for one application, when it compared its target's files with the
/// release it runs (`POST /api/v1/agent/drift`). It sends one after every check whose
/// findings differ from the last it sent, and after every check at least every hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDrift {
    pub app: String,
    /// The release `current` points at, which the paths differ from.
    pub version: String,
    /// Every path that differs, sorted by path; empty when the target serves the release
    /// exactly.
    pub paths: Vec<DriftedPath>,
}

/// The release an agent captured from its target's own files (`ferry drift capture`),
/// submitted once its new content is uploaded (`POST /api/v1/agent/captures`). The server
/// creates it as a hotfix of `hotfix_of`, the release the target ran, and records the target
/// running it; then the agent switches `current` to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentCapture {
    /// The agent task that asked for the capture.
    pub task: i64,
    pub app: String,
    /// The version to create.
    pub version: String,
    /// The release the target ran, which the captured one is a hotfix of.
    pub hotfix_of: String,
    /// The tree as the target holds it (shared and ignored paths as released).
    #[schema(value_type = Object)]
    pub manifest: ferry_cas::manifest::Manifest,
}

/// What the server made of a capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CapturedRelease {
    pub app: String,
    pub version: String,
    pub hotfix_of: String,
    /// The manifest's digest.
    pub digest: String,
    /// The finished deployment recording the target running the release.
    pub deployment: i64,
    /// The backport obligation the hotfix opened (production only).
    #[serde(default)]
    pub backport: Option<i64>,
    /// How many paths differ from `hotfix_of`.
    #[serde(default)]
    pub paths: u64,
    /// Paths added, removed and modified compared with `hotfix_of`, sorted (the first 100
    /// of each; `ferry release diff` lists every path).
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
}

/// What the agent reports of a capture it finished (an agent task's detail): the release,
/// and what it uploaded for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaptureOutcome {
    #[serde(flatten)]
    pub release: CapturedRelease,
    /// Content bytes sent to the server (what it lacked of the new content).
    pub bytes_uploaded: u64,
    /// Files hard-linked into the captured release on the target (none was rewritten).
    pub files_linked: u64,
}

/// One path that differs from the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftedPath {
    /// Relative to the release's root, `/`-separated.
    pub path: String,
    pub change: DriftChange,
    /// When the agent first saw it differ (milliseconds since the Unix epoch, its clock).
    pub first_seen_ms: i64,
}

/// Drift on one target for one application, as `ferry drift` lists it (`GET /api/v1/drift`):
/// the paths that differ from the release the target runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TargetDrift {
    pub target: String,
    pub env: String,
    pub app: String,
    /// The release the paths differ from, which the target runs.
    pub version: String,
    /// How many paths differ: more than `paths` lists when the agent found over 10,000.
    pub count: u64,
    /// The paths that differ, sorted by path.
    pub paths: Vec<DriftedPath>,
    /// When the server last heard the agent's findings (RFC 3339).
    pub checked: String,
}

/// Asks the agents of the targets that run an application to check it for drift now
/// (`POST /api/v1/drift/check`): one task per target.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckDrift {
    /// Only this application; every one the caller may see without it.
    #[serde(default)]
    pub app: Option<String>,
    /// Only the targets of this environment.
    #[serde(default)]
    pub env: Option<String>,
    /// Only this target.
    #[serde(default)]
    pub target: Option<String>,
}

/// Asks a target's agent to make a release of the hand edits of an application it runs
/// (`POST /api/v1/drift/capture`): a hotfix of the release it runs, which it runs from then
/// on. Follow the task with `GET /api/v1/tasks/{id}?wait=…`; its detail is a
/// [`CaptureOutcome`] once it succeeded.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureDrift {
    pub target: String,
    pub app: String,
    /// The version of the release to make.
    pub version: String,
    /// The hotfix incident the edits fix (its base must be the release the target runs).
    #[serde(default)]
    pub incident: Option<i64>,
}

/// Asks a target's agent to undo the hand edits on the release it runs
/// (`POST /api/v1/drift/revert`): what the drifted paths hold is kept as a backup of the
/// application first, then the release's exact content is restored. Follow the task with
/// `GET /api/v1/tasks/{id}?wait=…`; its detail is a [`RevertOutcome`] once it succeeded.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertDrift {
    pub target: String,
    pub app: String,
}

/// What the agent reports of a revert it finished (an agent task's detail).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevertOutcome {
    /// The release whose exact content the target serves again.
    pub version: String,
    /// The paths that differed, and differ no more.
    pub reverted: Vec<DriftedPath>,
    /// The backup keeping what those paths held (none when only deletions were undone).
    #[serde(default)]
    pub backup: Option<i64>,
    /// Files written from the configuration (`[config]` in `ferry.toml`) among them: written
    /// again from its values, and not kept in the backup, as they may hold secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewritten: Vec<String>,
}

/// The checks `POST /api/v1/drift/check` asked for: a task per online target, and the
/// targets left out because their agent is offline (their drift is as last reported).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftChecks {
    pub tasks: Vec<Task>,
    /// Targets left out, by name.
    #[serde(default)]
    pub offline: Vec<String>,
}

/// Work asked of one target's agent for one application, beside converging on what the
/// target should run: what `DesiredState.tasks` carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentTask {
    pub id: i64,
    pub app: String,
    pub work: TaskWork,
}

/// What a task asks the agent to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskWork {
    /// Check the application for drift now and report what it finds.
    CheckDrift,
    /// Make a release named `version` of the application's tree as the target holds it,
    /// hand edits included, and switch to it (`ferry drift capture`).
    CaptureDrift {
        version: String,
        #[serde(default)]
        incident: Option<i64>,
    },
    /// Back up the application's data now (its release's `backup` paths in `shared/`,
    /// after its `pre_backup` hook) and record the backup (`POST /api/v1/agent/backups`).
    BackUp { reason: BackupReason },
    /// Restore the application's data from a backup, after a backup of the data it
    /// replaces: every backup path, or `path` alone.
    RestoreBackup {
        backup: i64,
        /// The backup's manifest: its digest and the blob holding it.
        digest: String,
        manifest_blob: String,
        /// The backup's paths, relative to `shared/`.
        paths: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// Give the application back the exact content of `version`, the release it runs,
    /// keeping what the drifted paths hold as a backup first (`ferry drift revert`).
    RevertDrift { version: String },
}

/// Asks the targets that run an application in an environment to back up its data now
/// (`POST /api/v1/backups`): one task per target.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    pub app: String,
    pub env: String,
    /// Only this target of the environment.
    #[serde(default)]
    pub target: Option<String>,
}

/// Asks a target to restore a backup (`POST /api/v1/backups/{id}/restore`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBackup {
    /// Another target of the backup's environment that runs the application; the backup's
    /// own target without it.
    #[serde(default)]
    pub target: Option<String>,
    /// Only this path (a backup path, or a path inside one), relative to `shared/`.
    #[serde(default)]
    pub path: Option<String>,
}

/// A backup an agent took and whose blobs (its manifest's included) it uploaded
/// (`POST /api/v1/agent/backups`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBackup {
    pub app: String,
    pub reason: BackupReason,
    /// The task that asked for it, if one did.
    #[serde(default)]
    pub task: Option<i64>,
    /// The release the target runs.
    #[serde(default)]
    pub version: Option<String>,
    /// The backup paths, relative to `shared/`.
    pub paths: Vec<String>,
    /// The manifest's digest and the blob holding it (zstd, like a release's).
    pub digest: String,
    pub manifest_blob: String,
    /// Bytes the agent sent because the server lacked them.
    pub new_bytes: u64,
}

/// A backup of an application's data on one target.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AppBackup {
    pub id: i64,
    pub app: String,
    pub env: String,
    pub target: String,
    /// The release the target ran.
    pub version: Option<String>,
    pub reason: BackupReason,
    /// The backup paths, relative to `shared/`.
    pub paths: Vec<String>,
    pub requested_by: String,
    /// RFC 3339.
    pub created: String,
    pub digest: String,
    pub files: u64,
    pub bytes: u64,
    /// Bytes the server did not hold before: what this backup added to the blob storage.
    pub new_bytes: u64,
}

/// How a task went, as its agent says (`POST /api/v1/agent/tasks/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    pub outcome: TaskOutcome,
    /// What happened, in a sentence; why, when it failed.
    pub message: String,
    /// What the task found or made, for the command that asked for it.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// The end of a task an agent reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    Succeeded,
    Failed,
}

/// A task as people see it (`GET /api/v1/tasks/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: i64,
    pub target: String,
    pub env: String,
    pub app: String,
    pub work: TaskWork,
    /// pending, succeeded, failed, or expired (its agent did not answer within an hour).
    pub state: TaskState,
    /// What the agent said of it.
    pub message: Option<String>,
    /// What the task found or made.
    pub detail: Option<serde_json::Value>,
    pub requested_by: String,
    /// RFC 3339.
    pub requested: String,
    /// RFC 3339; absent while pending.
    pub finished: Option<String>,
}

/// The agent protocol this build speaks: raised by a change older agents cannot follow.
/// An agent sends it in [`AGENT_PROTOCOL_HEADER`] on every request; one that sends none
/// speaks protocol 1, which agents spoke before they said so.
pub const AGENT_PROTOCOL: u32 = 1;
/// The oldest agent protocol this build's server still serves.
pub const OLDEST_AGENT_PROTOCOL: u32 = 1;
/// The header of every agent request naming the protocol it speaks.
pub const AGENT_PROTOCOL_HEADER: &str = "ferry-agent-protocol";
/// The header of `GET /healthz` naming the server's ferry version.
pub const SERVER_VERSION_HEADER: &str = "ferry-version";
/// The header of every agent request naming its ferry version.
pub const AGENT_VERSION_HEADER: &str = "ferry-agent-version";
/// The header of an agent's heartbeats with the space on its root's filesystem:
/// `FREE/TOTAL`, in bytes.
pub const AGENT_DISK_HEADER: &str = "ferry-agent-disk";

/// Exchanges an enrollment token for an agent credential.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentEnroll {
    pub token: String,
}

/// The agent's long-lived credential, shown once.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCredential {
    pub target: String,
    pub env: String,
    pub credential: String,
}

/// What a target should run.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DesiredState {
    pub target: String,
    pub env: String,
    /// Grows with every change anywhere; long-poll with `?after=GENERATION`.
    pub generation: u64,
    pub apps: Vec<DesiredApp>,
    /// How often the agent sends a heartbeat (ms): the long-poll answers at least this
    /// often, and an agent busy deploying sends `POST /api/v1/agent/heartbeat` as often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<u64>,
    /// Work asked of the agent now, oldest first: each is done once and reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<AgentTask>,
}

/// One application a target should run.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DesiredApp {
    pub app: String,
    /// `None`: serve nothing.
    pub version: Option<String>,
    pub deployment: Option<i64>,
    /// Going back to a release the target had before (a rollback): switch to it if it is
    /// still on disk, without staging it again.
    #[serde(default)]
    pub switch_back: bool,
    /// A release to fetch and stage ahead of a switch, without serving it.
    #[serde(default)]
    pub stage: Option<DesiredStage>,
    /// How many releases of the application to keep on disk (the application's `--keep`);
    /// the agent never removes the one it serves nor the last that succeeded.
    #[serde(default)]
    pub keep: Option<u32>,
    /// Back up the application's data (its running release's `backup` paths) before
    /// switching to `version`: a deployment to a protected environment, not skipped. A
    /// failed backup fails the deploy, which switches nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backup_first: bool,
    /// The configuration revision delivered with `version` (0: none): its values are
    /// fetched from `GET /api/v1/agent/apps/{app}/config/{revision}`, written into the
    /// release as its `ferry.toml` says, and given to hooks and the health check. A
    /// release with another revision is another directory on the target.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
    /// The Unix user the application's hooks and health checks run as when the agent runs
    /// as root (`ferry app set APP --run-as USER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A release a target is asked to stage ahead, and the deployment to report to (outcome
/// `staged` or `stage_failed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DesiredStage {
    pub version: String,
    pub deployment: i64,
    /// The configuration revision to stage it with (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
}

/// What an agent reports after converging one application.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentReport {
    pub app: String,
    pub deployment: i64,
    /// For a release staged ahead, `staged` or `stage_failed`; `progress` while a deploy
    /// goes on, with the step in `reason`.
    pub outcome: Outcome,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub output_tail: Option<String>,
    /// What `current` points at now.
    #[serde(default)]
    pub current_version: Option<String>,
    /// The release the report is about (the one deployed, or gone back to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The configuration revision `current` serves with its release (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current_config: u64,
    /// The configuration revision the report is about, with `version` (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
    /// The hooks and health check the deploy ran, in order, with their output (bounded as
    /// `ferry_domain::step_log` says); none in progress and staging reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<StepLog>,
}

/// Opens an incident.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenIncident {
    pub app: String,
    pub env: String,
    /// critical, high, medium or low.
    pub severity: String,
    pub title: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One step of an incident's history.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentStep {
    pub at: String,
    pub actor: String,
    pub what: String,
}

/// An incident and the support path ferry planned for it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    pub id: i64,
    pub app: String,
    pub env: String,
    pub severity: Severity,
    pub title: String,
    pub category: Option<String>,
    pub description: Option<String>,
    pub status: IncidentStatus,
    pub path: SupportPath,
    /// The team it was routed to.
    pub team: String,
    pub reporter: String,
    /// The person responsible now; `null`: the team's leads.
    pub assignee: Option<String>,
    /// 0: the on-call person; 1: the next one; 2: the team's leads.
    pub escalation_level: u32,
    /// On a hotfix path: the release running in production, which the hotfix starts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_version: Option<String>,
    /// Where the base release came from (git commit, svn revision or directory) and the
    /// `ferry release export` command that writes its tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub source: Option<serde_json::Value>,
    /// On the backlog path: the backlog item made for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog_item: Option<i64>,
    /// The release that closed that backlog item, once one did (shown for one incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog_closed_by: Option<String>,
    pub opened_at: String,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub history: Vec<IncidentStep>,
}

/// A note that comes with acknowledging or resolving an incident.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentNote {
    #[serde(default)]
    pub note: Option<String>,
}

/// What `ferry hotfix start` did and what comes next.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HotfixPlan {
    pub incident: i64,
    pub path: SupportPath,
    /// The release the hotfix is built from: what production runs now.
    pub base_version: String,
    /// The base recorded when the incident was opened, when production has run another
    /// release since (another hotfix shipped): the hotfix starts from `base_version` instead,
    /// and the incident now records that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebased_from: Option<String>,
    pub suggested_version: String,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    /// The deployment that makes pp run the base release.
    pub deployment: Deployment,
    /// The steps that follow, as commands.
    pub next: Vec<String>,
}

/// A backlog item.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BacklogItem {
    pub id: i64,
    pub app: String,
    pub team: String,
    pub incident: Option<i64>,
    pub title: String,
    pub status: BacklogStatus,
    /// The release that closed it.
    pub closed_by: Option<String>,
    pub created_at: String,
    pub closed_at: Option<String>,
}

/// A backport obligation: a hotfix that reached production must reach dev too.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Backport {
    pub id: i64,
    pub app: String,
    pub hotfix_version: String,
    pub base_version: String,
    pub incident: Option<i64>,
    pub mode: BackportMode,
    pub status: ObligationStatus,
    pub closed_by: Option<String>,
    pub reason: Option<String>,
    pub opened_at: String,
    pub closed_at: Option<String>,
}

/// Waives a backport obligation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiveBackport {
    pub reason: String,
}

/// A team's support rotation and escalation time.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TeamSupport {
    pub team: String,
    /// Members in the order they take turns; empty: no rotation (the team's leads answer).
    pub members: Vec<String>,
    /// Each member's turn, like `7d` or `12h`.
    pub shift: Option<String>,
    /// When the first member's first turn starts (RFC 3339, UTC).
    pub start: Option<String>,
    /// How long a critical incident may stay unacknowledged before it escalates.
    pub escalate_after: String,
    /// Who is on call now.
    pub on_call: Option<String>,
    /// When the turn passes to the next member.
    pub hand_over_at: Option<String>,
}

/// Changes a team's support settings; absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTeamSupport {
    #[serde(default)]
    pub members: Option<Vec<String>>,
    #[serde(default)]
    pub shift: Option<String>,
    /// RFC 3339; default: now.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub escalate_after: Option<String>,
}

/// Sends incidents of a category to a team.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub category: String,
    pub team: String,
}

/// Names the team that maintains an application (`null`: its owner).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMaintainer {
    pub team: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Notifications: each team's channels and the delivery log.

/// A channel to add to a team: `{"kind": "webhook", "url": .., "secret": ..}` (the message
/// posted as JSON, signed with HMAC-SHA256 of the secret in `X-Ferry-Signature`) or
/// `{"kind": "email", "smtp": .., "from": .., "to": [..]}`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AddChannel {
    /// An HTTP POST of each message.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// The HMAC key, at least 16 bytes; never shown again.
        secret: String,
        /// Let the webhook reach loopback, link-local and private addresses (admins only);
        /// without it, a URL or host name that leads there is refused.
        #[serde(default)]
        allow_private: bool,
    },
    /// An e-mail of each message.
    Email {
        /// `smtp://[USER:PASSWORD@]HOST[:PORT]` or `smtp+starttls://USER:PASSWORD@HOST[:PORT]`.
        smtp: String,
        /// The sender address.
        from: String,
        /// 1 to 20 recipient addresses.
        to: Vec<String>,
    },
}

// Hand-written so that logging a request never prints the secret or the SMTP password.
impl std::fmt::Debug for AddChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddChannel::Webhook { .. } => f.write_str("AddChannel::Webhook { .. }"),
            AddChannel::Email { from, to, .. } => f
                .debug_struct("AddChannel::Email")
                .field("from", from)
                .field("to", to)
                .finish_non_exhaustive(),
        }
    }
}

/// A notification channel of a team, without its secret or password.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationChannel {
    /// What `ferry channel test|remove TEAM ID` takes.
    pub id: i64,
    /// The team whose notifications it receives.
    pub team: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// One line, like `webhook https://hooks.example.com/ferry` or
    /// `email to ops@example.com from ferry@example.com via smtp://mail.example.com:25`.
    pub description: String,
    /// The user who added it.
    pub created_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// One message to one channel, and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Unique, in the order deliveries were queued.
    pub id: i64,
    /// The team the channel belongs to.
    pub team: String,
    /// The channel's id.
    pub channel: i64,
    /// The channel's description (kept after the channel is removed).
    pub channel_description: String,
    /// What happened, like `incident.open`, `deployment.break_glass` or `channel.test`.
    pub event: String,
    /// The message's one-line summary (the e-mail subject).
    pub subject: String,
    /// `pending` (waiting for its next attempt), `delivered` or `failed` (given up).
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts made at most before ferry gives up.
    pub max_attempts: u32,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// What the receiver answered when it accepted the message, like `HTTP 200`.
    pub detail: Option<String>,
    /// The audit event it comes from.
    pub audit_seq: Option<i64>,
    /// When it was queued (RFC 3339, UTC, like every time here).
    pub created_at: String,
    /// When the last attempt was made.
    pub last_attempt_at: Option<String>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<String>,
    /// When it was delivered or given up.
    pub finished_at: Option<String>,
    /// The message as sent: `id, event, subject, text, data, sent_at_ms`.
    #[schema(value_type = Object)]
    pub message: serde_json::Value,
}

pub use ferry_domain::config_revision::ChangeKind;

/// A change to an application's configuration in an environment (`POST
/// /api/v1/apps/{app}/config/{env}`): keys to set and keys to remove, in one new revision.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigEdit {
    #[serde(default)]
    pub set: Vec<ConfigAssignment>,
    /// The keys set are secrets: encrypted at rest, masked when shown. A secret set again
    /// without it stays a secret.
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// One key and its value.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigAssignment {
    pub key: String,
    pub value: String,
}

/// What a change did: the revision it made (or the newest, when it changed nothing).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigEdited {
    pub app: String,
    pub env: String,
    pub revision: u64,
    /// False when every value was as asked already: no revision was made.
    pub changed: bool,
    pub changes: Vec<ConfigKeyChange>,
}

/// How a revision changed one key (never its value).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigKeyChange {
    pub key: String,
    pub change: ChangeKind,
    pub secret: bool,
}

/// An application's configuration in an environment at one revision.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigView {
    pub app: String,
    pub env: String,
    /// 0: nothing was ever set.
    pub revision: u64,
    /// When the revision was made (RFC 3339) and by whom.
    pub created: Option<String>,
    pub author: Option<String>,
    pub entries: Vec<ConfigEntry>,
    /// Whether secrets' values are shown (`?reveal=true`, admins, audited).
    #[serde(default)]
    pub revealed: bool,
}

/// One key of a configuration.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigEntry {
    pub key: String,
    pub secret: bool,
    /// The value; `None` for a secret not revealed.
    pub value: Option<String>,
}

/// One revision in a configuration's history.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigRevisionSummary {
    pub revision: u64,
    /// RFC 3339.
    pub created: String,
    pub author: String,
    pub keys: u64,
    pub changes: Vec<ConfigKeyChange>,
}

/// How an application's configuration differs between two environments, by key only.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigComparison {
    pub app: String,
    pub first: String,
    pub second: String,
    /// The newest revisions compared (0: none).
    pub first_revision: u64,
    pub second_revision: u64,
    pub only_in_first: Vec<String>,
    pub only_in_second: Vec<String>,
    /// Keys both have, with different values (secrets compared without being shown).
    pub differ: Vec<String>,
    /// Keys both have with the same value.
    pub same: Vec<String>,
}

/// A configuration revision's values, for an agent whose target is asked to run (or runs)
/// the application with it (`GET /api/v1/agent/apps/{app}/config/{revision}`). The one
/// answer that carries secrets' values; never logged.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentConfig {
    pub app: String,
    pub env: String,
    pub revision: u64,
    pub values: std::collections::BTreeMap<String, String>,
}

/// Deploys the release an environment runs with its newest configuration revision
/// (`POST /api/v1/apps/{app}/config/{env}/apply`): a deployment like any other, under the
/// environment's policy (freezes, approvals, health checks, rollback on failure).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyConfig {
    /// `rolling` (default) or `parallel`.
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Override approvals and freeze windows (admin on the environment; `reason` required).
    #[serde(default)]
    pub break_glass: bool,
    /// Leave out targets whose agent is offline instead of refusing.
    #[serde(default)]
    pub skip_offline: bool,
    /// Why a protected environment's targets do not back up the application's data first.
    #[serde(default)]
    pub skip_backup: Option<String>,
}

/// A user's new dashboard password (`PUT /api/v1/users/{name}/password`).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    pub password: String,
}

/// Never shows the password.
impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPassword { .. }")
    }
}

/// Whose password was set.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PasswordSet {
    pub user: String,
}
