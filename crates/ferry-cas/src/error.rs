//! Why content could not be ingested or stored.

use std::path::Path;

/// An ingestion or storage failure. `Rejected` and `Source` are the input's fault (the CLI
/// exits 3 and nothing is stored); `Io` is the machine's.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// An entry of the tree or archive is not acceptable; `path` names it.
    #[error("{path}: {reason}")]
    Rejected { path: String, reason: String },
    /// The source as a whole is unusable: a missing git ref, an unknown svn revision, an
    /// empty tree, a corrupt archive.
    #[error("{0}")]
    Source(String),
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl CasError {
    /// An entry refused, naming it.
    pub fn rejected(path: impl Into<String>, reason: impl Into<String>) -> CasError {
        CasError::Rejected {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> CasError {
        CasError::Io {
            context: path.display().to_string(),
            source,
        }
    }

    /// Whether writing failed because the disk (or the user's quota on it) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CasError::Io { source, .. } if is_disk_full(source))
    }

    /// Whether the input, not the machine, is at fault.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CasError::Io { .. })
    }
}

/// Whether an I/O error says the disk (or the user's quota on it) is full.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Shorthand for results of this crate.
pub type CasResult<T> = Result<T, CasError>;
