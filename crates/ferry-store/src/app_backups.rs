//! Backups of applications' data as the store keeps them (`ferry backup`): one row per
//! backup, its manifest and blobs in blob storage, counted in the blob references like a
//! release's so garbage collection keeps them; and each application's backup schedule. Not
//! the server's own backup (`ferry server backup`).

use ferry_domain::app_backup::BackupReason;

/// One backup of an application's data on one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppBackup {
    pub id: i64,
    pub app: String,
    /// The target's environment when the backup was taken.
    pub env: String,
    pub target: String,
    /// The release the target ran, if any.
    pub version: Option<String>,
    pub reason: BackupReason,
    /// The backup paths it covers, relative to `shared/`.
    pub paths: Vec<String>,
    /// Who asked: a user, or `ferry` for the schedule.
    pub requested_by: String,
    pub created_ms: i64,
    /// The manifest's digest, and the blob holding it.
    pub digest: String,
    pub manifest_blob: String,
    pub files: u64,
    pub bytes: u64,
    /// Bytes the server did not hold before this backup.
    pub new_bytes: u64,
}

/// A backup to record, with every blob it references (its manifest's included), by hash
/// and size: each counts a reference, as a release's blobs do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAppBackup {
    /// Its `id` is ignored: the store numbers backups.
    pub backup: AppBackup,
    pub blobs: Vec<(String, u64)>,
}

/// How often an application's data is backed up, and what retention keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    /// `None`: no scheduled backups (before deployments and on demand only).
    pub every_ms: Option<i64>,
    /// As `ferry_domain::backup_retention::BackupKeep` writes it (`7,7d,4w`).
    pub keep: String,
}
