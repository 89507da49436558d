//! The store's interface in parts, one per resource.

mod access;
mod app_backups;
mod audit_trail;
mod catalog;
mod configuration;
mod deployments;
mod fleet;
mod notifications;
mod pipeline;
mod support;

pub use access::Access;
pub use app_backups::AppBackups;
pub use audit_trail::AuditTrail;
pub use catalog::Catalog;
pub use configuration::Configuration;
pub use deployments::Deployments;
pub use fleet::Fleet;
pub use notifications::Notifications;
pub use pipeline::Pipeline;
pub use support::Support;
