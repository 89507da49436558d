//! The audit trail, for people and for verification.

use async_trait::async_trait;

use crate::*;

/// The audit trail, for people and for verification.
#[async_trait]
pub trait AuditTrail: Send + Sync + 'static {
    /// Audit events matching a filter, oldest first.
    async fn audit_events(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
    /// The whole chain and its recorded head, for verification.
    async fn audit_chain(&self) -> StoreResult<AuditChain>;
    /// Records a refused change: the event alone, as nothing else changed.
    async fn record_refusal(&self, record: AuditRecord) -> StoreResult<()>;
    /// The recorded head alone, with its seal (`None` before the first event).
    async fn audit_head(&self) -> StoreResult<Option<RecordedHead>>;
}
