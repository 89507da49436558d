//! Why a use case did not happen. Nothing changed when a service returns one; the HTTP
//! layer (`crate::error`) turns it into a status code and a JSON body, and a background job
//! logs it.

use ferry_cas::CasError;
use ferry_domain::name::InvalidName;
use ferry_store::StoreError;

use crate::blob_storage::BlobError;

/// The kind of refusal, which decides the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed.
    BadRequest,
    /// Who is asking could not be proved (a wrong password, an unknown token).
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// The thing named does not exist (or the caller may not know it does); the code says
    /// what (`not_found`, or `no_such_release` so a client can tell a missing version from a
    /// missing application).
    NotFound(&'static str),
    /// It exists already.
    AlreadyExists,
    /// Well-formed input that is refused, such as a name outside its pattern.
    Invalid,
    /// The pipeline's policy refuses it now; the code names the rule (lifecycle, downgrade,
    /// frozen, approval, guard, …).
    Policy(&'static str),
    /// Someone else changed it meanwhile, again and again: try again.
    Conflict,
    /// The server's fault; the details go to the log.
    Internal,
    /// Too many attempts (failed logins) in a short time: wait, then try again.
    TooManyAttempts,
    /// Something the server depends on (its S3-compatible blob storage) failed or did not
    /// answer; nothing changed, and the same request may succeed later.
    Unavailable,
}

/// A refused or failed use case: what kind, one line for people, and structure for scripts
/// when the refusal has any.
#[derive(Debug)]
pub struct ServiceError {
    pub refusal: Refusal,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// Shorthand for the results of services.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    fn new(refusal: Refusal, message: impl Into<String>) -> ServiceError {
        ServiceError {
            refusal,
            message: message.into(),
            details: None,
        }
    }

    /// The same error with a `details` object for scripts.
    pub fn with_details(self, details: serde_json::Value) -> ServiceError {
        ServiceError {
            details: Some(details),
            ..self
        }
    }

    /// The request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::BadRequest, message)
    }

    /// Who is asking could not be proved.
    pub fn unauthorized(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Unauthenticated, message)
    }

    /// Too many attempts in a short time.
    pub fn too_many(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::TooManyAttempts, message)
    }

    /// The caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Forbidden, message)
    }

    /// The thing named does not exist.
    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::NotFound("not_found"), message)
    }

    /// An application has no such release.
    pub fn no_such_release(app: &str, version: &str) -> ServiceError {
        ServiceError::new(
            Refusal::NotFound("no_such_release"),
            format!(
                "application {app:?} has no release {version:?}: see `ferry release list {app}`"
            ),
        )
    }

    /// It exists already.
    pub fn already_exists(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::AlreadyExists, message)
    }

    /// Well-formed input that is refused.
    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Invalid, message)
    }

    /// The pipeline's policy refuses it now, by the rule `code`.
    pub fn policy(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Policy(code), message)
    }

    /// Someone else kept changing it meanwhile.
    pub fn conflict(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Conflict, message)
    }

    /// Something the server depends on failed; the request may succeed later.
    pub fn unavailable(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Unavailable, message)
    }

    /// The server's fault.
    pub fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::new(Refusal::Internal, message)
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::NotFound { .. } => ServiceError::not_found(error.to_string()),
            StoreError::AlreadyExists { .. } => {
                ServiceError::new(Refusal::AlreadyExists, error.to_string())
            }
            StoreError::Refused(message) => ServiceError::invalid(message),
            StoreError::Conflict(message) => ServiceError::conflict(message),
            // The people asking need to know: nothing they change is recorded until an
            // operator restores the trail.
            StoreError::UnsealedTrail(message) => {
                tracing::error!("store: {message}");
                ServiceError::internal(message)
            }
            StoreError::Locked(message) => {
                tracing::error!("store: {message}");
                ServiceError::unavailable(message)
            }
            StoreError::Backend(message) => {
                tracing::error!("store: {message}");
                ServiceError::internal(
                    "the server could not reach its database; see the server log",
                )
            }
        }
    }
}

impl From<CasError> for ServiceError {
    fn from(error: CasError) -> ServiceError {
        if error.is_bad_input() {
            ServiceError::invalid(error.to_string())
        } else if error.is_disk_full() {
            tracing::error!("content store: {error}");
            ServiceError::internal(
                "the server's disk for release content is full: nothing was stored; free \
                 space there (`ferry release prune` removes releases retention lets go), then \
                 try again",
            )
        } else {
            tracing::error!("content store: {error}");
            ServiceError::internal(
                "the server could not read or write its content store; see the server log",
            )
        }
    }
}

impl From<BlobError> for ServiceError {
    fn from(error: BlobError) -> ServiceError {
        match error {
            BlobError::Mismatch(_) => ServiceError::invalid(error.to_string()),
            BlobError::Missing(_) => ServiceError::not_found(error.to_string()),
            BlobError::Folder(error) => error.into(),
            BlobError::Corrupt { .. } => {
                tracing::error!("blob storage: {error}");
                ServiceError::internal(error.to_string())
            }
            BlobError::Unavailable { .. } => {
                tracing::error!("blob storage: {error}");
                ServiceError::unavailable(format!(
                    "the server's blob storage failed: {error}; nothing changed: try again once it answers"
                ))
            }
        }
    }
}

impl From<InvalidName> for ServiceError {
    fn from(error: InvalidName) -> ServiceError {
        ServiceError::invalid(error.to_string())
    }
}
