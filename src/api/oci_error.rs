//! The OCI distribution error envelope, `{"errors":[{"code","message","detail"}]}`, used by
//! everything under `/v2/` and by the token endpoint, so registry clients show our messages.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every `/v2/` response carries this header; Docker checks for it on `GET /v2/`.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
pub const API_VERSION: &str = "registry/2.0";

#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    /// An OCI error code: `BLOB_UNKNOWN`, `MANIFEST_BLOB_UNKNOWN`, `DENIED`, `UNAUTHORIZED`, …
    pub code: &'static str,
    pub message: String,
    /// For 401s: the scope the client should ask the token endpoint for, e.g.
    /// `repository:app:pull,push`. The auth middleware turns it into `WWW-Authenticate`.
    pub challenge: Option<ChallengeScope>,
}

/// Response extension read by the auth middleware to build the `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeScope(pub Option<String>);

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    /// A 401 asking for credentials, optionally for a scope.
    pub fn unauthorized(message: impl Into<String>, scope: Option<String>) -> OciError {
        let mut e = OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        e.challenge = Some(ChallengeScope(scope));
        e
    }

    pub fn denied(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::FORBIDDEN, "DENIED", message)
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let entry = serde_json::json!({ "code": self.code, "message": self.message });
        let mut resp =
            (self.status, Json(serde_json::json!({ "errors": [entry] }))).into_response();
        resp.headers_mut()
            .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
        if let Some(scope) = self.challenge {
            resp.extensions_mut().insert(scope);
        }
        resp
    }
}
