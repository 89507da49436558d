//! API errors: a status, a stable code for scripts and one line for people.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{ErrorBody, ErrorDetail};
use ferry_cas::CasError;
use ferry_domain::name::InvalidName;
use ferry_store::StoreError;

use crate::services::{Refusal, ServiceError};

/// An error response; every handler failure becomes one.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What scripts need beyond the code, when a refusal has structure (the regression
    /// guard's undone hotfixes).
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The same error with a `details` object for scripts.
    pub fn with_details(self, details: serde_json::Value) -> ApiError {
        ApiError {
            details: Some(details),
            ..self
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no caller could be identified.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: the thing named does not exist (or the caller may not know it does).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the pipeline's policy refuses this now (`code` names the rule: lifecycle,
    /// downgrade, frozen, approval, guard).
    pub fn policy(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: well-formed but refused input, such as a name outside its pattern.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 500: the server's fault; the details go to the log, not to the caller.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let (status, code) = match error.refusal {
            Refusal::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            Refusal::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Refusal::NotFound(code) => (StatusCode::NOT_FOUND, code),
            Refusal::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            Refusal::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Refusal::Policy(code) => (StatusCode::CONFLICT, code),
            Refusal::Conflict => (StatusCode::CONFLICT, "conflict"),
            Refusal::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Refusal::TooManyAttempts => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Refusal::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        };
        ApiError {
            status,
            code,
            message: error.message,
            details: error.details,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<CasError> for ApiError {
    fn from(error: CasError) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<crate::blob_storage::BlobError> for ApiError {
    fn from(error: crate::blob_storage::BlobError) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<InvalidName> for ApiError {
    fn from(error: InvalidName) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("bad query string: {}", rejection.body_text()))
    }
}
