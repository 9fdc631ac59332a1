//! The HTTP face of service errors. Internal causes become a generic 500 and are logged once,
//! here; their text never reaches the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kiln_worker::protocol::{
    ApiErrorBody, ApiErrorDetail, LOGIN_HINT, LOG_GAP, STALE_ATTEMPT, UPGRADE_REQUIRED,
};

use crate::access::AccessError;
use crate::service::auth::AuthError;
use crate::service::contexts::ContextError;
use crate::service::logs::LogError;
use crate::service::ServiceError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// Missing or bad credentials; the message says which, and the body adds how to log in.
    Unauthorized(String),
    /// Good credentials that do not allow the request.
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed(String),
    Conflict(String),
    PayloadTooLarge(String),
    /// A log upload starting past the end of the log; `size` is where the log ends.
    LogGap {
        message: String,
        size: u64,
    },
    /// A worker's attempt that is no longer current.
    StaleAttempt(String),
    /// The server is shedding load: retry later.
    Unavailable(String),
    /// A worker too old for this server (HTTP 426): it must be upgraded, not retried.
    UpgradeRequired(String),
    Internal(String),
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::Invalid(m) => ApiError::BadRequest(m),
            ServiceError::NotFound(m) => ApiError::NotFound(m),
            ServiceError::Conflict(m) => ApiError::Conflict(m),
            ServiceError::Context(e) => e.into(),
            ServiceError::Access(e) => e.into(),
            ServiceError::StaleAttempt(m) => ApiError::StaleAttempt(m),
            ServiceError::UpgradeRequired(m) => ApiError::UpgradeRequired(m),
            ServiceError::Locked(m) => ApiError::Forbidden(m),
            ServiceError::Log(e @ LogError::Gap { size, .. }) => ApiError::LogGap {
                message: format!("{e}; resend from offset {size}"),
                size,
            },
            e @ (ServiceError::Store(_) | ServiceError::Log(_) | ServiceError::Io(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::Unauthenticated => ApiError::Unauthorized("no token given".into()),
            AccessError::InsufficientScope => {
                ApiError::Unauthorized("the API does not take registry tokens".into())
            }
            AccessError::Denied(m) => ApiError::Forbidden(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::Unauthenticated(m) => ApiError::Unauthorized(m),
            AuthError::Invalid(m) => ApiError::BadRequest(m),
            AuthError::NotFound(m) => ApiError::NotFound(m),
            AuthError::Conflict(m) => ApiError::Conflict(m),
            AuthError::Access(e) => e.into(),
            e @ AuthError::Store(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ContextError> for ApiError {
    fn from(e: ContextError) -> ApiError {
        match e {
            e @ (ContextError::TooLarge { .. } | ContextError::TooLargeUnpacked(_)) => {
                ApiError::PayloadTooLarge(e.to_string())
            }
            e @ (ContextError::Invalid(_) | ContextError::Interrupted(_)) => {
                ApiError::BadRequest(e.to_string())
            }
            e @ ContextError::Io(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut offset = None;
        let (status, code, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
            ApiError::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!("{m}: {LOGIN_HINT}"),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "DENIED", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m),
            ApiError::MethodNotAllowed(m) => {
                (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", m)
            }
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "CONFLICT", m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", m),
            ApiError::LogGap { message, size } => {
                offset = Some(size);
                (StatusCode::CONFLICT, LOG_GAP, message)
            }
            ApiError::StaleAttempt(m) => (StatusCode::CONFLICT, STALE_ATTEMPT, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", m),
            ApiError::UpgradeRequired(m) => (StatusCode::UPGRADE_REQUIRED, UPGRADE_REQUIRED, m),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal server error: see the server's log".to_string(),
                )
            }
        };
        let body = ApiErrorBody {
            error: ApiErrorDetail {
                code: code.to_string(),
                message,
                offset,
            },
        };
        (status, Json(body)).into_response()
    }
}
