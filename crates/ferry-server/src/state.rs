//! What every request handler shares.

use std::sync::Arc;

use ferry_store::Store;

use crate::clock::Clock;

/// The server's shared state.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Keys the audit chain; read from `DATA/audit-key`.
    pub audit_key: [u8; 32],
    pub clock: Arc<dyn Clock>,
}
