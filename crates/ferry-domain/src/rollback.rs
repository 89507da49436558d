//! Where `ferry rollback` may go: only back to a release that went live in the environment
//! before. A rollback skips the release's lifecycle, downgrade checks and approvals (going
//! back is its purpose), so it must not become a way to put an arbitrary release into an
//! environment; that is what `ferry deploy` is for, under the pipeline's policy.
//!
//! The regression guard still applies (the caller runs it): going back past a shipped hotfix
//! undoes the fix.

/// A rollback refused. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error("{app} has never been deployed to {env}: nothing to roll back")]
    NeverDeployed { app: String, env: String },
    #[error("{version} is what {env} runs already")]
    AlreadyRunning { version: String, env: String },
    #[error(
        "release {version} of {app} never went live in {env}: a rollback only goes back to a \
         release that ran there; use `ferry deploy {app} {version} --to {env}` to deploy it \
         under the pipeline's policy"
    )]
    NeverLive {
        app: String,
        env: String,
        version: String,
    },
    #[error("{app} has no earlier release in {env} to go back to")]
    NothingEarlier { app: String, env: String },
}

impl RollbackError {
    /// A request outside the rule (the version named never ran there), as opposed to there
    /// being nothing to go back to.
    pub fn is_policy(&self) -> bool {
        matches!(self, RollbackError::NeverLive { .. })
    }
}

/// The release a rollback of `app` in `env` goes back to. `live` lists the versions whose
/// deployments went live there, newest first (the first is what runs); `bad` the versions
/// rolled back from there; `requested` is `--to`. Without `--to`, the newest earlier release
/// not rolled back from; with it, any release that went live there before, bad or not (the
/// caller asked for it by name).
pub fn rollback_target<S: AsRef<str>>(
    app: &str,
    env: &str,
    live: &[S],
    bad: &[S],
    requested: Option<&str>,
) -> Result<String, RollbackError> {
    let current = live
        .first()
        .map(AsRef::as_ref)
        .ok_or_else(|| RollbackError::NeverDeployed {
            app: app.to_owned(),
            env: env.to_owned(),
        })?;
    match requested {
        Some(version) if version == current => Err(RollbackError::AlreadyRunning {
            version: version.to_owned(),
            env: env.to_owned(),
        }),
        Some(version) if live.iter().any(|v| v.as_ref() == version) => Ok(version.to_owned()),
        Some(version) => Err(RollbackError::NeverLive {
            app: app.to_owned(),
            env: env.to_owned(),
            version: version.to_owned(),
        }),
        None => live
            .iter()
            .map(AsRef::as_ref)
            .find(|v| *v != current && !bad.iter().any(|b| b.as_ref() == *v))
            .map(str::to_owned)
            .ok_or_else(|| RollbackError::NothingEarlier {
                app: app.to_owned(),
                env: env.to_owned(),
            }),
    }
}

/// A promotion that would bring back a release rolled back from the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{version} of {app} was rolled back from {env}, so promoting does not bring it back; \
     deploy it by name if you mean to (`ferry deploy {app} {version} --to {env}`)"
)]
pub struct RolledBackFrom {
    pub app: String,
    pub env: String,
    pub version: String,
}

/// Whether `ferry promote` may take `version` of `app` into `env`: not when it was rolled back
/// from there (`bad`). Promoting picks the version by itself, and nothing should bring a
/// release rolled back from an environment back there without someone naming it.
pub fn check_promoted_release<S: AsRef<str>>(
    app: &str,
    env: &str,
    version: &str,
    bad: &[S],
) -> Result<(), RolledBackFrom> {
    if bad.iter().any(|b| b.as_ref() == version) {
        return Err(RolledBackFrom {
            app: app.to_owned(),
            env: env.to_owned(),
            version: version.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_promotion_never_brings_back_a_release_rolled_back_from_there() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("2.0", &[], true),
            ("2.0", &["1.9"], true),
            ("2.0", &["1.9", "2.0"], false),
            ("2.0.1", &["2.0"], true),
        ];
        for (version, bad, allowed) in cases {
            let got = check_promoted_release("web", "prd", version, bad);
            assert_eq!(got.is_ok(), *allowed, "{version} {bad:?}");
            if let Err(error) = got {
                assert!(
                    error.to_string().contains("ferry deploy web 2.0 --to prd"),
                    "{error}"
                );
            }
        }
    }

    /// Live versions newest first, bad versions, `--to`, and the target or how the refusal
    /// starts.
    type Case<'a> = (
        &'a [&'a str],
        &'a [&'a str],
        Option<&'a str>,
        Result<&'a str, &'a str>,
    );

    #[test]
    fn a_rollback_goes_back_only_to_what_went_live_there() {
        let cases: &[Case] = &[
            (&[], &[], None, Err("web has never been deployed to prd")),
            (
                &[],
                &[],
                Some("1.0"),
                Err("web has never been deployed to prd"),
            ),
            (
                &["1.0"],
                &[],
                None,
                Err("web has no earlier release in prd"),
            ),
            (&["1.1", "1.0"], &[], None, Ok("1.0")),
            // A redeploy of the running release is not earlier.
            (&["1.1", "1.1", "1.0"], &[], None, Ok("1.0")),
            // Releases rolled back from are skipped, unless named.
            (&["1.2", "1.1", "1.0"], &["1.1"], None, Ok("1.0")),
            (
                &["1.2", "1.1"],
                &["1.1"],
                None,
                Err("web has no earlier release"),
            ),
            (&["1.2", "1.1", "1.0"], &["1.1"], Some("1.1"), Ok("1.1")),
            (&["1.2", "1.1", "1.0"], &[], Some("1.0"), Ok("1.0")),
            (
                &["1.2", "1.1"],
                &[],
                Some("1.2"),
                Err("1.2 is what prd runs already"),
            ),
            // Anything that never ran there is a deployment, under policy.
            (
                &["1.2", "1.1"],
                &[],
                Some("1.3"),
                Err(
                    "release 1.3 of web never went live in prd: a rollback only goes back \
                     to a release that ran there; use `ferry deploy web 1.3 --to prd`",
                ),
            ),
            (
                &["1.2", "1.1"],
                &[],
                Some("0.9"),
                Err("release 0.9 of web never went live"),
            ),
        ];
        for (live, bad, requested, expected) in cases {
            let got = rollback_target("web", "prd", live, bad, *requested);
            match (&got, expected) {
                (Ok(target), Ok(expected)) => assert_eq!(target, expected),
                (Err(error), Err(start)) => assert!(
                    error.to_string().starts_with(start),
                    "{live:?} {bad:?} {requested:?}: {error}"
                ),
                _ => panic!("{live:?} {bad:?} {requested:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn only_naming_a_release_that_never_ran_there_is_a_policy_refusal() {
        let never_live = rollback_target("web", "prd", &["1.1"], &[], Some("2.0"));
        assert!(never_live.unwrap_err().is_policy());
        let nothing = rollback_target("web", "prd", &["1.1"], &[], None);
        assert!(!nothing.unwrap_err().is_policy());
    }
}
