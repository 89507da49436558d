//! ferry's integration tests: a real server on port 0 in a temp data directory, driven
//! through the real `ferry` binary as a user would. One test binary for the whole crate, so
//! linking stays fast.

mod access;
mod agent_drift;
mod audit;
mod backups;
mod bad_input;
mod cancel;
mod config;
mod config_delivery;
mod content_safety;
mod deadline;
mod deployments;
mod drift;
mod drift_capture;
mod drift_refresh;
mod drift_revert;
mod faults;
mod ferry_toml;
mod freeze_now;
mod harness;
mod logs;
mod matrix;
mod moto;
mod notifications;
mod offline;
mod passwords;
mod pipeline;
mod pipeline_changes;
mod policy;
mod policy_guard;
mod receivers;
mod releases;
mod retention;
mod revocation;
mod round_robin;
mod s3;
mod scale_out;
mod server;
mod server_backup;
mod stage_policy;
mod status;
mod support;
mod target_safety;
mod tls;
mod tour;
