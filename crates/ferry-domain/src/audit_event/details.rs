//! The details of each audited change, with the JSON keys ferry has always stored.
//!
//! Fields that older events lack (they were added later) default when read, so every event
//! ferry ever wrote still parses; none of these types refuses keys it does not know, for the
//! same reason (`environment.set-policy` once recorded its whole request).

use serde::{Deserialize, Serialize};

use super::AuditAction;
use crate::app_backup::BackupReason;
use crate::config::ConfigKey;
use crate::config_revision::ConfigChange as KeyChange;
use crate::deployment::{Kind, Status};
use crate::incident::Severity;
use crate::login::LoginMethod;
use crate::permission::Level;
use crate::support::{BackportMode, SupportPath};

/// `server.bootstrap`: the environments created and the admin's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBootstrap {
    /// The pipeline's environments, first first.
    pub pipeline: Vec<String>,
    /// The first admin's user name.
    pub admin: String,
}

/// `team.create`: the team is the subject, `team/NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamCreate {}

/// `team.member`: a user joined a team or changed role there, or left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TeamMemberStored", into = "TeamMemberStored")]
pub enum TeamMember {
    /// Added, or their role changed; `role: None` means their default role applies.
    Set {
        /// The user.
        user: String,
        /// The role they hold in the team, if not their default.
        role: Option<String>,
    },
    /// Taken out of the team.
    Removed {
        /// The user.
        user: String,
    },
}

/// How `team.member` is stored: `{"user", "role"}` (the role may be `null`), or
/// `{"user", "removed": true}`.
#[derive(Clone, Serialize, Deserialize)]
struct TeamMemberStored {
    user: String,
    // Outer `None`: no `role` key (a removal); `Some(None)`: `"role": null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    removed: bool,
}

impl From<TeamMemberStored> for TeamMember {
    fn from(stored: TeamMemberStored) -> TeamMember {
        match stored.removed {
            true => TeamMember::Removed { user: stored.user },
            false => TeamMember::Set {
                user: stored.user,
                role: stored.role.flatten(),
            },
        }
    }
}

impl From<TeamMember> for TeamMemberStored {
    fn from(member: TeamMember) -> TeamMemberStored {
        match member {
            TeamMember::Set { user, role } => TeamMemberStored {
                user,
                role: Some(role),
                removed: false,
            },
            TeamMember::Removed { user } => TeamMemberStored {
                user,
                role: None,
                removed: true,
            },
        }
    }
}

/// `team.support`: the team's rotation (all `None` without one) and escalation time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSupport {
    /// The people of the rotation, in order.
    pub members: Option<Vec<String>>,
    /// How long each person's shift lasts.
    pub shift_ms: Option<i64>,
    /// When the first shift started.
    pub start_ms: Option<i64>,
    /// How long a critical incident may stay unacknowledged before it escalates.
    pub escalate_after_ms: i64,
}

/// `user.create`: the user's default role and teams.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreate {
    /// The default role.
    pub role: String,
    /// The teams they joined.
    pub teams: Vec<TeamRole>,
}

/// `user.rotate-token`: the user is the subject, `user/NAME`; the actor is who rotated it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRotateToken {}

/// `user.disable`: the user is the subject, `user/NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDisable {}

/// `user.enable`: the user is the subject, `user/NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnable {}

/// A team a new user joined, and the role replacing their default role there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRole {
    /// The team.
    pub team: String,
    /// The role there (`None`: the default role applies).
    pub role: Option<String>,
}

/// `role.set-level`: the role is the subject, `role/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSetLevel {
    /// The environment.
    pub env: String,
    /// The role's level there now.
    pub level: Level,
}

/// `environment.create`: the environment is the subject, `environment/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentCreate {
    /// The environment it follows (`None`: the end of the pipeline).
    pub after: Option<String>,
}

/// `environment.delete`: the environment is the subject, `environment/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentDelete {
    /// Where it was in the pipeline (0 for the first); later ones moved down by one.
    pub position: u32,
}

/// `environment.rename`: the environment, under its old name, is the subject
/// (`environment/OLD`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRename {
    /// Its name from now on.
    pub to: String,
}

/// `environment.set-policy`: the fields of the policy that changed (`None`: unchanged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSetPolicy {
    /// Approvals a deployment needs.
    pub approvals: Option<u32>,
    /// Whether requesters may approve their own deployments.
    pub self_approval: Option<bool>,
    /// Whether the environment is protected.
    pub protected: Option<bool>,
    /// Whether releases may skip the environment; absent from events recorded before
    /// environments could be optional, so their encoding (and the chain) is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `environment.freeze` and `environment.unfreeze`: the window added or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    /// `CRON DURATION`, as listed.
    pub window: String,
}

/// `environment.freeze-now`: the environment, the subject, is frozen from the event's time
/// until `until_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeNow {
    /// When the freeze ends (ms since the epoch, UTC).
    pub until_ms: i64,
    /// Why, as given.
    pub reason: String,
    /// The end of the one-off freeze in force that this one replaced, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_until_ms: Option<i64>,
}

/// `environment.unfreeze-now`: the one-off freeze of the environment, the subject, ended at
/// the event's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfreezeNow {
    /// When the freeze would have ended (ms since the epoch, UTC).
    pub until_ms: i64,
    /// Why it was made, and by whom.
    pub frozen_for: String,
    pub frozen_by: String,
    /// Why it ends early, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `app.create`: the application is the subject, `app/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCreate {
    /// The team that owns it.
    pub team: String,
    /// Releases retention keeps.
    pub keep: u32,
}

/// `app.grant`: a user's level on the application in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppGrant {
    /// The user.
    pub user: String,
    /// The environment.
    pub env: String,
    /// The level granted (`none` removes the grant).
    pub level: Level,
}

/// `app.place`: the targets the application runs on in an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPlace {
    /// The environment.
    pub env: String,
    /// The targets, exactly.
    pub targets: Vec<String>,
}

/// `app.keep`: how many releases of the application retention keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKeep {
    /// Releases kept from now on.
    pub keep: u32,
    /// Releases kept before.
    pub was: u32,
}

/// `app.run-as`: the Unix user the application's commands run as on targets whose agent
/// runs as root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRunAs {
    /// The user from now on (`None`: none).
    pub user: Option<String>,
    /// The user before.
    pub was: Option<String>,
}

/// `app.maintainer`: the team that maintains the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMaintainer {
    /// The maintaining team (`None`: its owner).
    pub maintainer: Option<String>,
}

/// `app.backups`: how often the application's data is backed up, and what retention
/// keeps of its backups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppBackups {
    /// How often, as written (`24h`); `None`: no scheduled backups.
    pub every: Option<String>,
    /// What retention keeps, as written (`7,7d,4w`).
    pub keep: String,
}

/// `target.enroll-token`: the target is the subject, `target/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetEnrollToken {
    /// The target's environment.
    pub env: String,
}

/// `target.enroll`: the target is the subject, `target/NAME`; the actor is `agent`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetEnroll {}

/// `target.remove`: the target is the subject, `target/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRemove {
    /// The target's environment.
    pub env: String,
}

/// `drift.capture`: the target is the subject, `target/NAME`; the application is the
/// event's; the actor is who asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCapture {
    /// The target's environment.
    pub env: String,
    /// The agent task that does it.
    pub task: i64,
    /// The version asked for.
    pub version: String,
    /// The hotfix incident it fixes.
    #[serde(default)]
    pub incident: Option<i64>,
}

/// `drift.revert`: the target is the subject, `target/NAME`; the application is the
/// event's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRevert {
    /// The target's environment.
    pub env: String,
    /// The agent task that does it.
    pub task: i64,
    /// The release whose exact content the target gets back.
    pub version: String,
}

/// `drift.captured`: the deployment recording the target running the captured release is
/// the subject, `deployment/ID`; the actor is who asked for the capture. The release's own
/// `release.create` is recorded with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCaptured {
    /// The target whose tree was captured, and its environment.
    pub target: String,
    pub env: String,
    /// The captured release.
    pub version: String,
    /// The release the target ran: the capture is a hotfix of it.
    pub hotfix_of: String,
    /// Paths added, removed and modified compared with `hotfix_of`.
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
}

/// `release.create`: the release is the subject, `release/APP/VERSION`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseCreate {
    /// The manifest's digest.
    pub digest: String,
    /// Files in the release.
    pub files: u64,
    /// Bytes of content.
    pub bytes: u64,
    /// Where the content came from, as the client described it.
    pub source: serde_json::Value,
    /// The release a hotfix is based on.
    #[serde(default)]
    pub hotfix_of: Option<String>,
    /// The incident a hotfix fixes.
    #[serde(default)]
    pub incident: Option<i64>,
    /// Backlog items the release closes.
    #[serde(default)]
    pub closes: Vec<i64>,
    /// Backport obligations the release fulfils.
    #[serde(default)]
    pub backports_done: Vec<i64>,
}

/// `release.prune`: what retention removed from the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePrune {
    /// The versions removed.
    pub removed: Vec<String>,
    /// Releases retention keeps.
    pub keep: u32,
}

/// `backup.request`: the target is the subject, `target/NAME`; the application is the
/// event's. The target was asked to back up the application's data now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRequest {
    /// The target's environment.
    pub env: String,
    /// The agent task that does it.
    pub task: i64,
}

/// `backup.create`: the backup is the subject, `backup/ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupCreate {
    pub env: String,
    pub target: String,
    pub reason: BackupReason,
    /// The release the target ran, if any.
    pub version: Option<String>,
    /// The manifest's digest.
    pub digest: String,
    /// Files in the backup.
    pub files: u64,
    /// Bytes of content.
    pub bytes: u64,
    /// Bytes the server did not hold before.
    pub new_bytes: u64,
}

/// `backup.restore`: the backup is the subject, `backup/ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRestore {
    /// The target whose data is replaced (the backup's own, or another of its environment).
    pub target: String,
    /// The paths restored; empty: every path of the backup.
    pub paths: Vec<String>,
    /// The agent task that does it.
    pub task: i64,
}

/// `backup.prune`: what retention removed from the application's backups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPrune {
    /// The ids of the backups removed.
    pub removed: Vec<i64>,
    /// What retention keeps, as written (`7,7d,4w`).
    pub keep: String,
}

/// `channel.add`: the channel is the subject, `channel/ID`. Never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAdd {
    /// The team it tells.
    pub team: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// Where it delivers, for people.
    pub description: String,
    /// An admin let this webhook reach loopback, link-local and private addresses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
}

/// `channel.remove`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRemove {
    /// The team it told.
    pub team: String,
    /// The channel's id.
    pub channel: i64,
    /// Where it delivered, for people.
    pub description: String,
}

/// `channel.test`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTest {
    /// The team it tells.
    pub team: String,
    /// The channel's id.
    pub channel: i64,
    /// Where it delivers, for people.
    pub description: String,
    /// The test message's id.
    pub message: String,
}

/// `route.set`: the rule is the subject, `route/CATEGORY`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSet {
    /// The incident category.
    pub category: String,
    /// The team its incidents go to.
    pub team: String,
}

/// `route.remove`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRemove {
    /// The incident category.
    pub category: String,
}

/// `incident.open`: the incident is the subject, `incident/ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentOpen {
    /// The environment it happens in.
    pub env: String,
    /// `critical`, `high`, ...
    pub severity: Severity,
    /// What is wrong, in one line.
    pub title: String,
    /// The support path it takes.
    pub path: SupportPath,
    /// The team routing sent it to.
    pub team: String,
    /// Who answers it (`None`: the team's leads).
    pub assignee: Option<String>,
    /// The release production runs, a hotfix's base.
    #[serde(default)]
    pub base_version: Option<String>,
}

/// `incident.ack` and `incident.resolve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentChange {
    /// The incident's id.
    pub incident: i64,
    /// What the person said.
    pub note: Option<String>,
    /// The team it was routed to.
    pub team: String,
    /// Its title.
    pub title: String,
}

/// `incident.escalate`; the actor is `ferry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEscalate {
    /// The incident's id.
    pub incident: i64,
    /// The escalation level reached.
    pub level: u32,
    /// Who answers it now (`None`: the team's leads).
    pub assignee: Option<String>,
    /// The team it was routed to.
    pub team: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
}

/// `incident.rebase`: the hotfix base moved to what production runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRebase {
    /// The incident's id.
    pub incident: i64,
    /// The base recorded when it was opened.
    pub from: String,
    /// The base now.
    pub base_version: String,
    /// The hotfix version suggested for the new base.
    pub suggested_version: String,
    /// The team it was routed to.
    pub team: String,
}

/// `backport.open`: the hotfix release is the subject, `release/APP/VERSION`; the actor is
/// `ferry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackportOpen {
    /// The hotfix that reached production.
    pub hotfix_version: String,
    /// The release it fixed.
    pub base_version: String,
    /// The incident it fixed.
    pub incident: Option<i64>,
    pub mode: BackportMode,
    /// The maintaining team, who owes the fix (`None`: the application is gone).
    pub team: Option<String>,
}

/// `drift.check`: the target is the subject, `target/NAME`; the application is the event's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCheck {
    /// The target's environment.
    pub env: String,
    /// The agent task that does it.
    pub task: i64,
}

/// `drift.detected`: the target is the subject, `target/NAME`; the application is the
/// event's; the actor is `agent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftDetected {
    /// The target's environment.
    pub env: String,
    /// The release the target runs, which its files differ from.
    pub version: String,
    /// How many paths differ.
    pub paths: u64,
    /// The first of them (by path, at most [`DriftDetected::EXAMPLES`]), each with how it
    /// differs.
    pub examples: Vec<DriftedExample>,
    /// The team that maintains the application, who is told.
    pub team: String,
}

impl DriftDetected {
    /// How many paths an event names.
    pub const EXAMPLES: usize = 5;
}

/// One path that differs, in a `drift.detected` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftedExample {
    pub path: String,
    pub change: crate::drift::DriftChange,
}

/// `backport.done`: the obligation is the subject, `backport/ID`; the actor is `ferry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackportDone {
    /// The obligation's id.
    pub backport: i64,
    /// The hotfix whose fix arrived.
    pub hotfix_version: String,
    /// The release that includes the fix.
    pub release: String,
    /// The maintaining team.
    pub team: Option<String>,
}

/// `backport.waive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackportWaive {
    /// The obligation's id.
    pub backport: i64,
    /// The hotfix whose fix will not reach the product line.
    pub hotfix_version: String,
    /// Why.
    pub reason: String,
    /// The maintaining team.
    pub team: String,
}

/// A request for a deployment (`deployment.deploy`, `.stage`, `.rollback`,
/// `.override_guard`, `.break_glass`): what it changes, the overrides it used and the team
/// that owns the application. The store makes the subject `deployment/ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRequested<C> {
    /// What it deploys, or rolls back to.
    #[serde(flatten)]
    pub change: C,
    /// The environment.
    pub env: String,
    /// The regression guard's override, when it was overridden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_guard: Option<GuardOverride>,
    /// Paths of shipped hotfixes the release changes differently, for review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<String>,
    /// The break-glass, when it was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlassUsed>,
    /// The team that owns the application (empty if it has none).
    #[serde(default)]
    pub team: String,
    /// Targets left out because their agent was offline (`--skip-offline`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_offline: Vec<String>,
    /// Why a deployment to a protected environment goes ahead without backing up the
    /// application's data first (`--skip-backup REASON`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_backup: Option<String>,
}

/// A deployment (or staging) of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployChange {
    /// The release.
    pub version: String,
    /// `rolling` or `parallel`, if asked for.
    pub strategy: Option<String>,
    /// Why, if given.
    pub reason: Option<String>,
    /// `--allow-downgrade`.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The configuration revision delivered with the release (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A rollback to a release that went live before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackChange {
    /// The release running when it was asked for.
    pub from: String,
    /// The release it goes back to.
    pub to: String,
    /// Why, if given.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What an overriding request changes: told apart by its keys, since the action's name
/// says which override was used, not what was deployed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestedChange {
    /// A deployment of a release.
    Deploy(DeployChange),
    /// A rollback.
    Rollback(RollbackChange),
}

/// An accepted `--override-guard`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardOverride {
    /// Why.
    pub reason: String,
    /// The shipped hotfixes the release undoes.
    pub overridden: Vec<OverriddenHotfix>,
}

/// A shipped hotfix an overridden release undoes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverriddenHotfix {
    /// The hotfix's version.
    pub hotfix_version: String,
    /// The incident it fixed.
    pub incident: Option<i64>,
    /// The paths that still hold the content from before the fix.
    pub missing: Vec<String>,
}

/// An accepted `--break-glass`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassUsed {
    pub kind: Kind,
    /// Why.
    pub reason: String,
    /// What it overrode, in one line.
    pub summary: String,
}

impl DeploymentRequested<RequestedChange> {
    /// The action a deployment request is audited as: named after the stronger override it
    /// used (break-glass, then the regression guard's), else after what it does;
    /// `stage_only` stages a release without switching (break-glass, past a freeze window, is
    /// the one override it takes).
    pub fn into_action(self, stage_only: bool) -> AuditAction {
        if self.break_glass.is_some() {
            return AuditAction::DeploymentBreakGlass(self);
        }
        if self.override_guard.is_some() {
            return AuditAction::DeploymentOverrideGuard(self);
        }
        let DeploymentRequested {
            change,
            env,
            override_guard,
            review,
            break_glass,
            team,
            skipped_offline,
            skip_backup,
        } = self;
        match change {
            RequestedChange::Deploy(change) => {
                let requested = DeploymentRequested {
                    change,
                    env,
                    override_guard,
                    review,
                    break_glass,
                    team,
                    skipped_offline,
                    skip_backup,
                };
                match stage_only {
                    true => AuditAction::DeploymentStage(requested),
                    false => AuditAction::DeploymentDeploy(requested),
                }
            }
            RequestedChange::Rollback(change) => {
                AuditAction::DeploymentRollback(DeploymentRequested {
                    change,
                    env,
                    override_guard,
                    review,
                    break_glass,
                    team,
                    skipped_offline,
                    skip_backup,
                })
            }
        }
    }
}

/// `deployment.approve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentApprove {
    /// The release approved, exactly.
    pub version: String,
    /// The environment.
    pub env: String,
    /// Why, if given.
    pub reason: Option<String>,
    /// Approvals that count now, this one included.
    pub approvals: u32,
    /// Approvals the environment requires.
    pub required: u32,
    /// Whether this approval started the deployment.
    pub started: bool,
}

/// `deployment.reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentReject {
    /// The release.
    pub version: String,
    /// The environment.
    pub env: String,
    /// Why.
    pub reason: String,
    /// Whether the requester withdrew it rather than an approver rejecting it.
    pub withdrawn: bool,
}

/// `deployment.cancel`: someone stopped a deployment awaiting approval or running. Its
/// targets not switched yet are not switched; switched ones go back, and its end is audited
/// as `deployment.finish` (status `cancelled`) once they have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentCancel {
    /// The release.
    pub version: String,
    /// The environment.
    pub env: String,
    /// Why.
    pub reason: String,
    /// Its status when it was cancelled: `awaiting_approval` or `running`.
    pub was: Status,
    /// The team that owns the application, whose channels hear about it.
    pub team: String,
}

/// `refused`: a change the caller asked for and policy or permission refused; nothing
/// changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// What was asked for, in the words of the command (`deploy web 1.3.0 to prd`).
    pub asked: String,
    /// The rule that refused it: a policy (`frozen`, `lifecycle`, `guard`, `approval`, …)
    /// or `permission`.
    pub rule: String,
    /// The refusal as the caller read it.
    pub reason: String,
}

/// `deployment.finish`; the actor is `ferry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFinish {
    pub status: Status,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// The release.
    pub version: String,
    /// The environment.
    pub env: String,
    /// The configuration revision delivered with the release (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub config: u64,
}

/// `config.change`: an application's configuration in an environment got a new revision
/// (`ferry config set`, `unset`). The keys and how each changed, never a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub env: String,
    /// The revision the change made.
    pub revision: u64,
    pub changes: Vec<KeyChange>,
}

/// `config.reveal`: an admin read back the values of an application's secrets in an
/// environment (`ferry config show --reveal`); the owning team is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReveal {
    pub env: String,
    pub revision: u64,
    /// The secrets whose values were shown.
    pub keys: Vec<ConfigKey>,
    /// The application's owning team.
    pub team: String,
}

/// `config.reseal`: every secret was encrypted again under a new secret key (`ferry server
/// rotate-secret-key`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReseal {
    /// How many revisions held secrets.
    pub revisions: u64,
    /// The new key's id (not the key).
    pub key_id: String,
    /// The old key's id.
    pub previous_key_id: Option<String>,
}

/// `user.set-password`: the user is the subject, `user/NAME`; nothing of the password.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSetPassword {}

/// `user.login`: the user is the subject, `user/NAME`; how they proved who they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLogin {
    /// Their password or their API token.
    pub method: LoginMethod,
}

/// `user.logout`: the user is the subject, `user/NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLogout {}
