//! ferry's rules, with no I/O: they cannot fail for outside reasons, so they are tested
//! exhaustively with small data-driven cases.
//!
//! Architecture invariant: this crate knows nothing about HTTP, SQL, the filesystem or the
//! clock. Callers pass in what the rules need (roles, the pipeline, times as numbers).

pub mod agent_build;
pub mod app_backup;
pub mod approval;
pub mod audit;
pub mod audit_event;
pub mod backport;
pub mod backup_retention;
pub mod capture;
pub mod config;
pub mod config_revision;
pub mod delivery;
pub mod deployment;
pub mod downgrade;
pub mod drift;
pub mod duration;
pub mod freeze;
pub mod guard;
pub mod incident;
pub mod lifecycle;
pub mod liveness;
pub mod login;
pub mod name;
pub mod overrides;
pub mod password;
pub mod permission;
pub mod pipeline;
pub mod retention;
pub mod role;
pub mod rollback;
pub mod rotation;
pub mod routing;
pub mod run_as;
pub mod served;
pub mod steady;
pub mod step_log;
pub mod support;
pub mod task;
pub mod token;
pub mod vocabulary;
