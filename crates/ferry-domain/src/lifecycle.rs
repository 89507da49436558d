//! Lifecycles: which environments a release has earned.
//!
//! A product release enters the first environment freely and each later one only after it
//! succeeded in the environment right before it (dev → pp → prd, or whatever order
//! `env create --after` made). An optional environment (`env set --optional true`) may be
//! skipped: past it, success in the nearest earlier environment that is not optional counts,
//! as does success in any optional one in between. A hotfix release (`--hotfix-of`) starts at its entry
//! environment, pp, and goes on from there the same way; it never goes to an environment
//! before its entry. A release that already succeeded in an environment has earned it and may
//! go there again. `ferry promote` moves one step along the pipeline, or past optional
//! environments to the next one that is not.

use serde::{Deserialize, Serialize};

use crate::pipeline::Environment;

/// The name of the environment hotfixes start at when the pipeline has one.
pub const HOTFIX_ENTRY: &str = "pp";

/// What a release is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseKind {
    /// The normal product path: every environment in order.
    Product,
    /// A fix of a release running in production (`--hotfix-of BASE`): starts at pp.
    Hotfix,
}

/// The release asking to enter an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub app: &'a str,
    pub version: &'a str,
    pub kind: ReleaseKind,
}

/// Why a release may not go where asked. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no environment named {0:?}: see `ferry env list`")]
    UnknownEnvironment(String),
    #[error(
        "release {version} of {app} has not succeeded in {must_pass:?}, which comes before \
         {env:?}: deploy it to {next_step:?} first: `ferry deploy {app} {version} --to {next_step}`"
    )]
    NotEarned {
        app: String,
        version: String,
        env: String,
        /// The environment right before `env`.
        must_pass: String,
        /// The environment the release can enter now on its way to `must_pass`.
        next_step: String,
    },
    #[error(
        "release {version} of {app} is a hotfix, and a hotfix is never deployed to {env:?}: \
         hotfixes start at {entry:?}: `ferry deploy {app} {version} --to {entry}`"
    )]
    HotfixBeforeEntry {
        app: String,
        version: String,
        env: String,
        entry: String,
    },
    #[error(
        "{to:?} is not the environment after {from:?}, which is {next:?}: promote goes one step \
         at a time: `ferry promote {app} --from {from} --to {next}`"
    )]
    NotNextEnvironment {
        app: String,
        from: String,
        to: String,
        next: String,
    },
    #[error(
        "{from:?} is the last environment of the pipeline: there is nothing to promote it to \
         (see `ferry env list`)"
    )]
    NothingAfter { from: String },
}

/// The pipeline in order of position.
fn ordered(pipeline: &[Environment]) -> Vec<&Environment> {
    let mut envs: Vec<&Environment> = pipeline.iter().collect();
    envs.sort_by_key(|env| env.position);
    envs
}

/// Where hotfixes start: the environment named `pp` if there is one, else the one right
/// before the last (pp in dev → pp → prd), else the only one. `None` for an empty pipeline.
pub fn hotfix_entry(pipeline: &[Environment]) -> Option<&Environment> {
    if let Some(pp) = pipeline.iter().find(|env| env.name == HOTFIX_ENTRY) {
        return Some(pp);
    }
    let envs = ordered(pipeline);
    envs.len()
        .checked_sub(2)
        .or_else(|| envs.len().checked_sub(1))
        .map(|index| envs[index])
}

/// The environments after `from` that `ferry promote` may deploy to: the next one, and past
/// it while it is optional, up to the first one that is not (an optional environment may be
/// skipped). Empty when `from` is unknown or the last environment.
fn promotion_reach<'a>(pipeline: &'a [Environment], from: &str) -> Vec<&'a Environment> {
    let Some(position) = pipeline
        .iter()
        .find(|env| env.name == from)
        .map(|env| env.position)
    else {
        return Vec::new();
    };
    let after: Vec<&Environment> = ordered(pipeline)
        .into_iter()
        .filter(|env| env.position > position)
        .collect();
    let reach = after
        .iter()
        .position(|env| !env.optional)
        .unwrap_or(after.len().saturating_sub(1));
    after.into_iter().take(reach + 1).collect()
}

/// Where `ferry promote` goes from `from` when it skips what may be skipped: the first
/// environment after `from` that is not optional (or the last one when all are optional).
pub fn promotion_target<'a>(pipeline: &'a [Environment], from: &str) -> Option<&'a Environment> {
    promotion_reach(pipeline, from).pop()
}

/// Checks `ferry promote APP --from FROM --to TO`: both exist and `to` is the environment
/// right after `from`, or one further on with only optional environments in between.
/// Returns that environment.
pub fn check_promotion<'a>(
    pipeline: &'a [Environment],
    app: &str,
    from: &str,
    to: &str,
) -> Result<&'a Environment, LifecycleError> {
    for name in [from, to] {
        if !pipeline.iter().any(|env| env.name == name) {
            return Err(LifecycleError::UnknownEnvironment(name.to_owned()));
        }
    }
    let reach = promotion_reach(pipeline, from);
    let next = reach.last().ok_or_else(|| LifecycleError::NothingAfter {
        from: from.to_owned(),
    })?;
    reach
        .iter()
        .find(|env| env.name == to)
        .copied()
        .ok_or_else(|| LifecycleError::NotNextEnvironment {
            app: app.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            next: next.name.clone(),
        })
}

/// Decides whether `release` may enter `target`, given the environments where this exact
/// release succeeded. A refusal names the environment it must pass first and the command
/// that gets it there.
pub fn check_entry<S: AsRef<str>>(
    pipeline: &[Environment],
    release: &Candidate<'_>,
    succeeded_in: &[S],
    target: &str,
) -> Result<(), LifecycleError> {
    let envs = ordered(pipeline);
    let index = envs
        .iter()
        .position(|env| env.name == target)
        .ok_or_else(|| LifecycleError::UnknownEnvironment(target.to_owned()))?;
    let succeeded = |index: usize| {
        succeeded_in
            .iter()
            .any(|name| name.as_ref() == envs[index].name)
    };
    // Where the release may enter with no history: the first environment, or the hotfix entry.
    let start = match release.kind {
        ReleaseKind::Product => 0,
        ReleaseKind::Hotfix => {
            let entry = hotfix_entry(pipeline).map_or(0, |entry| {
                envs.iter()
                    .position(|env| env.name == entry.name)
                    .unwrap_or(0)
            });
            if index < entry {
                return Err(LifecycleError::HotfixBeforeEntry {
                    app: release.app.to_owned(),
                    version: release.version.to_owned(),
                    env: target.to_owned(),
                    entry: envs[entry].name.clone(),
                });
            }
            entry
        }
    };
    // The environment a release must have passed to enter `index`: the nearest earlier one
    // that is not optional, unless it succeeded in an optional one on the way there. `None`
    // when nothing stands in between (the start, or only optional environments before it).
    let gate = |index: usize| {
        for earlier in (start..index).rev() {
            if succeeded(earlier) {
                return None;
            }
            if !envs[earlier].optional {
                return Some(earlier);
            }
        }
        None
    };
    let may_enter = |index: usize| succeeded(index) || gate(index).is_none();
    let Some(must_pass) = gate(index).filter(|_| !succeeded(index)) else {
        return Ok(());
    };
    let next_step = (start..=must_pass)
        .rev()
        .find(|&index| may_enter(index))
        .unwrap_or(start);
    Err(LifecycleError::NotEarned {
        app: release.app.to_owned(),
        version: release.version.to_owned(),
        env: target.to_owned(),
        must_pass: envs[must_pass].name.clone(),
        next_step: envs[next_step].name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{default_pipeline, Policy};

    /// A pipeline of these names in order, listed out of order to show position decides.
    fn pipeline(names: &[&str]) -> Vec<Environment> {
        let mut envs: Vec<Environment> = names
            .iter()
            .enumerate()
            .map(|(position, name)| Environment {
                name: (*name).to_owned(),
                position: position as u32,
                policy: Policy::OPEN,
                optional: false,
            })
            .collect();
        envs.reverse();
        envs
    }

    const PRODUCT: Candidate = Candidate {
        app: "shop",
        version: "1.2.0",
        kind: ReleaseKind::Product,
    };
    const HOTFIX: Candidate = Candidate {
        app: "shop",
        version: "1.1.1",
        kind: ReleaseKind::Hotfix,
    };

    /// `Ok` as "ok"; `NotEarned` as "pass MUST_PASS via NEXT_STEP"; `HotfixBeforeEntry` as
    /// "hotfix starts at ENTRY"; anything else in full.
    fn short(result: Result<(), LifecycleError>) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(LifecycleError::NotEarned {
                must_pass,
                next_step,
                ..
            }) => format!("pass {must_pass} via {next_step}"),
            Err(LifecycleError::HotfixBeforeEntry { entry, .. }) => {
                format!("hotfix starts at {entry}")
            }
            Err(other) => other.to_string(),
        }
    }

    #[test]
    fn product_releases_pass_every_environment_in_order() {
        let envs = default_pipeline();
        // (succeeded in, target, expected)
        let cases: [(&[&str], &str, &str); 12] = [
            (&[], "dev", "ok"),
            (&[], "pp", "pass dev via dev"),
            (&[], "prd", "pass pp via dev"),
            (&["dev"], "dev", "ok"),
            (&["dev"], "pp", "ok"),
            (&["dev"], "prd", "pass pp via pp"),
            (&["dev", "pp"], "prd", "ok"),
            (&["pp"], "prd", "ok"),
            // Succeeded there before: earned, may go again.
            (&["prd"], "prd", "ok"),
            (&["pp"], "pp", "ok"),
            (&["pp"], "dev", "ok"),
            (
                &[],
                "qa",
                "no environment named \"qa\": see `ferry env list`",
            ),
        ];
        for (succeeded, target, expected) in cases {
            assert_eq!(
                short(check_entry(&envs, &PRODUCT, succeeded, target)),
                expected,
                "{succeeded:?} → {target}"
            );
        }
    }

    #[test]
    fn hotfixes_start_at_pp() {
        let envs = default_pipeline();
        let cases: [(&[&str], &str, &str); 7] = [
            (&[], "dev", "hotfix starts at pp"),
            (&["pp", "prd"], "dev", "hotfix starts at pp"),
            (&[], "pp", "ok"),
            (&[], "prd", "pass pp via pp"),
            (&["pp"], "prd", "ok"),
            (&["pp"], "pp", "ok"),
            (&["prd"], "prd", "ok"),
        ];
        for (succeeded, target, expected) in cases {
            assert_eq!(
                short(check_entry(&envs, &HOTFIX, succeeded, target)),
                expected,
                "{succeeded:?} → {target}"
            );
        }
    }

    #[test]
    fn other_pipelines() {
        /// (pipeline, kind, succeeded in, target, expected)
        type Row<'a> = (&'a [&'a str], ReleaseKind, &'a [&'a str], &'a str, &'a str);
        let cases: [Row; 16] = [
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Product,
                &["dev"],
                "qa",
                "ok",
            ),
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Product,
                &["dev"],
                "pp",
                "pass qa via qa",
            ),
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Product,
                &[],
                "prd",
                "pass pp via dev",
            ),
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Product,
                &["dev", "qa"],
                "prd",
                "pass pp via pp",
            ),
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Hotfix,
                &[],
                "qa",
                "hotfix starts at pp",
            ),
            (
                &["dev", "qa", "pp", "prd"],
                ReleaseKind::Hotfix,
                &[],
                "pp",
                "ok",
            ),
            // With an environment after prd, pp is still where hotfixes start.
            (
                &["dev", "pp", "prd", "dr"],
                ReleaseKind::Hotfix,
                &[],
                "pp",
                "ok",
            ),
            (
                &["dev", "pp", "prd", "dr"],
                ReleaseKind::Hotfix,
                &["pp"],
                "dr",
                "pass prd via prd",
            ),
            (
                &["dev", "pp", "prd", "dr"],
                ReleaseKind::Hotfix,
                &["pp", "prd"],
                "dr",
                "ok",
            ),
            // Without a pp: the environment right before the last.
            (
                &["dev", "test", "staging", "live"],
                ReleaseKind::Hotfix,
                &[],
                "staging",
                "ok",
            ),
            (
                &["dev", "test", "staging", "live"],
                ReleaseKind::Hotfix,
                &[],
                "test",
                "hotfix starts at staging",
            ),
            (
                &["dev", "test", "staging", "live"],
                ReleaseKind::Hotfix,
                &[],
                "live",
                "pass staging via staging",
            ),
            (&["dev", "live"], ReleaseKind::Hotfix, &[], "dev", "ok"),
            (
                &["dev", "live"],
                ReleaseKind::Hotfix,
                &[],
                "live",
                "pass dev via dev",
            ),
            (&["live"], ReleaseKind::Hotfix, &[], "live", "ok"),
            (&["live"], ReleaseKind::Product, &[], "live", "ok"),
        ];
        for (names, kind, succeeded, target, expected) in cases {
            let release = Candidate { kind, ..PRODUCT };
            assert_eq!(
                short(check_entry(&pipeline(names), &release, succeeded, target)),
                expected,
                "{names:?} {kind:?} {succeeded:?} → {target}"
            );
        }
    }

    /// A pipeline of these names in order; those ending in `?` are optional.
    fn with_optional(names: &[&str]) -> Vec<Environment> {
        let mut envs = pipeline(
            &names
                .iter()
                .map(|n| n.trim_end_matches('?'))
                .collect::<Vec<_>>(),
        );
        for env in &mut envs {
            env.optional = names.contains(&format!("{}?", env.name).as_str());
        }
        envs
    }

    #[test]
    fn optional_environments_may_be_skipped() {
        /// (pipeline, kind, succeeded in, target, expected)
        type Row<'a> = (&'a [&'a str], ReleaseKind, &'a [&'a str], &'a str, &'a str);
        use ReleaseKind::{Hotfix, Product};
        let qa = &["dev", "qa?", "pp", "prd"][..];
        let cases: [Row; 17] = [
            // Past an optional qa, success in dev is enough for pp.
            (qa, Product, &["dev"], "pp", "ok"),
            (qa, Product, &["dev"], "qa", "ok"),
            (qa, Product, &[], "qa", "pass dev via dev"),
            (qa, Product, &[], "pp", "pass dev via dev"),
            // Success in the optional environment counts as well.
            (qa, Product, &["qa"], "pp", "ok"),
            // Only the optional one is skipped: prd still needs pp.
            (qa, Product, &["dev"], "prd", "pass pp via pp"),
            (qa, Product, &["dev", "qa"], "prd", "pass pp via pp"),
            (qa, Product, &["pp"], "prd", "ok"),
            // Two optional environments in a row, passed in either.
            (&["dev", "qa?", "uat?", "pp"], Product, &["dev"], "pp", "ok"),
            (&["dev", "qa?", "uat?", "pp"], Product, &["qa"], "pp", "ok"),
            (
                &["dev", "qa?", "uat?", "pp"],
                Product,
                &[],
                "pp",
                "pass dev via dev",
            ),
            // An optional first environment: the next one may be entered freely.
            (&["sandbox?", "dev", "prd"], Product, &[], "dev", "ok"),
            (
                &["sandbox?", "dev", "prd"],
                Product,
                &[],
                "prd",
                "pass dev via dev",
            ),
            // A hotfix starts at pp whatever comes before it.
            (qa, Hotfix, &[], "pp", "ok"),
            (qa, Hotfix, &[], "qa", "hotfix starts at pp"),
            // An optional pp is the hotfix entry still, and may be skipped on the way to prd.
            (&["dev", "pp?", "prd"], Hotfix, &[], "prd", "ok"),
            (&["dev", "pp?", "prd"], Product, &["dev"], "prd", "ok"),
        ];
        for (names, kind, succeeded, target, expected) in cases {
            let release = Candidate { kind, ..PRODUCT };
            assert_eq!(
                short(check_entry(
                    &with_optional(names),
                    &release,
                    succeeded,
                    target
                )),
                expected,
                "{names:?} {kind:?} {succeeded:?} → {target}"
            );
        }
    }

    #[test]
    fn promotions_skip_optional_environments() {
        // (pipeline, from, to, expected)
        let cases: [(&[&str], &str, &str, &str); 7] = [
            (&["dev", "qa?", "pp", "prd"], "dev", "pp", "ok pp"),
            (&["dev", "qa?", "pp", "prd"], "dev", "qa", "ok qa"),
            (&["dev", "qa?", "pp", "prd"], "qa", "pp", "ok pp"),
            (&["dev", "qa?", "uat?", "pp"], "dev", "pp", "ok pp"),
            (
                &["dev", "qa?", "pp", "prd"],
                "dev",
                "prd",
                "\"prd\" is not the environment after \"dev\", which is \"pp\": promote goes one step at a time: `ferry promote shop --from dev --to pp`",
            ),
            // Only optional environments after: the last one is as far as promote goes.
            (&["dev", "pp", "dr?"], "pp", "dr", "ok dr"),
            (&["dev", "qa?", "dr?"], "dev", "dr", "ok dr"),
        ];
        for (names, from, to, expected) in cases {
            let envs = with_optional(names);
            let result = match check_promotion(&envs, "shop", from, to) {
                Ok(env) => format!("ok {}", env.name),
                Err(err) => err.to_string(),
            };
            assert_eq!(result, expected, "{names:?} {from} → {to}");
        }
        let envs = with_optional(&["dev", "qa?", "pp", "prd"]);
        assert_eq!(
            promotion_target(&envs, "dev").map(|e| e.name.as_str()),
            Some("pp")
        );
    }

    #[test]
    fn hotfix_entries() {
        let cases: [(&[&str], Option<&str>); 6] = [
            (&[], None),
            (&["live"], Some("live")),
            (&["dev", "live"], Some("dev")),
            (&["dev", "pp", "prd"], Some("pp")),
            (&["dev", "pp", "prd", "dr"], Some("pp")),
            (&["dev", "qa", "staging", "live"], Some("staging")),
        ];
        for (names, expected) in cases {
            let envs = pipeline(names);
            assert_eq!(
                hotfix_entry(&envs).map(|env| env.name.as_str()),
                expected,
                "{names:?}"
            );
        }
    }

    #[test]
    fn promotions() {
        let envs = pipeline(&["dev", "qa", "pp", "prd"]);
        let next = |from| promotion_target(&envs, from).map(|env| env.name.as_str());
        assert_eq!(next("dev"), Some("qa"));
        assert_eq!(next("qa"), Some("pp"));
        assert_eq!(next("pp"), Some("prd"));
        assert_eq!(next("prd"), None);
        assert_eq!(next("nope"), None);

        let check = |from, to| match check_promotion(&envs, "shop", from, to) {
            Ok(env) => format!("ok {}", env.name),
            Err(err) => err.to_string(),
        };
        let cases = [
            ("dev", "qa", "ok qa"),
            ("pp", "prd", "ok prd"),
            (
                "dev",
                "prd",
                "\"prd\" is not the environment after \"dev\", which is \"qa\": promote goes one step at a time: `ferry promote shop --from dev --to qa`",
            ),
            (
                "prd",
                "pp",
                "\"prd\" is the last environment of the pipeline: there is nothing to promote it to (see `ferry env list`)",
            ),
            (
                "pp",
                "dev",
                "\"dev\" is not the environment after \"pp\", which is \"prd\": promote goes one step at a time: `ferry promote shop --from pp --to prd`",
            ),
            ("pp", "pp", "\"pp\" is not the environment after \"pp\", which is \"prd\": promote goes one step at a time: `ferry promote shop --from pp --to prd`"),
            ("uat", "prd", "no environment named \"uat\": see `ferry env list`"),
            ("pp", "dr", "no environment named \"dr\": see `ferry env list`"),
        ];
        for (from, to, expected) in cases {
            assert_eq!(check(from, to), expected, "{from} → {to}");
        }
    }

    #[test]
    fn messages_name_the_way_forward() {
        let envs = default_pipeline();
        let cases = [
            (
                PRODUCT,
                &[][..],
                "prd",
                "release 1.2.0 of shop has not succeeded in \"pp\", which comes before \"prd\": deploy it to \"dev\" first: `ferry deploy shop 1.2.0 --to dev`",
            ),
            (
                PRODUCT,
                &["dev"][..],
                "prd",
                "release 1.2.0 of shop has not succeeded in \"pp\", which comes before \"prd\": deploy it to \"pp\" first: `ferry deploy shop 1.2.0 --to pp`",
            ),
            (
                HOTFIX,
                &[][..],
                "dev",
                "release 1.1.1 of shop is a hotfix, and a hotfix is never deployed to \"dev\": hotfixes start at \"pp\": `ferry deploy shop 1.1.1 --to pp`",
            ),
        ];
        for (release, succeeded, target, expected) in cases {
            let err = check_entry(&envs, &release, succeeded, target).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
    }
}
