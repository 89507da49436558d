//! Applications' configuration per environment as the store keeps it (`ferry config`): one
//! row per revision, holding the whole configuration. Secrets arrive sealed (encrypted by the
//! server, which holds the key); the store never sees a secret in clear.

use ferry_domain::config::ConfigKey;
use ferry_domain::config_revision::ConfigChange;

/// One revision of an application's configuration in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRevision {
    pub app: String,
    pub env: String,
    /// 1 for the first revision, growing by one with each change.
    pub revision: u64,
    pub created_ms: i64,
    /// Who made it.
    pub author: String,
    /// Every key, sorted.
    pub entries: Vec<StoredEntry>,
    /// What this revision changed from the one before.
    pub changes: Vec<ConfigChange>,
    /// The id of the secret key its secrets are sealed with; `None` when it holds none.
    pub sealed_with: Option<String>,
}

/// One key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub key: ConfigKey,
    pub value: StoredValue,
}

/// A value as stored: in clear, or sealed by the server's secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredValue {
    Plain(String),
    /// The secret's ciphertext, as the server's sealing writes it.
    Sealed(String),
}

impl StoredValue {
    /// Whether the value is a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, StoredValue::Sealed(_))
    }
}
