//! Applications' configuration per environment, in revisions.

use async_trait::async_trait;

use crate::*;

/// Applications' configuration per environment (`ferry config`), in revisions.
#[async_trait]
pub trait Configuration: Send + Sync + 'static {
    /// Saves `revision` as the newest of its application and environment. It must follow
    /// the newest stored one (or be 1 when there is none): otherwise another change won the
    /// race and this is a `StoreError::Conflict` that changes nothing. Not found when the
    /// application or the environment does not exist.
    async fn save_config_revision(
        &self,
        revision: ConfigRevision,
        audit: AuditRecord,
    ) -> StoreResult<ConfigRevision>;
    /// One revision of an application's configuration in an environment; `None` for
    /// `revision`: the newest. `Ok(None)` when there is none.
    async fn config_revision(
        &self,
        app: &str,
        env: &str,
        revision: Option<u64>,
    ) -> StoreResult<Option<ConfigRevision>>;
    /// Every revision of an application's configuration in an environment, newest first.
    async fn config_history(&self, app: &str, env: &str) -> StoreResult<Vec<ConfigRevision>>;
    /// Records that secrets were read back (`ferry config show --reveal`): nothing changes
    /// but the audit trail, and the read is refused if the trail cannot record it.
    async fn record_reveal(&self, audit: AuditRecord) -> StoreResult<()>;
    /// Every revision that holds secrets, of every application and environment.
    async fn sealed_config_revisions(&self) -> StoreResult<Vec<ConfigRevision>>;
    /// The id of the secret key the installation's secrets are sealed with, once a server
    /// claimed one (`UnauditedWrites::claim_secret_key`).
    async fn secret_key_id(&self) -> StoreResult<Option<String>>;
    /// Replaces the entries of stored revisions with the same values sealed under the key
    /// `key_id` (`ferry server rotate-secret-key`), and makes it the claimed key, all in one
    /// transaction. The claimed key and each revision must still be `previous_key`, or
    /// nothing changes (`StoreError::Conflict`).
    async fn reseal_config(
        &self,
        previous_key: &str,
        key_id: &str,
        revisions: Vec<ConfigRevision>,
        audit: AuditRecord,
    ) -> StoreResult<()>;
}
