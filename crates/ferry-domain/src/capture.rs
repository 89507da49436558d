//! Capturing hand edits on a target as a release (`ferry drift capture`): the rules that
//! need no I/O. The captured release is a hotfix of the release the target ran, so its
//! version must not read as older than that one.

use std::cmp::Ordering;

/// Compares two versions the way people read them: split at `.`, `-`, `+` and `_`, numeric
/// parts as numbers (`1.10` after `1.9`), other parts as text, and a version that goes on
/// after the other's last part is the later one (`1.0-captured.1` after `1.0`). Versions
/// that first differ where one has a number and the other text (`banana` and `1.1.3`,
/// `1.0.a` and `1.0.1`) are not on one line: they do not compare (`None`).
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let parts = |v: &'_ str| -> Vec<String> {
        v.trim_start_matches('v')
            .split(['.', '-', '+', '_'])
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Err(_), Err(_)) => x.cmp(y),
            _ => return None,
        };
        if order != Ordering::Equal {
            return Some(order);
        }
    }
    Some(a.len().cmp(&b.len()))
}

/// Refuses capturing as `candidate` what runs `running` unless `candidate` reads as a later
/// version of the same line: a capture is a hotfix of the running release.
pub fn check_capture_version(app: &str, running: &str, candidate: &str) -> Result<(), String> {
    match compare_versions(candidate, running) {
        Some(Ordering::Greater) => Ok(()),
        _ => Err(format!(
            "{candidate} is not a later version than {running}, the release of {app} the target runs: a capture is a hotfix of it; name it after it, e.g. {running}-captured.1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_people_read_them() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Some(Equal)),
            ("1.0.1", "1.0", Some(Greater)),
            ("1.0-captured.1", "1.0", Some(Greater)),
            ("1.10", "1.9", Some(Greater)),
            ("0.9", "1.0", Some(Less)),
            ("v2", "1.9", Some(Greater)),
            ("1.0-hotfix.2", "1.0-hotfix.10", Some(Less)),
            ("1.0-b", "1.0-a", Some(Greater)),
            // Not on one line: a number against text where they first differ.
            ("1.0.a", "1.0.1", None),
            ("banana", "1.1.3", None),
            ("1.1.3-rc", "1.1.3-1", None),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
            assert_eq!(
                compare_versions(b, a),
                expected.map(Ordering::reverse),
                "{b} vs {a}"
            );
        }
    }

    #[test]
    fn a_capture_is_named_after_the_release_it_fixes() {
        assert!(check_capture_version("shop", "1.0", "1.0.1").is_ok());
        assert!(check_capture_version("shop", "1.0", "1.0-captured.1").is_ok());
        for refused in ["1.0", "0.9", "1", "banana", "v", "1.a"] {
            let reason = check_capture_version("shop", "1.0", refused).unwrap_err();
            assert!(reason.contains("1.0-captured.1"), "{reason}");
        }
    }
}
