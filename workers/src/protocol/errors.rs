//! The JSON error body of the API.

use serde::{Deserialize, Serialize};

/// The JSON error body of every non-registry API endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

impl ApiErrorBody {
    /// The message of an error response body, or the body itself when it is not JSON (a proxy's page).
    pub fn message_of(body: &str) -> String {
        serde_json::from_str::<ApiErrorBody>(body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| body.trim().to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: String,
    pub message: String,
}
