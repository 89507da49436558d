//! The records of notifications: each team's channels, and the deliveries the notifier
//! derives from the audit trail and sends.

pub use ferry_domain::delivery::DeliveryStatus;

/// A notification channel of a team, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    /// Unique among all teams' channels, removed ones included.
    pub id: i64,
    /// The team whose notifications it receives.
    pub team: String,
    /// The channel as JSON (`ferry_notify::Channel`), with its webhook secret or SMTP
    /// password: never show it, show `description`.
    pub config: String,
    /// One line without secrets, like `webhook https://hooks.example.com/ferry`.
    pub description: String,
    /// The user who added it.
    pub created_by: String,
    /// When it was added, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it was removed; a removed channel gets no deliveries but keeps its log.
    pub removed_ms: Option<i64>,
}

// Hand-written so that logging a channel never prints its secret.
impl std::fmt::Debug for ChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRecord")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("config", &"<redacted>")
            .field("description", &self.description)
            .field("created_by", &self.created_by)
            .field("created_ms", &self.created_ms)
            .field("removed_ms", &self.removed_ms)
            .finish()
    }
}

/// What adding a channel needs.
#[derive(Clone, PartialEq, Eq)]
pub struct NewChannel {
    /// The team whose notifications it receives.
    pub team: String,
    /// The channel as JSON, secrets included.
    pub config: String,
    /// One line without secrets.
    pub description: String,
    /// The user who adds it.
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
}

impl std::fmt::Debug for NewChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewChannel")
            .field("team", &self.team)
            .field("config", &"<redacted>")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// One message to one channel, with its attempts so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Unique, in the order deliveries were queued.
    pub id: i64,
    /// The channel it goes to.
    pub channel_id: i64,
    /// The channel's description (kept after the channel is removed).
    pub channel: String,
    /// The team the channel belongs to.
    pub team: String,
    /// What happened, like `incident.open` or `channel.test`.
    pub event: String,
    /// The audit event the delivery comes from.
    pub audit_seq: Option<i64>,
    /// The `ferry_notify::Message` as JSON.
    pub message: String,
    /// `pending`, `delivered` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When a pending delivery is due.
    pub next_attempt_ms: i64,
    /// When the last attempt was made.
    pub last_attempt_ms: Option<i64>,
    /// Why the last failed attempt failed (kept once a later attempt delivers).
    pub last_error: Option<String>,
    /// What the receiver answered when it accepted the message, like `HTTP 200`.
    pub detail: Option<String>,
    /// When it was queued, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it was delivered or given up.
    pub finished_ms: Option<i64>,
}

/// What queuing a delivery needs; it is due at once (`created_ms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// The channel it goes to, which must be in use by `team`.
    pub channel_id: i64,
    /// The team the channel belongs to.
    pub team: String,
    /// What happened, like `incident.open`.
    pub event: String,
    /// The audit event it comes from; `None` lets the store fill in the event it writes with
    /// the delivery (a channel test).
    pub audit_seq: Option<i64>,
    /// The `ferry_notify::Message` as JSON.
    pub message: String,
    /// When it is queued (and first due), in milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Which deliveries a notifier claims, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueDeliveries {
    /// The wall clock now, in milliseconds since the Unix epoch: deliveries scheduled at or
    /// before it are due.
    pub now_ms: i64,
    /// No retry is ever scheduled later than this: a delivery scheduled after it was
    /// scheduled before the clock was set back, and is due too rather than waiting out the
    /// jump.
    pub latest_schedule_ms: i64,
    /// When the claim runs out: no other claim returns the deliveries before then, when a
    /// notifier that died while sending them is assumed gone and they are due again.
    pub claimed_until_ms: i64,
}

/// The outcome of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted the message; `detail` is what it answered.
    Delivered {
        /// Like `HTTP 200` or `250 2.0.0 queued as 4F2A`.
        detail: String,
    },
    /// It failed and is tried again at `next_attempt_ms` (unless its channel was removed
    /// meanwhile, which makes it failed).
    Retry {
        /// What went wrong, for the log.
        error: String,
        /// When to try again, in milliseconds since the Unix epoch.
        next_attempt_ms: i64,
    },
    /// It failed for good.
    Failed {
        /// What went wrong and what to do, for the log.
        error: String,
    },
}
