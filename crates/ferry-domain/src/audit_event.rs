//! What ferry audits, typed: one [`AuditAction`] per kind of change, each with the details
//! its event records.
//!
//! An [`AuditRecord`] stores the action's name (`noun.verb`) and its details as JSON text,
//! and the chain's hashes cover that text. The names and JSON keys here are exactly the ones
//! ferry has always written, so stored chains verify and read as before; what is new is that
//! writers build a variant instead of a string and a `json!` document, and readers (the
//! notifier) match on a variant instead of looking keys up, so a renamed field is a compile
//! error rather than a notification that quietly lost a line.

mod details;
#[cfg(test)]
mod tests;

pub use details::*;

use crate::audit::AuditRecord;

/// Declares the actions once: their kinds, names and details types, so the name of a
/// variant, its stored string and the type of its details cannot drift apart.
macro_rules! audit_actions {
    ($( $(#[$doc:meta])* $variant:ident($details:ty) = $name:literal, )*) => {
        /// The kind of an audited change, without its details.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditKind {
            $( $(#[$doc])* $variant, )*
        }

        impl AuditKind {
            /// Every kind ferry writes.
            pub const ALL: &'static [AuditKind] = &[$(AuditKind::$variant),*];

            /// The name stored in the event's `action`, as `noun.verb`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(AuditKind::$variant => $name,)*
                }
            }

            /// The kind stored under `name`, if ferry knows it.
            pub fn from_name(name: &str) -> Option<AuditKind> {
                match name {
                    $($name => Some(AuditKind::$variant),)*
                    _ => None,
                }
            }
        }

        /// A change ferry audits, with what its event records about it.
        #[derive(Clone, Debug, PartialEq)]
        pub enum AuditAction {
            $( $(#[$doc])* $variant($details), )*
        }

        impl AuditAction {
            /// What kind of change this is.
            pub fn kind(&self) -> AuditKind {
                match self {
                    $(AuditAction::$variant(_) => AuditKind::$variant,)*
                }
            }

            /// The details as the JSON document the event stores.
            pub fn details(&self) -> serde_json::Value {
                // Plain data (strings, numbers, lists, JSON values) always serializes.
                match self {
                    $(AuditAction::$variant(details) => {
                        serde_json::to_value(details).expect("audit details serialize")
                    })*
                }
            }

            /// Reads the details stored for an action of `kind`.
            fn from_details(kind: AuditKind, details: &str) -> serde_json::Result<AuditAction> {
                Ok(match kind {
                    $(AuditKind::$variant => AuditAction::$variant(serde_json::from_str(details)?),)*
                })
            }
        }
    };
}

audit_actions! {
    /// The first start created the pipeline, the roles and the admin.
    ServerBootstrap(ServerBootstrap) = "server.bootstrap",
    /// A team was created.
    TeamCreate(TeamCreate) = "team.create",
    /// A user joined a team, changed role there, or left it.
    TeamMember(TeamMember) = "team.member",
    /// A team's support rotation or escalation time was set.
    TeamSupport(TeamSupport) = "team.support",
    /// A user was created with an API token.
    UserCreate(UserCreate) = "user.create",
    /// A user's API token was replaced by a new one; the old one no longer works.
    UserRotateToken(UserRotateToken) = "user.rotate-token",
    /// A user's dashboard password was set (by themselves or an admin); never the password.
    UserSetPassword(UserSetPassword) = "user.set-password",
    /// A user logged in to the dashboard, starting a session.
    UserLogin(UserLogin) = "user.login",
    /// A user logged out of the dashboard, ending their session.
    UserLogout(UserLogout) = "user.logout",
    /// A user was disabled: their tokens are refused until they are enabled again.
    UserDisable(UserDisable) = "user.disable",
    /// A disabled user was enabled again.
    UserEnable(UserEnable) = "user.enable",
    /// A role's level in one environment changed.
    RoleSetLevel(RoleSetLevel) = "role.set-level",
    /// An environment was added to the pipeline.
    EnvironmentCreate(EnvironmentCreate) = "environment.create",
    /// An environment was deleted from the pipeline.
    EnvironmentDelete(EnvironmentDelete) = "environment.delete",
    /// An environment was renamed.
    EnvironmentRename(EnvironmentRename) = "environment.rename",
    /// An environment's approval policy changed.
    EnvironmentSetPolicy(EnvironmentSetPolicy) = "environment.set-policy",
    /// A freeze window was added to an environment.
    EnvironmentFreeze(FreezeWindow) = "environment.freeze",
    /// A freeze window was removed from an environment.
    EnvironmentUnfreeze(FreezeWindow) = "environment.unfreeze",
    /// An environment was frozen from now until a time (`ferry env freeze`).
    EnvironmentFreezeNow(FreezeNow) = "environment.freeze-now",
    /// An environment's one-off freeze was ended before its time (`ferry env unfreeze`).
    EnvironmentUnfreezeNow(UnfreezeNow) = "environment.unfreeze-now",
    /// An application was created.
    AppCreate(AppCreate) = "app.create",
    /// A user's level on an application in one environment was set.
    AppGrant(AppGrant) = "app.grant",
    /// An application was placed on targets of an environment.
    AppPlace(AppPlace) = "app.place",
    /// How many releases retention keeps of an application was changed.
    AppKeep(AppKeep) = "app.keep",
    /// The Unix user an application's commands run as on root agents' targets changed.
    AppRunAs(AppRunAs) = "app.run-as",
    /// The team that maintains an application was named.
    AppMaintainer(AppMaintainer) = "app.maintainer",
    /// How often an application's data is backed up, and which backups are kept, changed.
    AppBackups(AppBackups) = "app.backups",
    /// A target and its one-time enrollment token were created.
    TargetEnrollToken(TargetEnrollToken) = "target.enroll-token",
    /// An agent exchanged its enrollment token for a credential.
    TargetEnroll(TargetEnroll) = "target.enroll",
    /// A target was taken out of service: its agent's credential no longer works.
    TargetRemove(TargetRemove) = "target.remove",
    /// A release was created.
    ReleaseCreate(ReleaseCreate) = "release.create",
    /// Retention removed releases of an application.
    ReleasePrune(ReleasePrune) = "release.prune",
    /// Someone asked a target to back up an application's data now (`ferry backup create`).
    BackupRequest(BackupRequest) = "backup.request",
    /// A target backed up an application's data to the server: the backup exists.
    BackupCreate(BackupCreate) = "backup.create",
    /// Someone asked a target to restore an application's data from a backup.
    BackupRestore(BackupRestore) = "backup.restore",
    /// Retention removed backups of an application.
    BackupPrune(BackupPrune) = "backup.prune",
    /// A notification channel was added to a team.
    ChannelAdd(ChannelAdd) = "channel.add",
    /// A notification channel was removed from a team.
    ChannelRemove(ChannelRemove) = "channel.remove",
    /// Someone sent a test message to a channel.
    ChannelTest(ChannelTest) = "channel.test",
    /// A category of incidents was routed to a team.
    RouteSet(RouteSet) = "route.set",
    /// A routing rule was removed.
    RouteRemove(RouteRemove) = "route.remove",
    /// An incident was opened.
    IncidentOpen(IncidentOpen) = "incident.open",
    /// An incident was acknowledged.
    IncidentAck(IncidentChange) = "incident.ack",
    /// An incident was resolved.
    IncidentResolve(IncidentChange) = "incident.resolve",
    /// Nobody acknowledged a critical incident in time: it went to the next responder.
    IncidentEscalate(IncidentEscalate) = "incident.escalate",
    /// `hotfix start` found production running another release than the incident's base.
    IncidentRebase(IncidentRebase) = "incident.rebase",
    /// A hotfix reached production: its fix is owed to the product line.
    BackportOpen(BackportOpen) = "backport.open",
    /// A release that includes the fix fulfilled a backport obligation.
    BackportDone(BackportDone) = "backport.done",
    /// A backport obligation was waived.
    BackportWaive(BackportWaive) = "backport.waive",
    /// Someone asked a target's agent to capture the hand edits of an application as a
    /// release (`ferry drift capture`).
    DriftCapture(DriftCapture) = "drift.capture",
    /// Hand edits on a target were made a release (a hotfix of the release it ran), which
    /// the target now runs.
    DriftCaptured(DriftCaptured) = "drift.captured",
    /// Someone asked a target's agent to undo the hand edits on the release it runs: what
    /// they hold is kept as a backup first.
    DriftRevert(DriftRevert) = "drift.revert",
    /// An application's configuration in an environment changed: a new revision.
    ConfigChange(ConfigChange) = "config.change",
    /// An admin read back the values of secrets.
    ConfigReveal(ConfigReveal) = "config.reveal",
    /// Every secret was encrypted again under a new secret key.
    ConfigReseal(ConfigReseal) = "config.reseal",
    /// A deployment of a release was requested.
    DeploymentDeploy(DeploymentRequested<DeployChange>) = "deployment.deploy",
    /// A stage-only deployment was requested: the targets stage the release, nothing switches.
    DeploymentStage(DeploymentRequested<DeployChange>) = "deployment.stage",
    /// A rollback was requested.
    DeploymentRollback(DeploymentRequested<RollbackChange>) = "deployment.rollback",
    /// A deployment or rollback was requested overriding the regression guard.
    DeploymentOverrideGuard(DeploymentRequested<RequestedChange>) = "deployment.override_guard",
    /// A deployment or rollback was requested with break-glass.
    DeploymentBreakGlass(DeploymentRequested<RequestedChange>) = "deployment.break_glass",
    /// A deployment awaiting approval was approved.
    DeploymentApprove(DeploymentApprove) = "deployment.approve",
    /// A deployment awaiting approval was rejected or withdrawn.
    DeploymentReject(DeploymentReject) = "deployment.reject",
    /// Someone cancelled a deployment awaiting approval or running.
    DeploymentCancel(DeploymentCancel) = "deployment.cancel",
    /// A deployment finished: succeeded, failed or rolled back, or cancelled.
    DeploymentFinish(DeploymentFinish) = "deployment.finish",
    /// Someone asked a target's agent to check an application for drift now.
    DriftCheck(DriftCheck) = "drift.check",
    /// A target's agent found the first drift on a release it runs: the maintaining team
    /// is told once, not at every check that finds it still there.
    DriftDetected(DriftDetected) = "drift.detected",
    /// A change was refused by policy or permission: nothing changed, but an auditor sees
    /// who tried what (to deploy to prd during a freeze, to approve their own deployment).
    Refused(Refused) = "refused",
}

/// Why a stored event cannot be read as an [`AuditAction`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditParseError {
    /// The action's name is none ferry writes.
    #[error(
        "unknown audit action {0:?}: a newer ferry wrote it (upgrade to read it), or the trail was edited (run `ferry audit verify`)"
    )]
    UnknownAction(String),
    /// The action is known but its details do not have its shape.
    #[error(
        "the details of audit action {} cannot be read ({reason}): run `ferry audit verify` to check the trail",
        .kind.name()
    )]
    Malformed {
        /// The action whose details these are.
        kind: AuditKind,
        /// What is wrong with them.
        reason: String,
    },
}

impl AuditAction {
    /// The action's name as stored, `noun.verb`.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The audit record of this change, made by `actor` at `at_ms` to `subject` (`kind/name`),
    /// about application `app` if any.
    pub fn record(
        &self,
        at_ms: i64,
        actor: &str,
        subject: String,
        app: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            at_ms,
            actor: actor.to_owned(),
            action: self.name().to_owned(),
            subject,
            app: app.map(str::to_owned),
            // Through a `Value`, whose keys are sorted: the text is the same as the `json!`
            // documents ferry wrote before its actions were typed.
            details: self.details().to_string(),
        }
    }

    /// Reads a stored record back as the action it audits.
    pub fn parse(record: &AuditRecord) -> Result<AuditAction, AuditParseError> {
        let kind = AuditKind::from_name(&record.action)
            .ok_or_else(|| AuditParseError::UnknownAction(record.action.clone()))?;
        AuditAction::from_details(kind, &record.details).map_err(|e| AuditParseError::Malformed {
            kind,
            reason: e.to_string(),
        })
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
