//! Approvals: who may approve or reject a deployment waiting for approval, and when it may
//! start.
//!
//! An environment's policy asks for N approvals (`approvals_required`) from users whose level
//! on the environment, in the application's team, is `approve` or higher. With
//! `self_approval` off, the person who requested the deployment cannot approve it. No one
//! approves twice, and an approval names the exact release: approvals of another release do
//! not count. The deployment starts the moment the last approval lands.

use crate::deployment::Status;
use crate::permission::Level;
use crate::pipeline::Policy;

/// The level approving or rejecting needs on the environment.
pub const APPROVE_LEVEL: Level = Level::Approve;

/// Whether a new deployment must wait for approvals before it starts: the environment asks
/// for some, and no admin broke the glass (see `crate::overrides`).
pub fn needs_approval(policy: &Policy, break_glass: bool) -> bool {
    policy.approvals_required > 0 && !break_glass
}

/// An approval already recorded for a deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub approver: String,
    /// The release version the approver approved.
    pub version: String,
}

/// A deployment as the approval rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Review<'a> {
    /// The environment the deployment goes to.
    pub env: &'a str,
    /// That environment's policy now.
    pub policy: Policy,
    /// Who requested the deployment.
    pub requester: &'a str,
    /// The release version the deployment deploys.
    pub version: &'a str,
    /// The deployment's status.
    pub status: Status,
    /// The approvals recorded so far.
    pub approvals: &'a [Approval],
}

/// Where a deployment stands after an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApprovalOutcome {
    /// Approvals that count: distinct approvers of this exact release (without the
    /// requester where self-approval is denied).
    pub approvals_now: u32,
    /// Whether the deployment has all the approvals it needs and starts now.
    pub ready: bool,
}

/// A rejection that may be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The reason, trimmed.
    pub reason: String,
    /// The requester withdrew their own deployment.
    pub withdrawn: bool,
}

/// Why an approval or rejection is refused. Nothing is recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error(
        "user {user:?} has {level} on {env:?}; approving a deployment there needs approve or \
         admin in the application's team: ask its lead or a release manager to approve"
    )]
    NotAllowed {
        user: String,
        level: Level,
        env: String,
    },
    #[error(
        "user {user:?} requested this deployment and {env:?} denies self-approval \
         (--self-approval deny): another user with approve on {env:?} must approve it"
    )]
    SelfApprovalDenied { user: String, env: String },
    #[error(
        "user {user:?} has already approved this deployment and no one approves twice: it has \
         {approvals_now} of {required} approvals, the rest must come from other approvers"
    )]
    AlreadyApproved {
        user: String,
        approvals_now: u32,
        required: u32,
    },
    #[error(
        "the deployment is not awaiting approval (its status is {status}): only a deployment \
         waiting for approval can be approved or rejected; see `ferry deployment list`"
    )]
    NotAwaitingApproval { status: Status },
    #[error(
        "this approval is for release {approved:?} but the deployment deploys {deployment:?}: \
         approvals name the exact release; check `ferry deployment show ID` and approve what \
         it deploys"
    )]
    DifferentVersion {
        approved: String,
        deployment: String,
    },
    #[error("rejecting a deployment needs a reason: use `ferry reject ID --reason TEXT`")]
    ReasonRequired,
    #[error(
        "user {user:?} has {level} on {env:?}; rejecting a deployment there needs approve or \
         admin in the application's team, unless you requested it (then rejecting withdraws it)"
    )]
    RejectNotAllowed {
        user: String,
        level: Level,
        env: String,
    },
}

impl Review<'_> {
    /// Whether `user`'s approval would count under the policy.
    fn counts(&self, user: &str) -> bool {
        self.policy.self_approval || user != self.requester
    }

    /// The approvals that count now and whether they are enough.
    pub fn progress(&self) -> ApprovalOutcome {
        let mut approvers: Vec<&str> = self
            .approvals
            .iter()
            .filter(|approval| approval.version == self.version && self.counts(&approval.approver))
            .map(|approval| approval.approver.as_str())
            .collect();
        approvers.sort_unstable();
        approvers.dedup();
        let approvals_now = approvers.len() as u32;
        ApprovalOutcome {
            approvals_now,
            ready: approvals_now >= self.policy.approvals_required,
        }
    }

    /// Decides whether `user`, with `level` on the environment in the application's team,
    /// may approve release `version` of this deployment, and where it stands if so. Checked
    /// in order: level, status, release, self-approval, a second approval by the same user.
    pub fn approve(
        &self,
        user: &str,
        level: Level,
        version: &str,
    ) -> Result<ApprovalOutcome, ApprovalError> {
        if level < APPROVE_LEVEL {
            return Err(ApprovalError::NotAllowed {
                user: user.to_owned(),
                level,
                env: self.env.to_owned(),
            });
        }
        self.check_awaiting()?;
        if version != self.version {
            return Err(ApprovalError::DifferentVersion {
                approved: version.to_owned(),
                deployment: self.version.to_owned(),
            });
        }
        if !self.counts(user) {
            return Err(ApprovalError::SelfApprovalDenied {
                user: user.to_owned(),
                env: self.env.to_owned(),
            });
        }
        let before = self.progress();
        if self
            .approvals
            .iter()
            .any(|approval| approval.approver == user && approval.version == self.version)
        {
            return Err(ApprovalError::AlreadyApproved {
                user: user.to_owned(),
                approvals_now: before.approvals_now,
                required: self.policy.approvals_required,
            });
        }
        let approvals_now = before.approvals_now + 1;
        Ok(ApprovalOutcome {
            approvals_now,
            ready: approvals_now >= self.policy.approvals_required,
        })
    }

    /// Decides whether `user`, with `level` on the environment in the application's team,
    /// may reject this deployment with `reason`. Rejecting needs a non-blank reason and the
    /// level approving needs; the requester may always reject (withdraw) their own.
    pub fn reject(
        &self,
        user: &str,
        level: Level,
        reason: &str,
    ) -> Result<Rejection, ApprovalError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ApprovalError::ReasonRequired);
        }
        let withdrawn = user == self.requester;
        if level < APPROVE_LEVEL && !withdrawn {
            return Err(ApprovalError::RejectNotAllowed {
                user: user.to_owned(),
                level,
                env: self.env.to_owned(),
            });
        }
        self.check_awaiting()?;
        Ok(Rejection {
            reason: reason.to_owned(),
            withdrawn,
        })
    }

    fn check_awaiting(&self) -> Result<(), ApprovalError> {
        if self.status == Status::AwaitingApproval {
            Ok(())
        } else {
            Err(ApprovalError::NotAwaitingApproval {
                status: self.status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRD: Policy = Policy::PRODUCTION;
    const TWO_OTHERS: Policy = Policy {
        approvals_required: 2,
        self_approval: false,
        protected: true,
    };
    const TWO_ANYONE: Policy = Policy {
        approvals_required: 2,
        self_approval: true,
        protected: true,
    };

    /// Recorded approvals written `user@version`.
    fn approvals(recorded: &[&str]) -> Vec<Approval> {
        recorded
            .iter()
            .map(|text| {
                let (approver, version) = text.split_once('@').unwrap();
                Approval {
                    approver: approver.to_owned(),
                    version: version.to_owned(),
                }
            })
            .collect()
    }

    fn review<'a>(policy: Policy, status: Status, recorded: &'a [Approval]) -> Review<'a> {
        Review {
            env: "prd",
            policy,
            requester: "dev1",
            version: "1.2.0",
            status,
            approvals: recorded,
        }
    }

    fn ok(approvals_now: u32, ready: bool) -> Result<ApprovalOutcome, ApprovalError> {
        Ok(ApprovalOutcome {
            approvals_now,
            ready,
        })
    }

    #[test]
    fn needs_approval_table() {
        let cases = [
            (Policy::OPEN, false, false),
            (Policy::OPEN, true, false),
            (PRD, false, true),
            (PRD, true, false),
            (TWO_ANYONE, false, true),
        ];
        for (policy, break_glass, expected) in cases {
            assert_eq!(
                needs_approval(&policy, break_glass),
                expected,
                "{policy:?} break-glass {break_glass}"
            );
        }
    }

    #[test]
    fn approvals_that_land() {
        // (policy, recorded, approver, level, expected)
        let cases: [(Policy, &[&str], &str, Level, _); 7] = [
            (PRD, &[], "lead1", Level::Approve, ok(1, true)),
            (PRD, &[], "admin1", Level::Admin, ok(1, true)),
            (TWO_OTHERS, &[], "lead1", Level::Approve, ok(1, false)),
            (
                TWO_OTHERS,
                &["lead1@1.2.0"],
                "lead2",
                Level::Approve,
                ok(2, true),
            ),
            // An approval of another release does not count.
            (
                TWO_OTHERS,
                &["lead1@1.1.0"],
                "lead2",
                Level::Approve,
                ok(1, false),
            ),
            (
                TWO_OTHERS,
                &["lead1@1.1.0"],
                "lead1",
                Level::Approve,
                ok(1, false),
            ),
            // Self-approval allowed: the requester's approval counts.
            (
                TWO_ANYONE,
                &["lead1@1.2.0"],
                "dev1",
                Level::Approve,
                ok(2, true),
            ),
        ];
        for (policy, recorded, user, level, expected) in cases {
            let recorded = approvals(recorded);
            let got =
                review(policy, Status::AwaitingApproval, &recorded).approve(user, level, "1.2.0");
            assert_eq!(got, expected, "{user} with {recorded:?} under {policy:?}");
        }
    }

    #[test]
    fn approval_refusals() {
        use ApprovalError as E;
        /// (policy, status, recorded, approver, level, version approved, refusal)
        type Row<'a> = (Policy, Status, &'a [&'a str], &'a str, Level, &'a str, E);
        let cases: [Row; 9] = [
            (
                PRD,
                Status::AwaitingApproval,
                &[],
                "dev2",
                Level::Deploy,
                "1.2.0",
                E::NotAllowed {
                    user: "dev2".into(),
                    level: Level::Deploy,
                    env: "prd".into(),
                },
            ),
            (
                PRD,
                Status::AwaitingApproval,
                &[],
                "viewer",
                Level::None,
                "1.2.0",
                E::NotAllowed {
                    user: "viewer".into(),
                    level: Level::None,
                    env: "prd".into(),
                },
            ),
            (
                PRD,
                Status::AwaitingApproval,
                &[],
                "dev1",
                Level::Admin,
                "1.2.0",
                E::SelfApprovalDenied {
                    user: "dev1".into(),
                    env: "prd".into(),
                },
            ),
            (
                TWO_OTHERS,
                Status::AwaitingApproval,
                &["lead1@1.2.0"],
                "lead1",
                Level::Approve,
                "1.2.0",
                E::AlreadyApproved {
                    user: "lead1".into(),
                    approvals_now: 1,
                    required: 2,
                },
            ),
            (
                TWO_ANYONE,
                Status::AwaitingApproval,
                &["dev1@1.2.0"],
                "dev1",
                Level::Approve,
                "1.2.0",
                E::AlreadyApproved {
                    user: "dev1".into(),
                    approvals_now: 1,
                    required: 2,
                },
            ),
            (
                PRD,
                Status::Running,
                &["lead1@1.2.0"],
                "lead2",
                Level::Approve,
                "1.2.0",
                E::NotAwaitingApproval {
                    status: Status::Running,
                },
            ),
            (
                PRD,
                Status::Succeeded,
                &[],
                "lead2",
                Level::Approve,
                "1.2.0",
                E::NotAwaitingApproval {
                    status: Status::Succeeded,
                },
            ),
            (
                PRD,
                Status::Rejected,
                &[],
                "lead2",
                Level::Approve,
                "1.2.0",
                E::NotAwaitingApproval {
                    status: Status::Rejected,
                },
            ),
            (
                PRD,
                Status::AwaitingApproval,
                &[],
                "lead2",
                Level::Approve,
                "1.3.0",
                E::DifferentVersion {
                    approved: "1.3.0".into(),
                    deployment: "1.2.0".into(),
                },
            ),
        ];
        for (policy, status, recorded, user, level, version, expected) in cases {
            let recorded = approvals(recorded);
            let got = review(policy, status, &recorded).approve(user, level, version);
            assert_eq!(got, Err(expected), "{user} {level} {status} {version}");
        }
    }

    #[test]
    fn progress_counts_each_approver_of_this_release_once() {
        // (policy, recorded, counted)
        let cases: [(Policy, &[&str], u32, bool); 7] = [
            (PRD, &[], 0, false),
            (Policy::OPEN, &[], 0, true),
            (PRD, &["lead1@1.2.0"], 1, true),
            (TWO_OTHERS, &["lead1@1.2.0", "lead1@1.2.0"], 1, false),
            (TWO_OTHERS, &["lead1@1.2.0", "lead2@1.1.0"], 1, false),
            // Recorded when self-approval was allowed, counted by today's policy.
            (TWO_OTHERS, &["lead1@1.2.0", "dev1@1.2.0"], 1, false),
            (TWO_ANYONE, &["lead1@1.2.0", "dev1@1.2.0"], 2, true),
        ];
        for (policy, recorded, approvals_now, ready) in cases {
            let recorded = approvals(recorded);
            assert_eq!(
                review(policy, Status::AwaitingApproval, &recorded).progress(),
                ApprovalOutcome {
                    approvals_now,
                    ready
                },
                "{recorded:?} under {policy:?}"
            );
        }
    }

    #[test]
    fn rejections() {
        use ApprovalError as E;
        let withdraw = |reason: &str| {
            Ok(Rejection {
                reason: reason.into(),
                withdrawn: true,
            })
        };
        let reject = |reason: &str| {
            Ok(Rejection {
                reason: reason.into(),
                withdrawn: false,
            })
        };
        let cases = [
            (
                "lead1",
                Level::Approve,
                Status::AwaitingApproval,
                "not today",
                reject("not today"),
            ),
            (
                "admin1",
                Level::Admin,
                Status::AwaitingApproval,
                "  trimmed \n",
                reject("trimmed"),
            ),
            // The requester withdraws their own, whatever their level.
            (
                "dev1",
                Level::Deploy,
                Status::AwaitingApproval,
                "wrong build",
                withdraw("wrong build"),
            ),
            (
                "dev1",
                Level::Approve,
                Status::AwaitingApproval,
                "oops",
                withdraw("oops"),
            ),
            (
                "lead1",
                Level::Approve,
                Status::AwaitingApproval,
                "",
                Err(E::ReasonRequired),
            ),
            (
                "lead1",
                Level::Approve,
                Status::AwaitingApproval,
                " \t ",
                Err(E::ReasonRequired),
            ),
            (
                "dev1",
                Level::Deploy,
                Status::AwaitingApproval,
                "",
                Err(E::ReasonRequired),
            ),
            (
                "dev2",
                Level::Deploy,
                Status::AwaitingApproval,
                "no",
                Err(E::RejectNotAllowed {
                    user: "dev2".into(),
                    level: Level::Deploy,
                    env: "prd".into(),
                }),
            ),
            (
                "lead1",
                Level::Approve,
                Status::Running,
                "too late",
                Err(E::NotAwaitingApproval {
                    status: Status::Running,
                }),
            ),
            (
                "dev1",
                Level::Deploy,
                Status::Failed,
                "too late",
                Err(E::NotAwaitingApproval {
                    status: Status::Failed,
                }),
            ),
        ];
        for (user, level, status, reason, expected) in cases {
            let got = review(PRD, status, &[]).reject(user, level, reason);
            assert_eq!(got, expected, "{user} {level} {status} {reason:?}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        use ApprovalError as E;
        let cases = [
            (
                E::NotAllowed {
                    user: "dev2".into(),
                    level: Level::Deploy,
                    env: "prd".into(),
                },
                "user \"dev2\" has deploy on \"prd\"; approving a deployment there needs approve or admin in the application's team: ask its lead or a release manager to approve",
            ),
            (
                E::SelfApprovalDenied {
                    user: "dev1".into(),
                    env: "prd".into(),
                },
                "user \"dev1\" requested this deployment and \"prd\" denies self-approval (--self-approval deny): another user with approve on \"prd\" must approve it",
            ),
            (
                E::AlreadyApproved {
                    user: "lead1".into(),
                    approvals_now: 1,
                    required: 2,
                },
                "user \"lead1\" has already approved this deployment and no one approves twice: it has 1 of 2 approvals, the rest must come from other approvers",
            ),
            (
                E::NotAwaitingApproval {
                    status: Status::Succeeded,
                },
                "the deployment is not awaiting approval (its status is succeeded): only a deployment waiting for approval can be approved or rejected; see `ferry deployment list`",
            ),
            (
                E::DifferentVersion {
                    approved: "1.3.0".into(),
                    deployment: "1.2.0".into(),
                },
                "this approval is for release \"1.3.0\" but the deployment deploys \"1.2.0\": approvals name the exact release; check `ferry deployment show ID` and approve what it deploys",
            ),
            (
                E::ReasonRequired,
                "rejecting a deployment needs a reason: use `ferry reject ID --reason TEXT`",
            ),
            (
                E::RejectNotAllowed {
                    user: "dev2".into(),
                    level: Level::View,
                    env: "prd".into(),
                },
                "user \"dev2\" has view on \"prd\"; rejecting a deployment there needs approve or admin in the application's team, unless you requested it (then rejecting withdraws it)",
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(err.to_string(), expected);
        }
    }
}
