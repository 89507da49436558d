//! No silent downgrades: deploying a release older than the one running is refused unless it
//! is a `ferry rollback` or `--allow-downgrade` is given (the caller skips the check then).
//!
//! "Older" is by the environment's deployment history, not by version string: a candidate is
//! older when it was first deployed successfully in the environment before the running
//! release was. A release never deployed there is not a downgrade, whatever its version, and
//! neither is deploying the running release again.

/// A deployment refused as a downgrade. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "release {candidate} of {app} is older than {running}, which runs in {env:?} ({candidate} \
     was first deployed there before {running}): to go back on purpose use `ferry rollback \
     {app} --env {env} --to {candidate}`, or deploy again with --allow-downgrade"
)]
pub struct Downgrade {
    pub app: String,
    pub env: String,
    pub running: String,
    pub candidate: String,
}

/// Whether deploying `candidate` where `running` runs goes back in time. `history` lists the
/// versions in the order they were first deployed successfully in the environment, oldest
/// first.
pub fn is_downgrade<S: AsRef<str>>(history: &[S], running: Option<&str>, candidate: &str) -> bool {
    let first = |version: &str| history.iter().position(|seen| seen.as_ref() == version);
    match (running.and_then(first), first(candidate)) {
        (Some(running), Some(candidate)) => candidate < running,
        _ => false,
    }
}

/// Refuses deploying `candidate` of `app` to `env` when it is a downgrade (see
/// [`is_downgrade`]). Not called for `ferry rollback` nor with `--allow-downgrade`.
pub fn check_downgrade<S: AsRef<str>>(
    app: &str,
    env: &str,
    history: &[S],
    running: Option<&str>,
    candidate: &str,
) -> Result<(), Downgrade> {
    match running {
        Some(running) if is_downgrade(history, Some(running), candidate) => Err(Downgrade {
            app: app.to_owned(),
            env: env.to_owned(),
            running: running.to_owned(),
            candidate: candidate.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downgrades_by_history() {
        // (history oldest first, running, candidate, downgrade?)
        let cases: [(&[&str], Option<&str>, &str, bool); 14] = [
            (&[], None, "1.0", false),
            (&["1.0"], None, "1.0", false),
            (&["1.0", "1.1"], Some("1.1"), "1.0", true),
            (&["1.0", "1.1"], Some("1.1"), "1.1", false),
            (&["1.0", "1.1"], Some("1.1"), "1.2", false),
            (&["1.0", "1.1"], Some("1.0"), "1.1", false),
            // History, not version strings: 2.0 came first, so 1.9 is newer here.
            (&["2.0", "1.9"], Some("1.9"), "2.0", true),
            (&["2.0", "1.9"], Some("2.0"), "1.9", false),
            // A version never deployed here is not a downgrade, even if its string is lower.
            (&["1.5"], Some("1.5"), "0.1", false),
            // A redeploy after a rollback: first deployment counts, not the latest.
            (&["1.0", "1.1", "1.2"], Some("1.1"), "1.2", false),
            (&["1.0", "1.1", "1.2"], Some("1.1"), "1.0", true),
            (&["1.0", "1.1", "1.0"], Some("1.1"), "1.0", true),
            // Running something the history does not know: nothing to compare with.
            (&["1.0"], Some("9.9"), "1.0", false),
            (&["1.0", "1.1"], None, "1.0", false),
        ];
        for (history, running, candidate, expected) in cases {
            assert_eq!(
                is_downgrade(history, running, candidate),
                expected,
                "{history:?} running {running:?} → {candidate}"
            );
            assert_eq!(
                check_downgrade("shop", "prd", history, running, candidate).is_err(),
                expected
            );
        }
    }

    #[test]
    fn history_of_owned_strings() {
        let history = vec!["1.0".to_owned(), "1.1".to_owned()];
        assert!(is_downgrade(&history, Some("1.1"), "1.0"));
    }

    #[test]
    fn the_refusal_names_both_versions_and_the_ways_out() {
        let err = check_downgrade("shop", "prd", &["1.0", "1.1"], Some("1.1"), "1.0").unwrap_err();
        assert_eq!(
            err,
            Downgrade {
                app: "shop".into(),
                env: "prd".into(),
                running: "1.1".into(),
                candidate: "1.0".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "release 1.0 of shop is older than 1.1, which runs in \"prd\" (1.0 was first deployed \
             there before 1.1): to go back on purpose use `ferry rollback shop --env prd --to \
             1.0`, or deploy again with --allow-downgrade"
        );
    }
}
