//! Crash injection for tests: `failpoint(name)` aborts the process on the spot when the
//! environment variable `FERRY_FAILPOINT` equals `name`, like a `kill -9` at that line. The
//! crash test runs a deploy in a child process once per name in [`FAILPOINTS`] and checks
//! that the target still serves one complete release and that the next deploy converges.

/// The environment variable naming the failpoint to crash at.
pub const FAILPOINT_VAR: &str = "FERRY_FAILPOINT";

/// Every failpoint of the engine, in the order a deploy meets them.
pub const FAILPOINTS: &[&str] = &[
    "deploy.before_stage",
    "stage.before_partial",
    "stage.after_first_file",
    "stage.mid_files",
    "shared.before_link",
    "stage.before_dir_modes",
    "stage.before_syncfs",
    "stage.before_rename",
    "stage.after_rename",
    "shared.before_initialise",
    "shared.before_initial_rename",
    "deploy.before_hook",
    "deploy.after_hook",
    "switch.before_symlink",
    "switch.before_rename",
    "switch.after_rename",
    "deploy.before_health",
    "deploy.before_switch_back",
    "switch.before_remove",
    "deploy.after_switch_back",
    "deploy.before_journal",
    "journal.before_rename",
    "journal.after_rename",
    "cleanup.before_rename_aside",
    "cleanup.mid_delete",
    "cleanup.after_delete",
];

/// Aborts the process if `FERRY_FAILPOINT` names this point.
pub fn failpoint(name: &str) {
    debug_assert!(FAILPOINTS.contains(&name), "unlisted failpoint {name}");
    if std::env::var_os(FAILPOINT_VAR).is_some_and(|chosen| chosen == name) {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed name is placed in the code exactly once, and every placed name is
    /// listed, so the crash test really visits every point.
    #[test]
    fn every_failpoint_is_listed_and_placed_once() {
        let sources = [
            include_str!("cleanup.rs"),
            include_str!("deploy.rs"),
            include_str!("journal.rs"),
            include_str!("shared.rs"),
            include_str!("stage.rs"),
            include_str!("switch.rs"),
        ]
        .concat();
        for name in FAILPOINTS {
            let call = format!("failpoint(\"{name}\")");
            assert_eq!(sources.matches(&call).count(), 1, "{call}");
        }
        let placed = sources.matches("failpoint(\"").count();
        assert_eq!(placed, FAILPOINTS.len());
        let mut unique = FAILPOINTS.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), FAILPOINTS.len());
    }
}
