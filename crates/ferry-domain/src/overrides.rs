//! Break-glass: an admin of an environment overrides what policy would make a deployment
//! wait for (approvals) or refuse (a freeze), with `--break-glass --reason TEXT`.
//!
//! The flag is checked whenever it is given, whether or not anything blocks the deployment:
//! it needs `admin` on the environment in the application's team and a non-blank reason. The
//! answer lists what was overridden so the caller audits it as break-glass and tells the
//! application's team.

use std::fmt;

use crate::freeze::{format_utc, Thaw};
use crate::permission::Level;
use crate::pipeline::Policy;

/// The level breaking the glass needs on the environment.
pub const BREAK_GLASS_LEVEL: Level = Level::Admin;

/// One policy rule a break-glass deployment skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overridden {
    /// The deployment starts without the approvals the environment asks for.
    Approvals { required: u32 },
    /// The deployment goes ahead during a freeze that lasts until then.
    Freeze { until: Thaw },
}

impl fmt::Display for Overridden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overridden::Approvals { required: 1 } => f.write_str("1 required approval"),
            Overridden::Approvals { required } => write!(f, "{required} required approvals"),
            Overridden::Freeze {
                until: Thaw::At(until_ms),
            } => write!(f, "the freeze until {}", format_utc(*until_ms)),
            Overridden::Freeze { until: Thaw::Never } => f.write_str("the continuous freeze"),
        }
    }
}

/// An accepted break-glass, to audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakGlass {
    /// Why, trimmed.
    pub reason: String,
    /// What policy would otherwise have done; empty when nothing blocked the deployment.
    pub overridden: Vec<Overridden>,
}

impl BreakGlass {
    /// One line for the audit trail and the team's notification, like `break-glass by
    /// "admin1" on "prd" overrides 1 required approval and the freeze until ...: reason`.
    pub fn summary(&self, user: &str, env: &str) -> String {
        let what = match self.overridden.as_slice() {
            [] => "overrides nothing (no policy blocked it)".to_owned(),
            items => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                format!("overrides {}", items.join(" and "))
            }
        };
        format!("break-glass by {user:?} on {env:?} {what}: {}", self.reason)
    }
}

/// Why `--break-glass` is refused. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error(
        "--break-glass needs --reason TEXT saying why policy is overridden: it is audited and \
         sent to the application's team"
    )]
    ReasonRequired,
    #[error(
        "user {user:?} has {level} on {env:?}; --break-glass needs admin there: ask an admin of \
         {env:?}, or deploy without it and wait for the approvals or the end of the freeze"
    )]
    NotAdmin {
        user: String,
        level: Level,
        env: String,
    },
}

/// Decides a `--break-glass --reason REASON` by `user`, who has `level` on `env` in the
/// application's team, for a deployment under `policy` while the environment is frozen until
/// `frozen` thaws (see `crate::freeze::frozen_until`). Lists what it overrides.
pub fn break_glass(
    user: &str,
    env: &str,
    level: Level,
    reason: Option<&str>,
    policy: &Policy,
    frozen: Option<Thaw>,
) -> Result<BreakGlass, OverrideError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(OverrideError::ReasonRequired);
    }
    if level < BREAK_GLASS_LEVEL {
        return Err(OverrideError::NotAdmin {
            user: user.to_owned(),
            level,
            env: env.to_owned(),
        });
    }
    let mut overridden = Vec::new();
    if policy.approvals_required > 0 {
        overridden.push(Overridden::Approvals {
            required: policy.approvals_required,
        });
    }
    if let Some(until) = frozen {
        overridden.push(Overridden::Freeze { until });
    }
    Ok(BreakGlass {
        reason: reason.to_owned(),
        overridden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-04 10:00 UTC.
    const MONDAY_10: i64 = 1_709_546_400_000;

    const TWO: Policy = Policy {
        approvals_required: 2,
        self_approval: false,
        protected: true,
    };

    #[test]
    fn accepted() {
        use Overridden::*;
        /// (level, reason, policy, frozen until, reason kept, overridden)
        type Row<'a> = (
            Level,
            &'a str,
            Policy,
            Option<Thaw>,
            &'a str,
            &'a [Overridden],
        );
        let cases: [Row; 6] = [
            (
                Level::Admin,
                "outage",
                Policy::PRODUCTION,
                None,
                "outage",
                &[Approvals { required: 1 }],
            ),
            (
                Level::Admin,
                "  outage\n",
                Policy::OPEN,
                Some(Thaw::At(MONDAY_10)),
                "outage",
                &[Freeze {
                    until: Thaw::At(MONDAY_10),
                }],
            ),
            (
                Level::Admin,
                "outage",
                TWO,
                Some(Thaw::At(MONDAY_10)),
                "outage",
                &[
                    Approvals { required: 2 },
                    Freeze {
                        until: Thaw::At(MONDAY_10),
                    },
                ],
            ),
            (
                Level::Admin,
                "just in case",
                Policy::OPEN,
                None,
                "just in case",
                &[],
            ),
            (
                Level::Admin,
                "x",
                Policy {
                    approvals_required: 0,
                    self_approval: false,
                    protected: true,
                },
                None,
                "x",
                &[],
            ),
            (
                Level::Admin,
                "outage",
                Policy::PRODUCTION,
                Some(Thaw::At(-1)),
                "outage",
                &[
                    Approvals { required: 1 },
                    Freeze {
                        until: Thaw::At(-1),
                    },
                ],
            ),
        ];
        for (level, reason, policy, frozen, kept, overridden) in cases {
            assert_eq!(
                break_glass("admin1", "prd", level, Some(reason), &policy, frozen),
                Ok(BreakGlass {
                    reason: kept.to_owned(),
                    overridden: overridden.to_vec(),
                }),
                "{level} {reason:?} {policy:?} {frozen:?}"
            );
        }
    }

    #[test]
    fn refused() {
        let not_admin = |level| {
            Err(OverrideError::NotAdmin {
                user: "lead1".into(),
                level,
                env: "prd".into(),
            })
        };
        // (level, reason, expected)
        let cases = [
            (Level::Admin, None, Err(OverrideError::ReasonRequired)),
            (Level::Admin, Some(""), Err(OverrideError::ReasonRequired)),
            (
                Level::Admin,
                Some(" \t\n"),
                Err(OverrideError::ReasonRequired),
            ),
            (Level::Deploy, None, Err(OverrideError::ReasonRequired)),
            (Level::Approve, Some("outage"), not_admin(Level::Approve)),
            (Level::Deploy, Some("outage"), not_admin(Level::Deploy)),
            (Level::View, Some("outage"), not_admin(Level::View)),
            (Level::None, Some("outage"), not_admin(Level::None)),
        ];
        for (level, reason, expected) in cases {
            for frozen in [None, Some(Thaw::At(MONDAY_10))] {
                assert_eq!(
                    break_glass("lead1", "prd", level, reason, &Policy::PRODUCTION, frozen),
                    expected,
                    "{level} {reason:?} {frozen:?}"
                );
            }
        }
    }

    #[test]
    fn messages() {
        let cases = [
            (
                OverrideError::ReasonRequired.to_string(),
                "--break-glass needs --reason TEXT saying why policy is overridden: it is audited and sent to the application's team",
            ),
            (
                OverrideError::NotAdmin {
                    user: "lead1".into(),
                    level: Level::Approve,
                    env: "prd".into(),
                }
                .to_string(),
                "user \"lead1\" has approve on \"prd\"; --break-glass needs admin there: ask an admin of \"prd\", or deploy without it and wait for the approvals or the end of the freeze",
            ),
            (
                break_glass("admin1", "prd", Level::Admin, Some("db down"), &TWO, Some(Thaw::At(MONDAY_10)))
                    .unwrap()
                    .summary("admin1", "prd"),
                "break-glass by \"admin1\" on \"prd\" overrides 2 required approvals and the freeze until 2024-03-04 10:00 UTC: db down",
            ),
            (
                break_glass("admin1", "prd", Level::Admin, Some("db down"), &Policy::OPEN, Some(Thaw::Never))
                    .unwrap()
                    .summary("admin1", "prd"),
                "break-glass by \"admin1\" on \"prd\" overrides the continuous freeze: db down",
            ),
            (
                break_glass("admin1", "prd", Level::Admin, Some("db down"), &Policy::PRODUCTION, None)
                    .unwrap()
                    .summary("admin1", "prd"),
                "break-glass by \"admin1\" on \"prd\" overrides 1 required approval: db down",
            ),
            (
                break_glass("admin1", "dev", Level::Admin, Some("habit"), &Policy::OPEN, None)
                    .unwrap()
                    .summary("admin1", "dev"),
                "break-glass by \"admin1\" on \"dev\" overrides nothing (no policy blocked it): habit",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
    }
}
