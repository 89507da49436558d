//! `/api/v1`: one file per resource.

pub mod apps;
pub mod audit;
pub mod backups;
pub mod blobs;
pub mod channels;
pub mod config;
pub mod deployments;
pub mod drift;
pub mod environments;
pub mod incidents;
pub mod maintenance;
pub mod me;
pub mod releases;
pub mod roles;
pub mod support;
pub mod targets;
pub mod tasks;
pub mod teams;
pub mod users;
