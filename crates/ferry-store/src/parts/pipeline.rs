//! The environments in order, their policy, their freeze windows and one-off freezes.

use async_trait::async_trait;

use crate::*;

/// The environments in order, their policy and their freeze windows.
#[async_trait]
pub trait Pipeline: Send + Sync + 'static {
    /// The pipeline, first environment first.
    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;
    /// Inserts an environment after another (or at the end); it starts with that
    /// environment's policy and every role's level there.
    async fn create_environment(
        &self,
        name: &str,
        after: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<Environment>;
    /// Deletes an environment with its role levels, freeze windows and application grants,
    /// closing the gap in the positions, in one transaction with its audit event: refused
    /// (nothing changes) when `ferry_domain::pipeline::check_removal` refuses it.
    async fn delete_environment(&self, name: &str, audit: AuditRecord) -> StoreResult<()>;
    /// Renames an environment, and with it its targets, role levels, freeze windows and
    /// application grants, in one transaction with its audit event: refused (nothing
    /// changes) when `ferry_domain::pipeline::check_rename` refuses it.
    async fn rename_environment(
        &self,
        old: &str,
        new: &str,
        audit: AuditRecord,
    ) -> StoreResult<Environment>;
    /// Changes an environment's policy and freeze windows, each part with its audit event,
    /// all in one transaction: refused as a whole (nothing changes) when the environment is
    /// unknown, a window to add exists already or one to remove does not.
    async fn change_environment(
        &self,
        name: &str,
        change: EnvironmentChange,
    ) -> StoreResult<Environment>;
    /// Freeze windows of one environment, or of all.
    async fn freeze_windows(&self, env: Option<&str>) -> StoreResult<Vec<FreezeWindowRecord>>;
    /// Puts a one-off freeze on its environment in place of the one stored there, in one
    /// transaction with its audit event. `replacing` is the end of the stored freeze the
    /// caller judged (`None`: none was stored); when another is stored by then, this is a
    /// `StoreError::Conflict` that changes nothing. An unknown environment is not found.
    async fn freeze_now(
        &self,
        freeze: OneOffFreezeRecord,
        replacing: Option<i64>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Ends the one-off freeze of `env` that ends at `until_ms`, in one transaction with its
    /// audit event: a `StoreError::Conflict` that changes nothing when that freeze is no
    /// longer the one stored.
    async fn end_freeze(&self, env: &str, until_ms: i64, audit: AuditRecord) -> StoreResult<()>;
    /// The one-off freezes of one environment, or of all, in force or not.
    async fn one_off_freezes(&self, env: Option<&str>) -> StoreResult<Vec<OneOffFreezeRecord>>;
}
