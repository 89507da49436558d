//! Backups of an application's data on a target (`ferry backup`): the words they are
//! recorded with. Not the server's own backup (`ferry server backup`), which copies
//! ferry's database.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Why an application backup was taken.
    pub enum BackupReason ("backup reason") {
        /// Someone asked for it (`ferry backup create`).
        OnDemand = "on_demand",
        /// The application's schedule (`ferry app set --backup-every`) made it due.
        Scheduled = "scheduled",
        /// A deployment to a protected environment takes one before it switches.
        BeforeDeployment = "before_deployment",
        /// A restore keeps the data it replaces first, so nothing is lost.
        BeforeRestore = "before_restore",
        /// `ferry drift revert` keeps what the hand-edited paths of the release held before
        /// it gives the release its content back. Its paths are the release's, not
        /// `shared/`'s: it is kept to be looked at, not restored as data.
        DriftRevert = "drift_revert",
    }
}

impl BackupReason {
    /// Whether the backup holds the application's data (its `backup` paths in `shared/`):
    /// what a schedule counts, retention thins out and a restore puts back. What a drift
    /// revert kept is release files, kept until removed by hand, never by retention.
    pub fn is_data(self) -> bool {
        self != BackupReason::DriftRevert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_drift_revert_kept_is_not_data() {
        for reason in BackupReason::ALL {
            assert_eq!(
                reason.is_data(),
                *reason != BackupReason::DriftRevert,
                "{reason}"
            );
        }
    }

    #[test]
    fn reasons_have_one_name_each() {
        for reason in BackupReason::ALL {
            assert_eq!(BackupReason::parse(reason.as_str()), Ok(*reason));
        }
        let error = BackupReason::parse("whenever").unwrap_err();
        assert!(
            error.to_string().contains("on_demand, scheduled"),
            "{error}"
        );
    }
}
