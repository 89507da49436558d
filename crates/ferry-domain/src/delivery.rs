//! Where one notification to one channel stands.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a delivery stands.
    pub enum DeliveryStatus ("delivery status") {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// The receiver accepted it.
        Delivered = "delivered",
        /// Given up: a permanent error, too many attempts, or its channel was removed.
        Failed = "failed",
    }
}
