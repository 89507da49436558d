//! Which releases retention removes: all but the newest `keep`, never a pinned one.

/// A release as retention sees it, newest first in the list it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedRelease {
    pub version: String,
    /// Why the release must be kept whatever its age (deployed now, recently in production,
    /// the base of a hotfix), or `None`.
    pub pinned: Option<String>,
}

/// The versions to remove from `releases` (newest first) when keeping `keep` of them.
/// Pinned releases are kept and count toward `keep`.
pub fn releases_to_prune(releases: &[RetainedRelease], keep: u32) -> Vec<String> {
    releases
        .iter()
        .enumerate()
        .filter(|(index, release)| *index >= keep as usize && release.pinned.is_none())
        .map(|(_, release)| release.version.clone())
        .collect()
}

/// The releases past the newest `keep` that retention keeps because they are pinned, with
/// why, newest first: what a user asks about when a release they expected gone stays.
pub fn kept_past_keep(releases: &[RetainedRelease], keep: u32) -> Vec<(&str, &str)> {
    releases
        .iter()
        .skip(keep as usize)
        .filter_map(|r| Some((r.version.as_str(), r.pinned.as_deref()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `releases` is newest first; a `*` suffix pins a release.
    fn check(releases: &[&str], keep: u32, expected: &[&str]) {
        let releases: Vec<RetainedRelease> = releases
            .iter()
            .map(|r| RetainedRelease {
                version: r.trim_end_matches('*').to_owned(),
                pinned: r.ends_with('*').then(|| "deployed".to_owned()),
            })
            .collect();
        assert_eq!(releases_to_prune(&releases, keep), expected, "keep {keep}");
        let kept: Vec<&str> = kept_past_keep(&releases, keep)
            .into_iter()
            .map(|(version, _)| version)
            .collect();
        let expected_kept: Vec<&str> = releases
            .iter()
            .skip(keep as usize)
            .map(|r| r.version.as_str())
            .filter(|v| !expected.contains(v))
            .collect();
        assert_eq!(kept, expected_kept, "keep {keep}");
    }

    #[test]
    fn retention() {
        check(&[], 3, &[]);
        check(&["5", "4", "3"], 3, &[]);
        check(&["5", "4", "3", "2", "1"], 3, &["2", "1"]);
        check(&["5", "4", "3", "2", "1"], 1, &["4", "3", "2", "1"]);
        check(&["5", "4", "3", "2*", "1"], 2, &["3", "1"]);
        check(&["5", "4", "3", "2*", "1*"], 1, &["4", "3"]);
        check(&["5*", "4", "3"], 1, &["4", "3"]);
    }
}
