//! ferry's agent on a target. The deploy engine stages a release from the content cache
//! (read-only, writing nothing outside `releases/`), creates its shared paths once the
//! deployment runs, checks a release staged earlier and repairs what changed in it since,
//! switches to it, runs its hooks and health check, rolls back, checks the release served
//! for drift ([`drift`]), and cleans up old releases; it does no network I/O.
//! The agent process ([`process`]) is the only part that talks to the server: it enrolls,
//! long-polls for the desired state, fetches manifests and blobs, calls the engine and
//! reports.
//!
//! **Invariant:** a target always serves one complete release: `current` is switched only
//! by an atomic rename, and points only at a directory renamed into place after it was
//! completely written and synced. Whatever fails or is killed in between, the target
//! serves the old release or the new one, never a mix; work in progress lives under
//! names starting with `.` and is cleared by the next deploy or cleanup.
//!
//! Entry points: [`deploy::deploy`], [`deploy::rollback`], [`drift::check`],
//! [`deploy::verify_release`] (every file read), [`cleanup::cleanup`],
//! [`cache_prune::prune`] (the cache's blobs no release holds), and [`stage::blobs_needed`]
//! to know what to fetch first.

pub mod account;
pub mod app_backup;
pub mod cache_prune;
pub mod capture;
pub mod cleanup;
pub mod config_files;
pub mod content;
pub mod deploy;
pub mod drift;
pub mod error;
pub mod failpoint;
pub mod fsutil;
pub mod health;
pub mod hooks;
pub mod http;
mod index_file;
pub mod isolation;
pub mod journal;
pub mod layout;
pub mod link_changes;
pub mod lock;
pub mod modes;
pub mod process;
pub mod shared;
pub mod stage;
pub mod stat_index;
pub mod switch;
pub mod tree;

pub use cleanup::{cleanup, CleanupReport};
pub use deploy::{
    converge, deploy, rollback, verify_release, DeployEvent, DeployOutcome, DeployRequest, Step,
    StepKind,
};
pub use error::{AgentError, AgentResult};
pub use failpoint::{failpoint, FAILPOINTS};
pub use layout::current_version;
pub use stage::{blobs_needed, StageReport};
