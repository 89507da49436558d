//! Production support: team rotations, routing, incidents, backlog items and backport obligations.

use async_trait::async_trait;

use crate::*;

/// Production support: team rotations, routing, incidents, backlog items and backport obligations.
#[async_trait]
pub trait Support: Send + Sync + 'static {
    /// A team's support settings (no rotation and the default escalation time until set).
    async fn team_support(&self, team: &str) -> StoreResult<TeamSupport>;
    /// Replaces a team's support settings.
    async fn set_team_support(&self, support: TeamSupport, audit: AuditRecord) -> StoreResult<()>;
    /// Routing rules by category.
    async fn routing_rules(&self) -> StoreResult<Vec<RoutingRule>>;
    /// Routes a category to a team (`None` removes the rule; not found if there was none).
    async fn set_routing_rule(
        &self,
        category: &str,
        team: Option<&str>,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Records a new incident (its `id` is ignored) and, on the backlog path, a backlog item
    /// for `backlog_team` (the application's maintaining team, whichever team the incident
    /// was routed to). The audit record's subject becomes `incident/ID`.
    async fn open_incident(
        &self,
        incident: IncidentRecord,
        backlog_team: &str,
        audit: AuditRecord,
    ) -> StoreResult<(IncidentRecord, Option<BacklogItem>)>;
    /// Incidents, newest first; of one application when given; resolved ones only with
    /// `resolved`.
    async fn incidents(
        &self,
        app: Option<&str>,
        resolved: bool,
    ) -> StoreResult<Vec<IncidentRecord>>;
    /// One incident.
    async fn incident(&self, id: i64) -> StoreResult<Option<IncidentRecord>>;
    /// Stores an incident's new status, assignee, escalation, history and hotfix base
    /// (base, suggested version and source), provided it still
    /// has the status and escalation level it was read with (refused otherwise: someone else
    /// changed it meanwhile).
    async fn update_incident(
        &self,
        incident: IncidentRecord,
        read_status: IncidentStatus,
        read_level: u32,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Backlog items, newest first; of one application when given.
    async fn backlog(&self, app: Option<&str>) -> StoreResult<Vec<BacklogItem>>;

    /// Backport obligations, newest first; of one application when given.
    async fn backports(&self, app: Option<&str>) -> StoreResult<Vec<Backport>>;
    /// Closes an open obligation as done by `by` (`release VERSION`). `false` when it is no
    /// longer open, and then nothing changes and no audit event is written.
    async fn complete_backport(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Waives an open obligation: `by` and `reason` are recorded (refused unless open).
    async fn waive_backport(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        now_ms: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;
}
