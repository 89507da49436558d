//! Backups of applications' data and their schedules.

use async_trait::async_trait;

use crate::*;

/// Backups of applications' data (`ferry backup`) and their schedules.
#[async_trait]
pub trait AppBackups: Send + Sync + 'static {
    /// Records a backup a target took, numbering it, and counts a reference to each of its
    /// blobs. The audit record's subject becomes `backup/ID`. Not found when the application
    /// does not exist.
    async fn create_app_backup(
        &self,
        backup: NewAppBackup,
        audit: AuditRecord,
    ) -> StoreResult<AppBackup>;
    /// The backups of one application, or of every application, newest first.
    async fn list_app_backups(&self, app: Option<&str>) -> StoreResult<Vec<AppBackup>>;
    /// One backup.
    async fn app_backup(&self, id: i64) -> StoreResult<Option<AppBackup>>;
    /// Deletes backups of an application (retention), each with the blobs it referenced,
    /// whose reference counts drop.
    async fn delete_app_backups(
        &self,
        app: &str,
        backups: Vec<(i64, Vec<String>)>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Sets how often an application's data is backed up and what retention keeps.
    async fn set_backup_schedule(
        &self,
        app: &str,
        schedule: BackupSchedule,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Every application's schedule that was set, by application name.
    async fn backup_schedules(&self) -> StoreResult<Vec<(String, BackupSchedule)>>;
}
