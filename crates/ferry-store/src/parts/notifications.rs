//! Notification channels and the deliveries queued for them.

use async_trait::async_trait;

use crate::*;

/// Notification channels and the deliveries queued for them.
#[async_trait]
pub trait Notifications: Send + Sync + 'static {
    /// Adds a notification channel to a team (not found if there is no such team). The
    /// audit record's subject becomes `channel/ID`.
    async fn add_channel(
        &self,
        channel: NewChannel,
        audit: AuditRecord,
    ) -> StoreResult<ChannelRecord>;
    /// Channels of one team or of all, oldest first; removed ones only with
    /// `include_removed`.
    async fn channels(
        &self,
        team: Option<&str>,
        include_removed: bool,
    ) -> StoreResult<Vec<ChannelRecord>>;
    /// Removes a team's channel (not found unless the team has it in use): it stays, marked
    /// removed, with its delivery log, and its pending deliveries fail.
    async fn remove_channel(
        &self,
        team: &str,
        id: i64,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;
    /// Queues a delivery someone asked for (a channel test) with its audit event, whose
    /// sequence number becomes the delivery's `audit_seq`. Refused unless the channel is in
    /// use by the delivery's team.
    async fn queue_delivery(
        &self,
        delivery: NewDelivery,
        audit: AuditRecord,
    ) -> StoreResult<DeliveryRecord>;
    /// Audit events after sequence number `seq`, oldest first, at most `limit`.
    async fn audit_events_after(&self, seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// A team's deliveries, newest first, at most `limit`.
    async fn deliveries(&self, team: &str, limit: u32) -> StoreResult<Vec<DeliveryRecord>>;
    /// One delivery.
    async fn delivery(&self, id: i64) -> StoreResult<Option<DeliveryRecord>>;
}
