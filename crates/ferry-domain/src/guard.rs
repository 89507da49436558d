//! The regression guard (docs/concepts.md, "The regression guard"): a release whose content would
//! undo a hotfix already shipped to production is refused in pp and prd.
//!
//! The hotfix is compared with the release it was built from (its base): every path it
//! added, modified or deleted is a change. For each change, the candidate release's content
//! at that path (or its absence) is judged:
//!
//! - equal to the hotfix's: the fix is **included**;
//! - equal to the base's: the fix is **missing** — deploying the candidate would bring the
//!   problem back, so it is refused;
//! - anything else: the fix was **merged** with other work; it is let through but shown for
//!   review, since ferry cannot tell a good merge from a bad one.
//!
//! Absence is content too: a file the hotfix deleted is missing from a candidate that still
//! holds it as it was, and a file the hotfix added is missing from a candidate without it. A
//! moved file is a deletion plus an addition, each judged on its own. Paths the hotfix did
//! not change are never judged.
//!
//! The content identity `C` is whatever the caller compares files by (a content hash); this
//! module only needs equality.
//!
//! An override needs approve permission on the environment and a reason, and is audited;
//! the caller checks those, since they are not about content.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How many missing paths the refusal lists before it says how many more there are.
pub const LISTED_PATHS: usize = 10;

/// A path the hotfix changed relative to its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change<C> {
    /// The path inside the release.
    pub path: String,
    /// The content in the base release; None when the hotfix added the path.
    pub base: Option<C>,
    /// The content in the hotfix; None when the hotfix deleted the path.
    pub fix: Option<C>,
}

/// Every path the hotfix `fix` added, modified or deleted relative to its `base`, sorted by
/// path. Each tree maps a path to its content identity.
pub fn hotfix_changes<C: Clone + Eq>(
    base: &BTreeMap<String, C>,
    fix: &BTreeMap<String, C>,
) -> Vec<Change<C>> {
    let paths: BTreeSet<&String> = base.keys().chain(fix.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (before, after) = (base.get(path), fix.get(path));
            (before != after).then(|| Change {
                path: path.clone(),
                base: before.cloned(),
                fix: after.cloned(),
            })
        })
        .collect()
}

/// What the candidate release holds at one changed path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The hotfix's content: the fix is there.
    Included,
    /// Content that is neither the base's nor the hotfix's: the fix was merged with other
    /// work; shown for review.
    Merged,
    /// The base's content: deploying the candidate would undo the fix.
    Missing,
}

impl Verdict {
    /// The verdict's name: `included`, `merged` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Included => "included",
            Verdict::Merged => "merged",
            Verdict::Missing => "missing",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one changed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathVerdict {
    /// The path inside the release.
    pub path: String,
    /// What the candidate holds there.
    pub verdict: Verdict,
}

/// The verdict on `candidate` (its content at the change's path, None when absent) for one
/// change. None for a change that changes nothing (the same content before and after).
pub fn verdict<C: Eq>(change: &Change<C>, candidate: Option<&C>) -> Option<Verdict> {
    let (base, fix) = (change.base.as_ref(), change.fix.as_ref());
    if base == fix {
        None
    } else if candidate == fix {
        Some(Verdict::Included)
    } else if candidate == base {
        Some(Verdict::Missing)
    } else {
        Some(Verdict::Merged)
    }
}

/// The verdict on every changed path for a `candidate` tree, in the order of `changes`.
/// Changes that change nothing are left out.
pub fn verdicts<C: Eq>(changes: &[Change<C>], candidate: &BTreeMap<String, C>) -> Vec<PathVerdict> {
    changes
        .iter()
        .filter_map(|change| {
            verdict(change, candidate.get(&change.path)).map(|verdict| PathVerdict {
                path: change.path.clone(),
                verdict,
            })
        })
        .collect()
}

/// The changed paths of a hotfix grouped by verdict for one candidate release, each group in
/// the order of the changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// Paths that hold the hotfix's content.
    pub included: Vec<String>,
    /// Paths that hold other content than both the base and the hotfix: to review.
    pub merged: Vec<String>,
    /// Paths that hold the content from before the fix.
    pub missing: Vec<String>,
}

impl GuardReport {
    /// Whether deploying the candidate would undo the fix: some path is missing it.
    pub fn undoes_fix(&self) -> bool {
        !self.missing.is_empty()
    }
}

/// Judges a `candidate` tree against the `changes` of a hotfix (see [`hotfix_changes`]).
pub fn judge<C: Eq>(changes: &[Change<C>], candidate: &BTreeMap<String, C>) -> GuardReport {
    let mut report = GuardReport::default();
    for PathVerdict { path, verdict } in verdicts(changes, candidate) {
        match verdict {
            Verdict::Included => report.included.push(path),
            Verdict::Merged => report.merged.push(path),
            Verdict::Missing => report.missing.push(path),
        }
    }
    report
}

/// `paths` for a message: at most [`LISTED_PATHS`] of them, then how many more.
fn list_paths(paths: &[String]) -> String {
    let listed = paths[..paths.len().min(LISTED_PATHS)].join(", ");
    match paths.len().saturating_sub(LISTED_PATHS) {
        0 => listed,
        more => format!("{listed} and {more} more"),
    }
}

/// `(incident 7)` after the hotfix's version, or nothing.
fn incident_note(incident: &Option<i64>) -> String {
    incident
        .map(|id| format!(" (incident {id})"))
        .unwrap_or_default()
}

/// `1 path still holds its` or `3 paths still hold their`.
fn paths_still_hold(count: usize) -> String {
    if count == 1 {
        "1 path still holds its".to_owned()
    } else {
        format!("{count} paths still hold their")
    }
}

/// A deployment refused because the candidate release would undo a hotfix that runs in
/// production. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}; {}", refused_one(self), remedy(.app, .env, 1, false))]
pub struct Undone {
    /// The application.
    pub app: String,
    /// The environment the candidate was going to.
    pub env: String,
    /// The candidate release's version.
    pub candidate: String,
    /// The version of the hotfix it would undo.
    pub hotfix_version: String,
    /// The incident the hotfix fixed, if ferry knows it.
    pub incident: Option<i64>,
    /// The paths that still hold the content from before the fix.
    pub missing: Vec<String>,
}

/// Refuses deploying `candidate` of `app` to `env` when `report` (the candidate judged
/// against hotfix `hotfix_version`) says it would undo the fix. Not called with
/// `--override-guard`.
// The refusal is built at most once per deployment, so its size does not matter; keeping it
// unboxed lets callers match on its fields directly.
#[allow(clippy::result_large_err)]
pub fn check_guard(
    app: &str,
    env: &str,
    candidate: &str,
    hotfix_version: &str,
    incident: Option<i64>,
    report: &GuardReport,
) -> Result<(), Undone> {
    if !report.undoes_fix() {
        return Ok(());
    }
    Err(Undone {
        app: app.to_owned(),
        env: env.to_owned(),
        candidate: candidate.to_owned(),
        hotfix_version: hotfix_version.to_owned(),
        incident,
        missing: report.missing.clone(),
    })
}

/// What refuses one undone hotfix: the release, the hotfix and the paths missing the fix.
fn refused_one(undone: &Undone) -> String {
    format!(
        "release {} of {} would undo hotfix {}{} and is refused in {:?}: {} content from before the fix: {}",
        undone.candidate,
        undone.app,
        undone.hotfix_version,
        incident_note(&undone.incident),
        undone.env,
        paths_still_hold(undone.missing.len()),
        list_paths(&undone.missing)
    )
}

/// What a refusal of the regression guard suggests instead, for `count` undone hotfixes: a
/// release with the fixes, or, going back (`going_back`), a rollback to one that has them;
/// or an override.
fn remedy(app: &str, env: &str, count: usize, going_back: bool) -> String {
    let (fix, it) = match count {
        1 => ("fix", "it"),
        _ => ("fixes", "them"),
    };
    let instead = match going_back {
        true => format!(
            "go back to a release that has the {fix} instead (`ferry rollback {app} --env {env} --to VERSION`)"
        ),
        false => format!(
            "include the {fix} in the release (merge or backport {it} into the code, then create a new release)"
        ),
    };
    format!(
        "{instead}, or override the regression guard with --override-guard --reason TEXT \
         (needs approve permission on {env:?})"
    )
}

/// A deployment refused because the candidate would undo one or more shipped hotfixes:
/// every one of them is named, with its incident and the paths still missing the fix, and
/// what to do instead. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndoneHotfixes {
    pub undone: Vec<Undone>,
    /// The candidate is a release the environment ran before (a rollback), not a new one.
    pub going_back: bool,
}

impl fmt::Display for UndoneHotfixes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.undone.as_slice() {
            [] => write!(f, "no hotfix would be undone"),
            [one] => write!(
                f,
                "{}; {}",
                refused_one(one),
                remedy(&one.app, &one.env, 1, self.going_back)
            ),
            several @ [first, ..] => {
                let hotfixes: Vec<String> = several
                    .iter()
                    .map(|u| {
                        format!(
                            "hotfix {}{}: {} content from before the fix: {}",
                            u.hotfix_version,
                            incident_note(&u.incident),
                            paths_still_hold(u.missing.len()),
                            list_paths(&u.missing)
                        )
                    })
                    .collect();
                write!(
                    f,
                    "release {} of {} would undo {} hotfixes and is refused in {:?}: {}; {}",
                    first.candidate,
                    first.app,
                    several.len(),
                    first.env,
                    hotfixes.join("; "),
                    remedy(&first.app, &first.env, several.len(), self.going_back)
                )
            }
        }
    }
}

impl std::error::Error for UndoneHotfixes {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of `path=content` pairs, content a short string standing for a hash.
    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(path, content)| (path.to_string(), content.to_string()))
            .collect()
    }

    fn change(path: &str, base: Option<&str>, fix: Option<&str>) -> Change<String> {
        Change {
            path: path.into(),
            base: base.map(Into::into),
            fix: fix.map(Into::into),
        }
    }

    fn strings(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|path| path.to_string()).collect()
    }

    #[test]
    fn changes_between_base_and_hotfix() {
        type Files<'a> = &'a [(&'a str, &'a str)];
        // (base, fix, changes as (path, base, fix))
        #[allow(clippy::type_complexity)]
        let cases: &[(Files, Files, &[(&str, Option<&str>, Option<&str>)])] = &[
            (&[], &[], &[]),
            (&[("a", "1")], &[("a", "1")], &[]),
            (&[("a", "1")], &[("a", "2")], &[("a", Some("1"), Some("2"))]),
            (&[], &[("new", "1")], &[("new", None, Some("1"))]),
            (&[("old", "1")], &[], &[("old", Some("1"), None)]),
            // A move: a deletion plus an addition, sorted by path.
            (
                &[("b/x", "1"), ("keep", "k")],
                &[("a/x", "1"), ("keep", "k")],
                &[("a/x", None, Some("1")), ("b/x", Some("1"), None)],
            ),
            // Unchanged paths are left out; the rest sorted by path.
            (
                &[("z", "1"), ("m", "1"), ("a", "1"), ("same", "s")],
                &[("z", "2"), ("b", "1"), ("a", "1"), ("same", "s")],
                &[
                    ("b", None, Some("1")),
                    ("m", Some("1"), None),
                    ("z", Some("1"), Some("2")),
                ],
            ),
        ];
        for (base, fix, expected) in cases {
            let expected: Vec<Change<String>> = expected
                .iter()
                .map(|(path, before, after)| change(path, *before, *after))
                .collect();
            assert_eq!(
                hotfix_changes(&tree(base), &tree(fix)),
                expected,
                "{base:?} → {fix:?}"
            );
        }
    }

    #[test]
    fn verdicts_per_kind_of_change() {
        use Verdict::*;
        // (what the hotfix did, base, fix, candidate content, verdict)
        let cases = [
            (
                "modified: included",
                Some("old"),
                Some("new"),
                Some("new"),
                Included,
            ),
            (
                "modified: missing",
                Some("old"),
                Some("new"),
                Some("old"),
                Missing,
            ),
            (
                "modified: merged",
                Some("old"),
                Some("new"),
                Some("mix"),
                Merged,
            ),
            (
                "modified: candidate deleted it",
                Some("old"),
                Some("new"),
                None,
                Merged,
            ),
            (
                "deleted: candidate keeps base",
                Some("old"),
                None,
                Some("old"),
                Missing,
            ),
            (
                "deleted: candidate lacks it",
                Some("old"),
                None,
                None,
                Included,
            ),
            (
                "deleted: candidate has other",
                Some("old"),
                None,
                Some("mix"),
                Merged,
            ),
            (
                "added: candidate lacks it",
                None,
                Some("new"),
                None,
                Missing,
            ),
            (
                "added: candidate has it",
                None,
                Some("new"),
                Some("new"),
                Included,
            ),
            (
                "added: candidate has other",
                None,
                Some("new"),
                Some("mix"),
                Merged,
            ),
        ];
        for (what, base, fix, candidate, expected) in cases {
            let change = change("p", base, fix);
            let candidate = candidate.map(String::from);
            assert_eq!(
                verdict(&change, candidate.as_ref()),
                Some(expected),
                "{what}"
            );
            let tree: BTreeMap<String, String> =
                candidate.map(|c| ("p".to_owned(), c)).into_iter().collect();
            assert_eq!(
                verdicts(std::slice::from_ref(&change), &tree),
                [PathVerdict {
                    path: "p".into(),
                    verdict: expected
                }],
                "{what}"
            );
            let report = judge(&[change], &tree);
            assert_eq!(report.undoes_fix(), expected == Missing, "{what}");
        }
    }

    #[test]
    fn changes_that_change_nothing_are_not_judged() {
        for (base, fix) in [(Some("same"), Some("same")), (None, None)] {
            let change = change("p", base, fix);
            for candidate in [None, Some("same".to_owned()), Some("other".to_owned())] {
                assert_eq!(verdict(&change, candidate.as_ref()), None);
            }
            assert_eq!(
                judge(&[change], &tree(&[("p", "other")])),
                GuardReport::default()
            );
        }
    }

    #[test]
    fn whole_releases() {
        type Files<'a> = &'a [(&'a str, &'a str)];
        // (what, base, fix, candidate, included, merged, missing)
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, Files, Files, Files, &[&str], &[&str], &[&str])] = &[
            (
                "the candidate is the hotfix",
                &[("app.py", "1"), ("lib.py", "1")],
                &[("app.py", "2"), ("lib.py", "1")],
                &[("app.py", "2"), ("lib.py", "1")],
                &["app.py"],
                &[],
                &[],
            ),
            (
                "the candidate is the base",
                &[("app.py", "1"), ("lib.py", "1")],
                &[("app.py", "2"), ("lib.py", "1")],
                &[("app.py", "1"), ("lib.py", "1")],
                &[],
                &[],
                &["app.py"],
            ),
            (
                "a newer release that merged the fix; unchanged paths never judged",
                &[("app.py", "1"), ("lib.py", "1")],
                &[("app.py", "2"), ("lib.py", "1")],
                &[("app.py", "3"), ("lib.py", "9"), ("extra.py", "1")],
                &[],
                &["app.py"],
                &[],
            ),
            (
                "some paths of the fix lost, some kept",
                &[("a", "1"), ("b", "1"), ("c", "1")],
                &[("a", "2"), ("b", "2"), ("c", "2")],
                &[("a", "2"), ("b", "1"), ("c", "x")],
                &["a"],
                &["c"],
                &["b"],
            ),
            (
                "moved a → b; the candidate still has the old a and no b",
                &[("a", "1")],
                &[("b", "1")],
                &[("a", "1")],
                &[],
                &[],
                &["a", "b"],
            ),
            (
                "moved a → b; the candidate has b only",
                &[("a", "1")],
                &[("b", "1")],
                &[("b", "1")],
                &["a", "b"],
                &[],
                &[],
            ),
            (
                "moved a → b; the candidate has both",
                &[("a", "1")],
                &[("b", "1")],
                &[("a", "1"), ("b", "1")],
                &["b"],
                &[],
                &["a"],
            ),
            (
                "moved a → b; the candidate has neither",
                &[("a", "1")],
                &[("b", "1")],
                &[],
                &["a"],
                &[],
                &["b"],
            ),
            (
                "moved and edited; the candidate has the moved file changed again",
                &[("a", "1")],
                &[("b", "2")],
                &[("b", "3")],
                &["a"],
                &["b"],
                &[],
            ),
            (
                "an empty hotfix: nothing to judge",
                &[("a", "1")],
                &[("a", "1")],
                &[],
                &[],
                &[],
                &[],
            ),
            (
                "an empty hotfix of an empty base",
                &[],
                &[],
                &[("a", "1")],
                &[],
                &[],
                &[],
            ),
            (
                "an empty candidate against an added and a deleted file",
                &[("gone", "1")],
                &[("new", "1")],
                &[],
                &["gone"],
                &[],
                &["new"],
            ),
        ];
        for (what, base, fix, candidate, included, merged, missing) in cases {
            let changes = hotfix_changes(&tree(base), &tree(fix));
            let report = judge(&changes, &tree(candidate));
            assert_eq!(
                report,
                GuardReport {
                    included: strings(included),
                    merged: strings(merged),
                    missing: strings(missing),
                },
                "{what}"
            );
            assert_eq!(report.undoes_fix(), !missing.is_empty(), "{what}");
        }
    }

    #[test]
    fn content_identities_of_any_type() {
        let base: BTreeMap<String, [u8; 4]> = [("a".to_owned(), [1; 4])].into();
        let fix: BTreeMap<String, [u8; 4]> = [("a".to_owned(), [2; 4])].into();
        let changes = hotfix_changes(&base, &fix);
        assert!(judge(&changes, &base).undoes_fix());
        assert!(!judge(&changes, &fix).undoes_fix());
    }

    #[test]
    fn verdict_names() {
        for (verdict, name) in [
            (Verdict::Included, "included"),
            (Verdict::Merged, "merged"),
            (Verdict::Missing, "missing"),
        ] {
            assert_eq!(verdict.as_str(), name);
            assert_eq!(verdict.to_string(), name);
        }
    }

    #[test]
    fn check_guard_refuses_only_a_missing_fix() {
        let report = |missing: &[&str]| GuardReport {
            included: strings(&["ok"]),
            merged: strings(&["review"]),
            missing: strings(missing),
        };
        assert_eq!(
            check_guard("shop", "prd", "2.0", "1.4.3", Some(7), &report(&[])),
            Ok(())
        );
        assert_eq!(
            check_guard("shop", "pp", "2.0", "1.4.3", None, &report(&["a"])),
            Err(Undone {
                app: "shop".into(),
                env: "pp".into(),
                candidate: "2.0".into(),
                hotfix_version: "1.4.3".into(),
                incident: None,
                missing: strings(&["a"]),
            })
        );
    }

    #[test]
    fn the_refusal_names_everything_and_the_ways_out() {
        let undone = |incident, missing: Vec<String>| Undone {
            app: "shop".into(),
            env: "prd".into(),
            candidate: "2.0".into(),
            hotfix_version: "1.4.3".into(),
            incident,
            missing,
        };
        let eleven: Vec<String> = (1..=11).map(|n| format!("f{n}")).collect();
        let twenty: Vec<String> = (1..=20).map(|n| format!("f{n}")).collect();
        let cases = [
            (
                undone(Some(7), strings(&["app/pay.py"])),
                "release 2.0 of shop would undo hotfix 1.4.3 (incident 7) and is refused in \
                 \"prd\": 1 path still holds its content from before the fix: app/pay.py; \
                 include the fix in the release (merge or backport it into the code, then \
                 create a new release), or override the regression guard with \
                 --override-guard --reason TEXT (needs approve permission on \"prd\")",
            ),
            (
                undone(None, strings(&["a", "b"])),
                "release 2.0 of shop would undo hotfix 1.4.3 and is refused in \"prd\": 2 \
                 paths still hold their content from before the fix: a, b; include the fix in \
                 the release (merge or backport it into the code, then create a new release), \
                 or override the regression guard with --override-guard --reason TEXT (needs \
                 approve permission on \"prd\")",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
        // At most ten paths, then how many more.
        let cases = [
            (strings(&["a"]), "a"),
            (
                (1..=10).map(|n| format!("f{n}")).collect(),
                "f1, f2, f3, f4, f5, f6, f7, f8, f9, f10",
            ),
            (eleven, "f1, f2, f3, f4, f5, f6, f7, f8, f9, f10 and 1 more"),
            (
                twenty,
                "f1, f2, f3, f4, f5, f6, f7, f8, f9, f10 and 10 more",
            ),
        ];
        for (missing, listed) in cases {
            let count = missing.len();
            let message = undone(Some(7), missing).to_string();
            assert!(
                message.contains(&format!("before the fix: {listed}; include")),
                "{message}"
            );
            assert!(message.contains(&format!("{count} path")), "{message}");
        }
    }

    #[test]
    fn a_refusal_of_several_hotfixes_names_each() {
        let undone = |hotfix: &str, incident, missing: &[&str]| Undone {
            app: "shop".into(),
            env: "prd".into(),
            candidate: "2.0".into(),
            hotfix_version: hotfix.into(),
            incident,
            missing: strings(missing),
        };
        let one = undone("1.4.3", Some(7), &["app/pay.py"]);
        let cases = [
            (vec![], "no hotfix would be undone".to_owned()),
            // One hotfix: its own refusal, word for word.
            (vec![one.clone()], one.to_string()),
            (
                vec![one, undone("1.4.4", None, &["a", "b"])],
                "release 2.0 of shop would undo 2 hotfixes and is refused in \"prd\": hotfix \
                 1.4.3 (incident 7): 1 path still holds its content from before the fix: \
                 app/pay.py; hotfix 1.4.4: 2 paths still hold their content from before the \
                 fix: a, b; include the fixes in the release (merge or backport them into the \
                 code, then create a new release), or override the regression guard with \
                 --override-guard --reason TEXT (needs approve permission on \"prd\")"
                    .to_owned(),
            ),
        ];
        for (undone, message) in cases {
            let refusal = UndoneHotfixes {
                undone,
                going_back: false,
            };
            assert_eq!(refusal.to_string(), message);
        }
        // Going back, the way out is a rollback to a release with the fix.
        let going_back = UndoneHotfixes {
            undone: vec![undone("1.4.3", None, &["a"])],
            going_back: true,
        };
        assert_eq!(
            going_back.to_string(),
            "release 2.0 of shop would undo hotfix 1.4.3 and is refused in \"prd\": 1 path still \
             holds its content from before the fix: a; go back to a release that has the fix \
             instead (`ferry rollback shop --env prd --to VERSION`), or override the regression \
             guard with --override-guard --reason TEXT (needs approve permission on \"prd\")"
        );
    }
}
