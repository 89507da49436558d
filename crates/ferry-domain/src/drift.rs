//! Drift: what differs, on a target, from the release it runs. Someone edited, added,
//! deleted or chmod-ed a path under `current` by hand; the agent finds it by comparing the
//! tree with the release's manifest. Paths under `shared/` and those the release's
//! `ferry.toml` ignores are the application's to change, and never drift.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// How a path differs from the release.
    pub enum DriftChange ("drift change") {
        /// On the target, not in the release.
        Added = "added",
        /// In the release, gone from the target.
        Deleted = "deleted",
        /// A file whose content differs.
        Content = "content",
        /// The same content with other permissions.
        Mode = "mode",
        /// Another kind of thing (a directory where the release has a file, say).
        Kind = "kind",
        /// A symbolic link pointing elsewhere.
        Target = "target",
    }
}
