//! The support table (docs/concepts.md, "Production support"): which path an incident takes, and
//! the version ferry suggests for a hotfix.
//!
//! | severity | where | production version vs development version | path |
//! |---|---|---|---|
//! | not critical | anywhere | any | backlog |
//! | critical | not production, or nothing runs there | any | backlog |
//! | critical | production | same, or nothing in development | hotfix, then backport |
//! | critical | production | different | hotfix, then merge |
//!
//! A hotfix is built from the release production runs, so development's line of work never
//! reaches production early. When development runs that same release, the fix is carried
//! over as it is (backport); when it has moved on, the fix has to be merged into the newer
//! code by hand.

use crate::incident::Severity;
use crate::name::validate_version;
use crate::vocabulary::vocabulary;

/// The longest version ferry accepts.
const MAX_VERSION_LEN: usize = 64;

vocabulary! {
    /// The path ferry plans and tracks for an incident.
    pub enum SupportPath ("support path") {
        /// A backlog item on the owning team, fixed in the normal product path.
        Backlog = "backlog",
        /// A hotfix of production's release, then the fix backported to development, which
        /// runs that same release.
        HotfixBackport = "hotfix-backport",
        /// A hotfix of production's release, then the fix merged into development's newer
        /// version.
        HotfixMerge = "hotfix-merge",
    }
}

impl SupportPath {
    /// Whether the path builds a hotfix of production's release.
    pub fn is_hotfix(self) -> bool {
        self.backport_mode().is_some()
    }

    /// How the fix reaches development after the hotfix, for a hotfix path.
    pub fn backport_mode(self) -> Option<BackportMode> {
        match self {
            SupportPath::Backlog => None,
            SupportPath::HotfixBackport => Some(BackportMode::Backport),
            SupportPath::HotfixMerge => Some(BackportMode::Merge),
        }
    }
}

vocabulary! {
    /// How a hotfix's backport obligation is met in development.
    pub enum BackportMode ("backport mode") {
        /// Development runs the release the hotfix was built from: carry the fix over as it
        /// is.
        Backport = "backport",
        /// Development has moved on: merge the fix into its newer code.
        Merge = "merge",
    }
}

vocabulary! {
    /// Where a backlog item stands.
    pub enum BacklogStatus ("backlog status") {
        /// Work for the maintaining team in the normal product path.
        Open = "open",
        /// A release closed it.
        Closed = "closed",
    }
}

/// The path for an incident of `severity`. `in_production` says whether the incident's
/// environment is the production (last) environment of the pipeline; the versions are what
/// production and development run now, if anything.
///
/// Only a critical incident in production takes a hotfix path. A critical incident anywhere
/// else is a backlog item: the environment is not serving users, so there is no reason to
/// bypass the pipeline, and the normal product path (development first, then every
/// environment in order) fixes it with all its checks. The same holds when nothing runs in
/// production: there is no production release to build a hotfix from.
///
/// When development runs nothing, the fix has nothing to be merged into: it is backported
/// (whatever development runs next must contain it, which the backport obligation tracks).
pub fn plan_path(
    severity: Severity,
    in_production: bool,
    production_version: Option<&str>,
    dev_version: Option<&str>,
) -> SupportPath {
    if !severity.is_critical() || !in_production {
        return SupportPath::Backlog;
    }
    match (production_version, dev_version) {
        (None, _) => SupportPath::Backlog,
        (Some(_), None) => SupportPath::HotfixBackport,
        (Some(production), Some(dev)) if production == dev => SupportPath::HotfixBackport,
        (Some(_), Some(_)) => SupportPath::HotfixMerge,
    }
}

/// The release a hotfix starts from, decided when `ferry hotfix start` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotfixBase<'a> {
    /// Production still runs the base the incident was opened with (or runs nothing, so
    /// there is nothing newer to start from).
    Kept(&'a str),
    /// Production runs another release since the incident was opened (another hotfix
    /// shipped meanwhile): the hotfix starts from that one.
    Moved {
        /// The base recorded when the incident was opened.
        from: &'a str,
        /// What production runs now.
        to: &'a str,
    },
}

impl<'a> HotfixBase<'a> {
    /// The version the hotfix is built from.
    pub fn version(self) -> &'a str {
        match self {
            HotfixBase::Kept(version) => version,
            HotfixBase::Moved { to, .. } => to,
        }
    }
}

/// Where the hotfix of an incident opened on `recorded` starts, now that production runs
/// `production`: a hotfix made from anything but production's current release would undo
/// whatever reached production since.
pub fn hotfix_base<'a>(recorded: &'a str, production: Option<&'a str>) -> HotfixBase<'a> {
    match production {
        Some(now) if now != recorded => HotfixBase::Moved {
            from: recorded,
            to: now,
        },
        _ => HotfixBase::Kept(recorded),
    }
}

/// A version shaped `Major.Minor.Revision`, optionally prefixed by a lowercase `v`: the text
/// before the revision (kept as written) and the revision's value.
fn split_semantic(base: &str) -> Option<(&str, u64)> {
    let numbers = base.strip_prefix('v').unwrap_or(base);
    let parts: Vec<&str> = numbers.split('.').collect();
    let [major, minor, revision] = parts.as_slice() else {
        return None;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !(digits(major) && digits(minor) && digits(revision)) {
        return None;
    }
    let revision_value = revision.parse::<u64>().ok()?;
    let prefix = &base[..base.len() - revision.len()];
    Some((prefix, revision_value))
}

/// `base` made safe to carry a suffix: characters outside the version alphabet become `-`
/// and a leading non-alphanumeric run is dropped. A stored version is already safe.
fn clean_base(base: &str) -> String {
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The version ferry suggests for a hotfix of the release `base`, avoiding every version in
/// `taken` (the application's existing versions).
///
/// When `base` is `Major.Minor.Revision` (three dot-separated unsigned decimal numbers, with
/// an optional lowercase `v` before them and nothing else), the suggestion is the next free
/// revision: `1.4.2` → `1.4.3`, or `1.4.4` if `1.4.3` is taken; `v1.2.3` → `v1.2.4`. Major
/// and minor are kept exactly as written, leading zeros included, and the new revision is
/// written as a plain number: `1.02.3` → `1.02.4`, `1.2.09` → `1.2.10`. Only exact strings
/// count as taken (`1.2.04` does not take `1.2.4`).
///
/// Any other base, or a revision that does not fit in 64 bits or runs out of room, gets
/// `BASE-hotfix.N` with the smallest `N` from 1 that is not taken; when that would be longer
/// than 64 characters, the end of `BASE` is cut so it fits. The result is always a valid
/// version (`[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`).
pub fn suggest_hotfix_version(base: &str, taken: &[&str]) -> String {
    let is_taken = |candidate: &str| taken.contains(&candidate);
    if let Some((prefix, revision)) = split_semantic(base) {
        let mut next = revision.checked_add(1);
        while let Some(number) = next {
            let candidate = format!("{prefix}{number}");
            if validate_version(&candidate).is_err() {
                break;
            }
            if !is_taken(&candidate) {
                return candidate;
            }
            next = number.checked_add(1);
        }
    }
    let base = clean_base(base);
    (1u64..)
        .map(|n| {
            let suffix = format!("-hotfix.{n}");
            let keep = base.len().min(MAX_VERSION_LEN - suffix.len());
            if keep == 0 {
                format!("hotfix.{n}")
            } else {
                format!("{}{suffix}", &base[..keep])
            }
        })
        .find(|candidate| !is_taken(candidate))
        .expect("only finitely many versions are taken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hotfix_starts_from_what_production_runs_now() {
        use HotfixBase::*;
        // (recorded base, production runs now, base)
        let cases = [
            ("1.0.0", Some("1.0.0"), Kept("1.0.0")),
            (
                "1.0.0",
                Some("1.0.1"),
                Moved {
                    from: "1.0.0",
                    to: "1.0.1",
                },
            ),
            // Rolled back past the recorded base: still production's release.
            (
                "1.0.1",
                Some("1.0.0"),
                Moved {
                    from: "1.0.1",
                    to: "1.0.0",
                },
            ),
            ("1.0.0", None, Kept("1.0.0")),
        ];
        for (recorded, production, expected) in cases {
            let base = hotfix_base(recorded, production);
            assert_eq!(base, expected, "{recorded} {production:?}");
            assert_eq!(base.version(), production.unwrap_or(recorded));
        }
    }

    #[test]
    fn the_support_table() {
        use Severity::*;
        use SupportPath::*;
        // (severity, in production?, production runs, development runs, path)
        let cases = [
            // Not critical: always the backlog, whatever runs where.
            (High, true, Some("1.0"), Some("1.0"), Backlog),
            (High, true, Some("1.0"), Some("1.1"), Backlog),
            (Medium, true, Some("1.0"), None, Backlog),
            (Low, true, None, None, Backlog),
            (Low, false, Some("1.0"), Some("2.0"), Backlog),
            (High, false, Some("1.0"), Some("1.0"), Backlog),
            // Critical, but not in production: the normal product path.
            (Critical, false, Some("1.0"), Some("1.0"), Backlog),
            (Critical, false, Some("1.0"), Some("1.1"), Backlog),
            (Critical, false, None, Some("1.1"), Backlog),
            // Critical in production with nothing running there: nothing to hotfix.
            (Critical, true, None, Some("1.1"), Backlog),
            (Critical, true, None, None, Backlog),
            // Critical in production: same version → backport, different → merge.
            (Critical, true, Some("1.0"), Some("1.0"), HotfixBackport),
            (Critical, true, Some("1.0"), None, HotfixBackport),
            (Critical, true, Some("1.0"), Some("1.1"), HotfixMerge),
            (Critical, true, Some("2.0"), Some("1.9"), HotfixMerge),
            // Versions compare exactly.
            (Critical, true, Some("1.0"), Some("1.0.0"), HotfixMerge),
            (Critical, true, Some("v1"), Some("V1"), HotfixMerge),
        ];
        for (severity, in_production, production, dev, expected) in cases {
            assert_eq!(
                plan_path(severity, in_production, production, dev),
                expected,
                "{severity} in production {in_production}, {production:?} vs {dev:?}"
            );
        }
    }

    #[test]
    fn paths_parse_print_and_map_to_modes() {
        use SupportPath::*;
        // (text, path, hotfix?, mode)
        let cases = [
            ("backlog", Backlog, false, None),
            (
                "hotfix-backport",
                HotfixBackport,
                true,
                Some(BackportMode::Backport),
            ),
            ("hotfix-merge", HotfixMerge, true, Some(BackportMode::Merge)),
        ];
        for (text, path, hotfix, mode) in cases {
            assert_eq!(SupportPath::parse(text), Ok(path));
            assert_eq!(text.parse::<SupportPath>(), Ok(path));
            assert_eq!(path.as_str(), text);
            assert_eq!(path.to_string(), text);
            assert_eq!(path.is_hotfix(), hotfix, "{text}");
            assert_eq!(path.backport_mode(), mode, "{text}");
        }
        for bad in ["", "hotfix", "Backlog", "hotfix_merge", "merge"] {
            assert!(SupportPath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SupportPath::parse("hotfix").unwrap_err().to_string(),
            "unknown support path \"hotfix\": use backlog, hotfix-backport or hotfix-merge"
        );
    }

    #[test]
    fn modes_parse_and_print() {
        for (text, mode) in [
            ("backport", BackportMode::Backport),
            ("merge", BackportMode::Merge),
        ] {
            assert_eq!(BackportMode::parse(text), Ok(mode));
            assert_eq!(text.parse::<BackportMode>(), Ok(mode));
            assert_eq!(mode.as_str(), text);
            assert_eq!(mode.to_string(), text);
        }
        for bad in ["", "Merge", "cherry-pick", "hotfix-merge"] {
            assert!(BackportMode::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            BackportMode::parse("rebase").unwrap_err().to_string(),
            "unknown backport mode \"rebase\": use backport or merge"
        );
    }

    fn check(base: &str, taken: &[&str], expected: &str) {
        let got = suggest_hotfix_version(base, taken);
        assert_eq!(got, expected, "{base:?} taken {taken:?}");
        assert!(validate_version(&got).is_ok(), "{got:?} is not a version");
        assert!(!taken.contains(&got.as_str()), "{got:?} is taken");
    }

    #[test]
    fn semantic_versions_get_the_next_free_revision() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("1.4.2", &[], "1.4.3"),
            ("1.4.2", &["1.4.2"], "1.4.3"),
            ("1.4.2", &["1.4.3"], "1.4.4"),
            ("1.4.2", &["1.4.3", "1.4.4", "1.4.6"], "1.4.5"),
            ("1.4.2", &["1.4.4"], "1.4.3"),
            ("0.0.0", &[], "0.0.1"),
            ("1.2.9", &[], "1.2.10"),
            ("1.2.99", &["1.2.100"], "1.2.101"),
            ("10.20.30", &[], "10.20.31"),
            ("v1.2.3", &[], "v1.2.4"),
            ("v1.2.3", &["v1.2.4"], "v1.2.5"),
            // Without the `v`, a taken version does not collide with the prefixed one.
            ("v1.2.3", &["1.2.4"], "v1.2.4"),
            ("1.2.3", &["v1.2.4"], "1.2.4"),
            // Leading zeros: major and minor as written, the revision a plain number.
            ("1.02.3", &[], "1.02.4"),
            ("01.02.03", &[], "01.02.4"),
            ("1.2.09", &[], "1.2.10"),
            ("1.2.007", &[], "1.2.8"),
            ("1.2.007", &["1.2.8"], "1.2.9"),
            // Exact strings only: 1.2.04 does not take 1.2.4.
            ("1.2.3", &["1.2.04"], "1.2.4"),
            // Major and minor need not fit in 64 bits: they are kept as text.
            (
                "123456789012345678901234567890.0.1",
                &[],
                "123456789012345678901234567890.0.2",
            ),
            // The largest revision with a successor.
            ("1.2.18446744073709551614", &[], "1.2.18446744073709551615"),
        ];
        for (base, taken, expected) in cases {
            check(base, taken, expected);
        }
    }

    #[test]
    fn other_versions_get_a_hotfix_suffix() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("2024-06", &[], "2024-06-hotfix.1"),
            ("2024-06", &["2024-06-hotfix.1"], "2024-06-hotfix.2"),
            (
                "2024-06",
                &["2024-06-hotfix.1", "2024-06-hotfix.2", "2024-06-hotfix.4"],
                "2024-06-hotfix.3",
            ),
            ("2024-06", &["2024-06-hotfix.2"], "2024-06-hotfix.1"),
            // The simple rule even for a base that is itself a hotfix.
            ("2024-06-hotfix.1", &[], "2024-06-hotfix.1-hotfix.1"),
            ("1.2", &[], "1.2-hotfix.1"),
            ("1", &[], "1-hotfix.1"),
            ("1.2.3.4", &[], "1.2.3.4-hotfix.1"),
            ("1.2.3-rc.1", &[], "1.2.3-rc.1-hotfix.1"),
            ("1.2.3+build7", &[], "1.2.3+build7-hotfix.1"),
            ("V1.2.3", &[], "V1.2.3-hotfix.1"),
            ("vv1.2.3", &[], "vv1.2.3-hotfix.1"),
            ("v.1.2", &[], "v.1.2-hotfix.1"),
            ("1..3", &[], "1..3-hotfix.1"),
            ("1.2.", &[], "1.2.-hotfix.1"),
            ("1.2.x", &[], "1.2.x-hotfix.1"),
            ("a.b.c", &[], "a.b.c-hotfix.1"),
            ("release_7", &["release_7-hotfix.1"], "release_7-hotfix.2"),
            // A revision past 64 bits, or with no successor, is not a number to increment.
            (
                "1.2.18446744073709551616",
                &[],
                "1.2.18446744073709551616-hotfix.1",
            ),
            (
                "1.2.18446744073709551615",
                &[],
                "1.2.18446744073709551615-hotfix.1",
            ),
            // Every successor up to the last one taken.
            (
                "1.2.18446744073709551614",
                &["1.2.18446744073709551615"],
                "1.2.18446744073709551614-hotfix.1",
            ),
        ];
        for (base, taken, expected) in cases {
            check(base, taken, expected);
        }
    }

    #[test]
    fn long_bases_are_cut_to_fit() {
        let max = "a".repeat(64);
        let fifty_six = "a".repeat(56);
        // "-hotfix.1" is 9 characters: 55 of the base are kept.
        let cases: Vec<(String, Vec<String>, String)> = vec![
            (max.clone(), vec![], format!("{}-hotfix.1", "a".repeat(55))),
            (
                fifty_six.clone(),
                vec![],
                format!("{}-hotfix.1", "a".repeat(55)),
            ),
            (
                "a".repeat(55),
                vec![],
                format!("{}-hotfix.1", "a".repeat(55)),
            ),
            (
                "a".repeat(54),
                vec![],
                format!("{}-hotfix.1", "a".repeat(54)),
            ),
            // Two-digit N keeps one character fewer.
            (
                max.clone(),
                (1..=9)
                    .map(|n| format!("{}-hotfix.{n}", "a".repeat(55)))
                    .collect(),
                format!("{}-hotfix.10", "a".repeat(54)),
            ),
            // A semantic version whose next revision no longer fits.
            (
                format!("1.2.{}", "9".repeat(60)),
                vec![],
                format!("1.2.{}-hotfix.1", "9".repeat(51)),
            ),
            // A next revision one digit longer, still in 64 bits.
            (
                format!("1.2.{}", "9".repeat(19)),
                vec![],
                format!("1.2.1{}", "0".repeat(19)),
            ),
            // One that still fits (64 characters exactly).
            (
                format!("{}.1.2", "1".repeat(60)),
                vec![],
                format!("{}.1.3", "1".repeat(60)),
            ),
            // One that would take 65 characters.
            (
                format!("{}.1.9", "1".repeat(60)),
                vec![],
                format!("{}-hotfix.1", "1".repeat(55)),
            ),
        ];
        for (base, taken, expected) in cases {
            let taken: Vec<&str> = taken.iter().map(String::as_str).collect();
            check(&base, &taken, &expected);
            assert!(expected.len() <= 64);
        }
    }

    #[test]
    fn cutting_may_end_the_base_on_punctuation_and_stays_valid() {
        let base = format!("{}.{}", "a".repeat(54), "b".repeat(9));
        check(&base, &[], &format!("{}.-hotfix.1", "a".repeat(54)));
    }

    #[test]
    fn a_base_that_is_not_a_version_is_cleaned() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("", &[], "hotfix.1"),
            ("", &["hotfix.1"], "hotfix.2"),
            ("-", &[], "hotfix.1"),
            ("..1", &[], "1-hotfix.1"),
            ("1 2", &[], "1-2-hotfix.1"),
            ("1/2", &[], "1-2-hotfix.1"),
            ("ver é", &[], "ver---hotfix.1"),
            (" 1.2.3", &[], "1.2.3-hotfix.1"),
        ];
        for (base, taken, expected) in cases {
            check(base, taken, expected);
        }
    }
}
