//! The HTTP face of service errors. Internal causes become a generic 500 and are logged once,
//! here; their text never reaches the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kiln_worker::protocol::{ApiErrorBody, ApiErrorDetail};

use crate::service::auth::AccessError;
use crate::service::contexts::ContextError;
use crate::service::logs::LogError;
use crate::service::ServiceError;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized,
    /// Good credentials that do not allow the request.
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(String),
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
            ServiceError::Log(e @ LogError::Gap { .. }) => ApiError::Conflict(e.to_string()),
            e @ (ServiceError::Store(_) | ServiceError::Log(_) | ServiceError::Io(_)) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::Unauthenticated | AccessError::InsufficientScope => ApiError::Unauthorized,
            AccessError::Denied(m) => ApiError::Forbidden(m),
        }
    }
}

impl From<ContextError> for ApiError {
    fn from(e: ContextError) -> ApiError {
        match e {
            e @ ContextError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            e @ (ContextError::Invalid(_) | ContextError::Interrupted(_)) => {
                ApiError::BadRequest(e.to_string())
            }
            e @ ContextError::Io(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "missing or invalid token: pass --token or set KILN_TOKEN".to_string(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "DENIED", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "CONFLICT", m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", m),
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
            },
        };
        (status, Json(body)).into_response()
    }
}
