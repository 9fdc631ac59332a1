//! The JSON error body of the API.

use serde::{Deserialize, Serialize};

/// The JSON error body of every non-registry API endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

/// `code` of a 409 answering a log upload that starts past the end of the server's log;
/// `offset` says where the log ends, so the worker resends from there.
pub const LOG_GAP: &str = "LOG_GAP";
/// `code` of a 409 answering a worker whose attempt is no longer current: stop working on it.
pub const STALE_ATTEMPT: &str = "STALE_ATTEMPT";
/// `code` of a 426 answering a worker whose protocol the server no longer serves: the worker
/// must be upgraded, so it stops instead of asking again.
pub const UPGRADE_REQUIRED: &str = "UPGRADE_REQUIRED";

/// What the API's 401 answers add to their reason, after `": "`: how to get a token.
pub const LOGIN_HINT: &str =
    "run `kiln login <server>` with a token from `kiln token create`, or set KILN_TOKEN";

impl ApiErrorBody {
    /// A 401's reason without `LOGIN_HINT`, for a client that knows better what to advise
    /// (`kiln login` checking a token, a worker).
    pub fn without_login_hint(message: &str) -> &str {
        message
            .strip_suffix(LOGIN_HINT)
            .and_then(|m| m.strip_suffix(": "))
            .unwrap_or(message)
    }

    /// The message of an error response body, or the body itself when it is not JSON (a proxy's page).
    pub fn message_of(body: &str) -> String {
        Self::parse(body)
            .map(|b| b.error.message)
            .unwrap_or_else(|| body.trim().to_string())
    }

    /// The body as the API's error envelope, if it is one.
    pub fn parse(body: &str) -> Option<ApiErrorBody> {
        serde_json::from_str(body).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: String,
    pub message: String,
    /// For `LOG_GAP`: the size of the server's log, where the next upload must start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}
