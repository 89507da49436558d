//! Why the engine could not do what it was asked.

use std::path::Path;

use ferry_cas::hash::ContentHash;
use ferry_cas::CasError;

use ferry_cas::release_config::ConfigError;

/// A failure of the deploy engine. `Config` and `Refused` are the request's or the
/// release's fault; `Io`, `Corrupt` and `Cas` are the machine's.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The release's `ferry.toml` is not acceptable; the error names the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request cannot be carried out as asked (bad name, release not on disk, ...).
    #[error("{0}")]
    Refused(String),
    /// A blob the release needs is neither in the cache nor reusable from the previous
    /// release: fetch it (see `stage::blobs_needed`) and try again.
    #[error("{path}: blob {hash} is not in the cache")]
    Missing { path: String, hash: ContentHash },
    /// Content on disk does not match its hash.
    #[error("{path}: {reason}")]
    Corrupt { path: String, reason: String },
    /// Reading or writing failed.
    #[error("{context}: {source}{}", disk_full_hint(source))]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The content store failed (a blob missing or corrupt in the cache).
    #[error(transparent)]
    Cas(#[from] CasError),
}

impl AgentError {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> AgentError {
        AgentError::Io {
            context: path.display().to_string(),
            source,
        }
    }

    /// An I/O failure from rustix on `path`.
    pub fn errno(path: &Path, source: rustix::io::Errno) -> AgentError {
        AgentError::io(path, source.into())
    }

    /// Content at `path` that does not match what the manifest says.
    pub fn corrupt(path: &Path, reason: impl Into<String>) -> AgentError {
        AgentError::Corrupt {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type AgentResult<T> = Result<T, AgentError>;

/// What to do about a full disk, after the error that says so.
fn disk_full_hint(source: &std::io::Error) -> &'static str {
    match ferry_cas::error::is_disk_full(source) {
        true => ": the target's disk is full; free space on it and deploy again",
        false => "",
    }
}
