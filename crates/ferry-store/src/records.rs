//! The records a store keeps and returns.

pub use ferry_domain::agent_build::{AgentBuild, DiskSpace};
use ferry_domain::audit::{AuditEvent, AuditRecord, RecordedHead};
use ferry_domain::backport::ObligationStatus;
use ferry_domain::deployment::{Deployment, Kind, Status, TargetAppState};
use ferry_domain::freeze::OneOffFreeze;
use ferry_domain::incident::{IncidentStatus, Severity};
use ferry_domain::permission::{Level, Role};
use ferry_domain::pipeline::Environment;
use ferry_domain::run_as::RunAs;
use ferry_domain::served::Served;
use ferry_domain::support::{BacklogStatus, BackportMode, SupportPath};

/// A team: users and the applications it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    pub name: String,
    pub created_ms: i64,
}

/// A user's membership of a team, with the role that replaces their default role there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub team: String,
    /// `None`: the default role applies inside the team too.
    pub role: Option<String>,
}

/// A person (or a script) with an API token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub default_role: String,
    /// By team name.
    pub teams: Vec<Membership>,
    /// Levels granted on single applications.
    pub grants: Vec<AppGrant>,
    pub created_ms: i64,
    /// When an admin disabled the user; their tokens are refused until they are enabled.
    pub disabled_ms: Option<i64>,
}

/// Who holds an API token, with every role their permissions are judged by: what each
/// request made with a token needs, read on one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHolder {
    pub user: User,
    pub roles: Vec<Role>,
}

/// A level granted to one user on one application in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppGrant {
    pub app: String,
    pub user: String,
    pub env: String,
    pub level: Level,
}

/// A dashboard login: a browser holds a cookie whose hash is `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    pub hash: String,
    pub user: String,
    pub created_ms: i64,
    /// From then on the cookie is refused and the browser asked to log in again.
    pub expires_ms: i64,
}

/// What creating a user needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub default_role: String,
    pub teams: Vec<Membership>,
    /// The hash of the user's first API token.
    pub token_hash: String,
    pub created_ms: i64,
}

/// An application, owned by exactly one team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub team: String,
    /// The team that maintains it and gets its incidents, when not the owner.
    pub maintainer: Option<String>,
    /// Releases kept per application by retention.
    pub keep_releases: u32,
    /// The Unix user its commands run as on targets whose agent runs as root.
    pub run_as: Option<RunAs>,
    pub created_ms: i64,
}

/// What creating an application needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApp {
    pub name: String,
    pub team: String,
    pub keep_releases: u32,
    pub created_ms: i64,
}

/// The policy fields to change; `None` leaves a field as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub approvals_required: Option<u32>,
    pub self_approval: Option<bool>,
    pub protected: Option<bool>,
    pub optional: Option<bool>,
}

/// A change of one environment (see `Pipeline::change_environment`): each part comes with the
/// audit record of that part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentChange {
    /// The policy fields to change.
    pub policy: Option<(PolicyChange, AuditRecord)>,
    /// Freeze windows to remove, by expression as stored.
    pub unfreeze: Vec<(String, AuditRecord)>,
    /// Freeze windows to add.
    pub freeze: Vec<(FreezeWindowRecord, AuditRecord)>,
}

/// What a new store starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    pub environments: Vec<Environment>,
    pub roles: Vec<Role>,
    pub admin: NewUser,
}

/// Which audit events to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events about this application.
    pub app: Option<String>,
    /// Only events by this user (or agent, `agent:TARGET`).
    pub actor: Option<String>,
    /// Only events of this action (`deployment.approve`).
    pub action: Option<String>,
    /// Only events recorded at or after this time.
    pub since_ms: Option<i64>,
    /// Only events recorded before this time.
    pub until_ms: Option<i64>,
    /// Only the last `limit` events.
    pub limit: Option<u32>,
}

/// The whole audit chain as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditChain {
    pub events: Vec<AuditEvent>,
    pub head: Option<RecordedHead>,
}

/// An immutable release of an application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub app: String,
    pub version: String,
    /// The manifest's digest: equal digests, equal trees.
    pub digest: String,
    /// The blob holding the (compressed) manifest.
    pub manifest_blob: String,
    pub files: u64,
    pub bytes: u64,
    /// Where the tree came from, as a JSON document.
    pub source: String,
    pub notes: Option<String>,
    pub created_ms: i64,
    pub created_by: String,
    /// The release a hotfix fixes; `None` for a product release.
    pub hotfix_of: Option<String>,
    /// The incident a hotfix fixes.
    pub incident: Option<i64>,
}

/// What creating a release needs: the release and every blob it references (its content
/// and its manifest), whose reference counts it increments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRelease {
    pub release: Release,
    /// Distinct blob hashes with their sizes.
    pub blobs: Vec<(String, u64)>,
    /// Open backlog items of the application this release closes.
    pub closes: Vec<i64>,
    /// Open backport obligations whose fix this release includes: they are done. Judged
    /// before the release commits, so one closed otherwise meanwhile (waived) is skipped and
    /// left out of the audit details' `backports_done`.
    pub fulfils: Vec<i64>,
}

/// A release made of the hand edits on a target (`ferry drift capture`), and the target
/// running it: stored in one transaction by `Deployments::capture_release`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCapture {
    /// The release (a hotfix of what the target ran), with its `release.create` record.
    pub release: NewRelease,
    pub release_audit: AuditRecord,
    /// The finished deployment that records the target running it, with its desired state
    /// and the target's report, and the `drift.captured` record (its subject becomes
    /// `deployment/ID`).
    pub deployment: DeploymentRecord,
    pub changes: Vec<DesiredChange>,
    pub report: TargetReport,
    pub capture_audit: AuditRecord,
    /// What the drift check of the target finds now: nothing, since the release is its
    /// tree.
    pub drift: DriftReport,
    /// The backport obligation the hotfix opens when the target is in production, with
    /// that event's record.
    pub opens: Option<(Backport, AuditRecord)>,
}

/// What `Deployments::capture_release` stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    pub release: Release,
    pub deployment: DeploymentRecord,
    /// The obligation opened, if any.
    pub backport: Option<Backport>,
}

/// Creating a release twice with the same content is not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Made now; `backports_done` lists the obligations it closed (those of `fulfils` still
    /// open when it committed).
    Created {
        release: Release,
        backports_done: Vec<i64>,
    },
    /// The version already existed with exactly this content; nothing changed.
    Identical(Release),
}

/// A server running `ferry agent`, enrolled into one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub env: String,
    pub enrolled_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub created_ms: i64,
    /// What its agent last said of itself, once it said it.
    pub agent: Option<AgentBuild>,
}

/// What a target should run for one application, and what it last reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetApp {
    pub target: String,
    pub env: String,
    pub app: String,
    pub desired_version: Option<String>,
    /// The configuration revision to deliver with it (0: none).
    pub desired_config: u64,
    pub deployment_id: Option<i64>,
    /// That deployment's kind (deploy or rollback) and release.
    pub deployment_kind: Option<Kind>,
    pub deployment_version: Option<String>,
    /// That deployment's configuration revision (0: none).
    pub deployment_config: u64,
    pub current_version: Option<String>,
    /// The configuration revision `current` serves (0: none).
    pub current_config: u64,
    /// A release to stage ahead (with its configuration revision), while the deployment
    /// asking for it is unfinished.
    pub stage: Option<(Served, i64)>,
    pub state: TargetAppState,
    pub detail: Option<String>,
    pub updated_ms: i64,
    /// How many releases of the application each target keeps (the application's `--keep`).
    pub keep_releases: u32,
    /// The Unix user the application's commands run as on a root agent's target.
    pub run_as: Option<RunAs>,
}

/// A deployment as stored: the domain's state machine plus who, what and when. The state
/// machine is the one source of its status and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentRecord {
    pub id: i64,
    pub app: String,
    pub env: String,
    pub version: String,
    /// The configuration revision it delivers with the release (0: none).
    pub config: u64,
    pub kind: Kind,
    pub state: Deployment,
    /// Grows by one with every stored change: a change is saved only over the revision it
    /// was made from (see `Deployments::update_deployment`).
    pub revision: i64,
    pub requested_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The overrides given on the request, as the server's JSON (`{}` when none): the
    /// approval that starts the deployment judges policy again with them.
    pub overrides: String,
    /// Paths of shipped hotfixes the release changes differently (`HOTFIX: PATH`), listed
    /// for review when it was requested.
    pub review: Vec<String>,
}

impl DeploymentRecord {
    /// Whether the deployment switched its targets to its release and succeeded (a
    /// stage-only deployment never switches).
    pub fn went_live(&self) -> bool {
        self.status() == Status::Succeeded && self.kind != Kind::Stage
    }

    /// Where the deployment is in its life.
    pub fn status(&self) -> Status {
        self.state.status
    }

    /// Why a deployment that did not succeed ended as it did.
    pub fn reason(&self) -> Option<&str> {
        self.state.reason.as_deref()
    }

    /// What it delivers: its release with its configuration revision.
    pub fn served(&self) -> Served {
        Served::new(self.version.clone(), self.config)
    }

    /// For a rollback, the release it went back from (with its configuration revision, as
    /// a `Served` label): what its targets ran before it.
    pub fn went_back_from(&self) -> Option<&str> {
        match self.kind {
            Kind::Rollback => self.state.steps.iter().find_map(|s| s.previous.as_deref()),
            _ => None,
        }
    }
}

/// A change of a deployment to save, with what follows from it (see
/// `Deployments::update_deployment`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentUpdate<'a> {
    /// The deployment as changed, with the revision it was read at.
    pub deployment: &'a DeploymentRecord,
    /// What its targets must run or stage next.
    pub changes: Vec<DesiredChange>,
    /// A rollback that succeeded marks the release it replaced bad in the environment (a
    /// deploy that succeeded clears its own release's mark).
    pub bad_version: Option<String>,
    /// The agent's report that moved it on, saved with it.
    pub report: Option<TargetReport>,
    /// The backport obligation its success opens (a hotfix reached the last environment),
    /// with that event's audit record: opened in the same transaction as the deployment's
    /// end, unless the hotfix has one already (`Deployments::update_deployment` only).
    pub opens: Option<(Backport, AuditRecord)>,
}

impl<'a> DeploymentUpdate<'a> {
    /// Saves `deployment` alone: no desired-state change, mark or report.
    pub fn of(deployment: &'a DeploymentRecord) -> DeploymentUpdate<'a> {
        DeploymentUpdate {
            deployment,
            changes: Vec::new(),
            bad_version: None,
            report: None,
            opens: None,
        }
    }
}

/// What an agent reported about one application on its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReport {
    pub target: String,
    pub app: String,
    /// What `current` points at.
    pub current_version: Option<String>,
    /// The configuration revision `current` serves with it (0: none).
    pub current_config: u64,
    pub state: TargetAppState,
    /// The step reached, or why it failed.
    pub detail: Option<String>,
    pub at_ms: i64,
}

/// An approval of a deployment, naming the exact release approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub deployment_id: i64,
    pub approver: String,
    pub version: String,
    pub reason: Option<String>,
    pub at_ms: i64,
}

/// A freeze window of an environment, as written: `CRON DURATION` (UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezeWindowRecord {
    pub env: String,
    pub expression: String,
    pub created_ms: i64,
}

/// The one-off freeze of an environment (`ferry env freeze`), in force or ended by time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOffFreezeRecord {
    pub env: String,
    pub freeze: OneOffFreeze,
}

/// A change to what targets should run: the version (`None`: nothing) and the deployment
/// asking for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredChange {
    pub target: String,
    pub app: String,
    pub version: Option<String>,
    /// The configuration revision to deliver with `version` (0: none).
    pub config: u64,
    pub deployment_id: i64,
    /// Only stage `version`, ahead of a switch; what the target runs does not change.
    pub stage_only: bool,
}

/// How a team supports its applications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamSupport {
    pub team: String,
    pub rotation: Option<ferry_domain::rotation::Rotation>,
    pub escalate_after_ms: i64,
}

/// An incident, with its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
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
    /// `None`: the team's leads.
    pub assignee: Option<String>,
    pub escalation_level: u32,
    pub base_version: Option<String>,
    pub suggested_version: Option<String>,
    /// Where the base release came from, as JSON.
    pub source: Option<String>,
    pub opened_ms: i64,
    pub acknowledged_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub history: Vec<IncidentStep>,
}

/// A change of an incident, saved only while it still has the status and escalation level
/// it was read with, with the change's audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentUpdate {
    pub incident: IncidentRecord,
    pub read_status: IncidentStatus,
    pub read_level: u32,
    pub audit: AuditRecord,
}

/// One step of an incident's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentStep {
    pub at_ms: i64,
    pub actor: String,
    pub what: String,
}

/// A backlog item: work for the maintaining team in the normal product path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BacklogItem {
    pub id: i64,
    pub app: String,
    pub team: String,
    pub incident: Option<i64>,
    pub title: String,
    pub status: BacklogStatus,
    /// The release that closed it.
    pub closed_by: Option<String>,
    pub created_ms: i64,
    pub closed_ms: Option<i64>,
}

/// A backport obligation: a hotfix that reached production must reach dev too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backport {
    pub id: i64,
    pub app: String,
    pub hotfix_version: String,
    pub base_version: String,
    pub incident: Option<i64>,
    pub mode: BackportMode,
    pub status: ObligationStatus,
    /// The release that includes the fix, or the user who waived it.
    pub closed_by: Option<String>,
    pub reason: Option<String>,
    pub opened_ms: i64,
    pub closed_ms: Option<i64>,
}

/// What one step a target ran in a deployment printed (a hook or the health check), as
/// kept with the deployment: the target, the release it ran it for, and where the step
/// comes among that target's steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLogRecord {
    pub deployment_id: i64,
    pub target: String,
    pub version: String,
    /// The step's place among the target's steps in the deployment, from 0.
    pub position: u32,
    pub log: ferry_domain::step_log::StepLog,
    pub at_ms: i64,
}

/// One path that differs, on a target, from the release it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftedPathRecord {
    /// Relative to the release's root, `/`-separated.
    pub path: String,
    pub change: ferry_domain::drift::DriftChange,
    /// When the agent first saw it differ (its clock).
    pub first_seen_ms: i64,
}

/// What a target's agent last found comparing one application's files with the release it
/// runs: every path that differs, none when it serves the release exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftReport {
    pub target: String,
    pub app: String,
    /// The release the agent compared with (what `current` pointed at).
    pub version: String,
    /// Sorted by path: every path that differs, or the first of them when the agent found
    /// more than the server keeps.
    pub paths: Vec<DriftedPathRecord>,
    /// How many paths differ (at least `paths.len()`).
    pub path_count: u64,
    /// When the server received the findings.
    pub checked_ms: i64,
}

/// The latest drift findings of one target and application, as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetDrift {
    /// The target's environment.
    pub env: String,
    pub report: DriftReport,
}

/// An agent task to store: work asked of one target's agent for one application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub target: String,
    pub app: String,
    /// What to do, as the API's JSON (`{"kind": …}`): the store keeps it whole.
    pub work: String,
    pub requested_by: String,
    pub requested_ms: i64,
}

/// An agent task as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: i64,
    pub target: String,
    /// The target's environment.
    pub env: String,
    pub app: String,
    pub work: String,
    /// As stored: a pending task past its time is shown expired
    /// ([`ferry_domain::task::TaskState::at`]).
    pub state: ferry_domain::task::TaskState,
    /// What the agent said of it.
    pub message: Option<String>,
    /// What the agent reported beyond the message, as JSON.
    pub detail: Option<String>,
    pub requested_by: String,
    pub requested_ms: i64,
    pub finished_ms: Option<i64>,
}

/// How an agent says a task went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskOutcome {
    pub id: i64,
    /// The target whose agent reports it: only its own tasks.
    pub target: String,
    /// Succeeded or failed.
    pub state: ferry_domain::task::TaskState,
    pub message: String,
    pub detail: Option<String>,
    pub finished_ms: i64,
}
