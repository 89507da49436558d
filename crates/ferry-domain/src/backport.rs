//! Backport obligations: after a hotfix reaches production, the fix must reach development
//! too, or the next product release brings the problem back.
//!
//! An obligation is opened when a hotfix succeeds in production, with the mode its support
//! path chose (backport or merge, see `crate::support`). It is done when a release of the
//! application includes the fix: judged by the regression guard (see `crate::guard`), a
//! release with no path missing the fix closes it, whether the paths hold the hotfix's
//! content or a merge of it. Releases made before the obligation opened count too: when the
//! hotfix reaches production, the newest product release made after the hotfix's base and
//! the release development runs are judged at once (see [`releases_to_check`]). A lead may
//! waive it instead, with a reason that is audited (the fixed code was removed, say). A done
//! or waived obligation stays so.
//!
//! A waiver means the team decided the fix need not reach the product line, so a waived
//! obligation no longer feeds the regression guard (see [`ObligationStatus::guards`]); open
//! and done ones do, for good.

use crate::guard::GuardReport;
use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a backport obligation stands.
    pub enum ObligationStatus ("backport obligation status") {
        /// The fix has not reached a development release yet.
        Open = "open",
        /// A release includes the fix.
        Done = "done",
        /// Someone decided the fix need not reach development, and said why.
        Waived = "waived",
    }
}

impl ObligationStatus {
    /// Whether the regression guard holds later releases to this obligation's fix. Open and
    /// done obligations do: the fix must stay in the product line. A waived one does not:
    /// the team decided the fix need not reach it.
    pub fn guards(self) -> bool {
        match self {
            ObligationStatus::Open | ObligationStatus::Done => true,
            ObligationStatus::Waived => false,
        }
    }
}

/// Whether a release judged by the regression guard (against the obligation's hotfix)
/// includes the fix and so closes the obligation: no path is missing it. Included and
/// merged paths both count as the fix being there.
pub fn closes_obligation(report: &GuardReport) -> bool {
    !report.undoes_fix()
}

/// A release of the application, as far as closing a new obligation at once goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExistingRelease<'a> {
    /// Its version.
    pub version: &'a str,
    /// When it was created, in milliseconds since the epoch.
    pub created_ms: i64,
    /// Whether it is a hotfix (made with `--hotfix-of`) rather than a product release.
    pub hotfix: bool,
}

/// The releases that may already include a fix when its obligation opens, to judge at once,
/// newest first: the newest product release created after the hotfix's base
/// (`base_created_ms`), and the release development runs (`dev_version`) if it is a product
/// release. Hotfixes never count: they are not the product line. An older product release
/// that has the fix does not count either when a newer one exists: the newest one is what
/// moves on.
pub fn releases_to_check<'a>(
    releases: &[ExistingRelease<'a>],
    base_created_ms: i64,
    dev_version: Option<&str>,
) -> Vec<&'a str> {
    let mut product: Vec<&ExistingRelease<'a>> = releases.iter().filter(|r| !r.hotfix).collect();
    product.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
    let newest = product
        .iter()
        .find(|r| r.created_ms > base_created_ms)
        .map(|r| r.version);
    let dev = dev_version.and_then(|dev| product.iter().find(|r| r.version == dev));
    let mut check: Vec<&'a str> = newest.into_iter().collect();
    if let Some(dev) = dev {
        if !check.contains(&dev.version) {
            check.push(dev.version);
        }
    }
    check
}

/// A `ferry backport waive` that is refused. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaiveRefusal {
    /// No reason, or only blanks.
    #[error(
        "waiving backport obligation {id} needs --reason TEXT saying why the fix need not reach \
         development: it is audited"
    )]
    ReasonRequired {
        /// The obligation.
        id: i64,
    },
    /// A release already includes the fix.
    #[error(
        "backport obligation {id} is already done (a release includes the fix): nothing to \
         waive; see `ferry backport list` for the open ones"
    )]
    AlreadyDone {
        /// The obligation.
        id: i64,
    },
    /// Someone already waived it.
    #[error(
        "backport obligation {id} is already waived: nothing to do; see `ferry backport list` \
         for the open ones"
    )]
    AlreadyWaived {
        /// The obligation.
        id: i64,
    },
}

/// Decides `ferry backport waive ID --reason REASON` on obligation `id`, now `status`: only
/// an open obligation may be waived, and only with a reason that is not blank. Returns the
/// reason trimmed, to store and audit. The status is checked first, so waiving a closed
/// obligation says so at once whatever the reason.
pub fn check_waive(
    id: i64,
    status: ObligationStatus,
    reason: &str,
) -> Result<String, WaiveRefusal> {
    match status {
        ObligationStatus::Open => {}
        ObligationStatus::Done => return Err(WaiveRefusal::AlreadyDone { id }),
        ObligationStatus::Waived => return Err(WaiveRefusal::AlreadyWaived { id }),
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(WaiveRefusal::ReasonRequired { id });
    }
    Ok(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_print() {
        let cases = [
            ("open", Some(ObligationStatus::Open)),
            ("done", Some(ObligationStatus::Done)),
            ("waived", Some(ObligationStatus::Waived)),
            ("closed", None),
            ("Open", None),
            ("waive", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = ObligationStatus::parse(text).ok();
            assert_eq!(parsed, expected, "{text:?}");
            assert_eq!(text.parse::<ObligationStatus>().ok(), expected, "{text:?}");
            if let Some(status) = parsed {
                assert_eq!(status.as_str(), text);
                assert_eq!(status.to_string(), text);
            }
        }
        assert_eq!(
            ObligationStatus::parse("closed").unwrap_err().to_string(),
            "unknown backport obligation status \"closed\": use open, done or waived"
        );
    }

    #[test]
    fn waived_obligations_stop_guarding() {
        let cases = [
            (ObligationStatus::Open, true),
            (ObligationStatus::Done, true),
            (ObligationStatus::Waived, false),
        ];
        for (status, guards) in cases {
            assert_eq!(status.guards(), guards, "{status}");
        }
    }

    #[test]
    fn which_existing_releases_are_judged_when_an_obligation_opens() {
        let release = |version, created_ms, hotfix| ExistingRelease {
            version,
            created_ms,
            hotfix,
        };
        let releases = [
            release("1.0.0", 10, false),
            release("1.0.1", 20, true),
            release("1.1.0", 30, false),
            release("1.2.0", 40, false),
            release("1.0.2", 50, true),
        ];
        // (base created at, dev runs, releases judged)
        let cases: [(i64, Option<&str>, &[&str]); 7] = [
            // The newest product release after the base, and what dev runs.
            (10, Some("1.1.0"), &["1.2.0", "1.1.0"]),
            (10, Some("1.2.0"), &["1.2.0"]),
            (10, None, &["1.2.0"]),
            // Dev runs the base itself: judged, though it cannot have the fix.
            (10, Some("1.0.0"), &["1.2.0", "1.0.0"]),
            // Nothing newer than the base.
            (40, Some("1.2.0"), &["1.2.0"]),
            (40, None, &[]),
            // Dev running a hotfix is not the product line.
            (50, Some("1.0.2"), &[]),
        ];
        for (base_created_ms, dev, expected) in cases {
            assert_eq!(
                releases_to_check(&releases, base_created_ms, dev),
                expected,
                "base at {base_created_ms}, dev {dev:?}"
            );
        }
        assert!(releases_to_check(&[], 0, Some("1.0.0")).is_empty());
    }

    #[test]
    fn which_releases_close_an_obligation() {
        let report = |included: &[&str], merged: &[&str], missing: &[&str]| GuardReport {
            included: included.iter().map(|p| p.to_string()).collect(),
            merged: merged.iter().map(|p| p.to_string()).collect(),
            missing: missing.iter().map(|p| p.to_string()).collect(),
        };
        // (report, closes?)
        let cases = [
            (report(&["a"], &[], &[]), true),
            (report(&[], &["a"], &[]), true),
            (report(&["a"], &["b"], &[]), true),
            // An empty hotfix has nothing to carry over.
            (report(&[], &[], &[]), true),
            (report(&[], &[], &["a"]), false),
            (report(&["a"], &["b"], &["c"]), false),
        ];
        for (report, closes) in cases {
            assert_eq!(closes_obligation(&report), closes, "{report:?}");
        }
    }

    #[test]
    fn waives() {
        use ObligationStatus::*;
        // (status, reason, outcome)
        let cases = [
            (Open, "code removed", Ok("code removed".to_owned())),
            (
                Open,
                "  fixed differently in 2.0\n",
                Ok("fixed differently in 2.0".to_owned()),
            ),
            (Open, "", Err(WaiveRefusal::ReasonRequired { id: 3 })),
            (Open, " \t\n", Err(WaiveRefusal::ReasonRequired { id: 3 })),
            (
                Done,
                "code removed",
                Err(WaiveRefusal::AlreadyDone { id: 3 }),
            ),
            (Done, "", Err(WaiveRefusal::AlreadyDone { id: 3 })),
            (
                Waived,
                "code removed",
                Err(WaiveRefusal::AlreadyWaived { id: 3 }),
            ),
            (Waived, " ", Err(WaiveRefusal::AlreadyWaived { id: 3 })),
        ];
        for (status, reason, expected) in cases {
            assert_eq!(
                check_waive(3, status, reason),
                expected,
                "{status} {reason:?}"
            );
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let cases = [
            (
                WaiveRefusal::ReasonRequired { id: 3 },
                "waiving backport obligation 3 needs --reason TEXT saying why the fix need not \
                 reach development: it is audited",
            ),
            (
                WaiveRefusal::AlreadyDone { id: 4 },
                "backport obligation 4 is already done (a release includes the fix): nothing to \
                 waive; see `ferry backport list` for the open ones",
            ),
            (
                WaiveRefusal::AlreadyWaived { id: 5 },
                "backport obligation 5 is already waived: nothing to do; see `ferry backport \
                 list` for the open ones",
            ),
        ];
        for (refusal, message) in cases {
            assert_eq!(refusal.to_string(), message);
        }
    }
}
