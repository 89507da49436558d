//! The environments in order, their policy and their freeze windows.

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
}
