//! The words a deployment and the targets it drives are described with.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a deployment does.
    pub enum Kind ("deployment kind") {
        /// Switches the targets to a release.
        Deploy = "deploy",
        /// Switches the targets back to a release that ran in the environment before.
        Rollback = "rollback",
        /// Fetches and stages a release on every target, switching none.
        Stage = "stage",
    }
}

vocabulary! {
    /// Where a deployment is in its life. It starts awaiting approval (when its environment
    /// asks for approvals) or running; it ends in exactly one of the other statuses.
    // Named apart in the OpenAPI document from the status document, `ferry_api::Status`.
    #[cfg_attr(feature = "openapi", schema(as = DeploymentStatus))]
    pub enum Status ("deployment status") {
        /// Waits for approvals while its targets stage the release; it starts with the last
        /// approval it needs.
        AwaitingApproval = "awaiting_approval",
        /// Its targets are being switched (or staged).
        Running = "running",
        /// Every target runs (or has staged) the release.
        Succeeded = "succeeded",
        /// At least one target failed and every target serves its previous release again.
        RolledBack = "rolled_back",
        /// At least one target failed and could not be put back (no previous release, or it
        /// did not answer), or the deployment ran past its deadline.
        Failed = "failed",
        /// An approver refused it before it started; nothing was switched.
        Rejected = "rejected",
        /// The person who asked for it took it back before it started; nothing was switched.
        Withdrawn = "withdrawn",
        /// Someone stopped it (`ferry deployment cancel`): targets not switched yet were not
        /// switched, and the switched ones went back to their previous release.
        Cancelled = "cancelled",
    }
}

impl Status {
    /// Whether the deployment may still change: it awaits approval or runs. An application
    /// has at most one active deployment per environment.
    pub fn is_active(self) -> bool {
        matches!(self, Status::AwaitingApproval | Status::Running)
    }
}

vocabulary! {
    /// What an agent reports about one application its target was asked to run or stage.
    pub enum Outcome ("report outcome") {
        /// The release is live and healthy (or, asked to go back, the previous one is).
        Succeeded = "succeeded",
        /// The deploy failed after the switch; the target put back its previous release.
        RolledBack = "rolled_back",
        /// The deploy failed before the switch (the target serves what it served), or the
        /// target has nothing to serve, or could not go back.
        Failed = "failed",
        /// The release is staged, ready to be switched to.
        Staged = "staged",
        /// The release could not be staged; what the target runs did not change.
        StageFailed = "stage_failed",
        /// Still working: the step reached so far (in the report's reason).
        Progress = "progress",
    }
}

impl Outcome {
    /// Whether the report is about staging ahead, which never changes what the target runs.
    pub fn is_staging(self) -> bool {
        matches!(self, Outcome::Staged | Outcome::StageFailed)
    }

    /// The state `ferry status` shows for the application on the target after this report;
    /// `None` for a report about staging ahead, which leaves it as it was.
    pub fn target_app_state(self) -> Option<TargetAppState> {
        match self {
            Outcome::Succeeded => Some(TargetAppState::Succeeded),
            Outcome::RolledBack => Some(TargetAppState::RolledBack),
            Outcome::Failed => Some(TargetAppState::Failed),
            Outcome::Progress => Some(TargetAppState::Deploying),
            Outcome::Staged | Outcome::StageFailed => None,
        }
    }
}

vocabulary! {
    /// What a target last reported about one application, as `ferry status` shows it.
    pub enum TargetAppState ("target state") {
        /// Asked to run something, nothing reported yet.
        Unknown = "unknown",
        /// Working on a deployment; the step reached is reported beside it.
        Deploying = "deploying",
        /// Runs the release it was asked to.
        Succeeded = "succeeded",
        /// Failed after its switch and serves its previous release again.
        RolledBack = "rolled_back",
        /// Failed before its switch (it serves the version shown beside it, as before), or
        /// serves nothing.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_awaiting_approval_and_running_are_active() {
        let active: Vec<&str> = Status::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, ["awaiting_approval", "running"]);
    }

    #[test]
    fn only_reports_about_staging_leave_the_target_state_as_it_was() {
        for outcome in Outcome::ALL {
            assert_eq!(
                outcome.target_app_state().is_none(),
                outcome.is_staging(),
                "{outcome}"
            );
        }
    }
}
