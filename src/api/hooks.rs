//! Git webhooks: `POST /api/hooks/tasks/{hook}` (no Kiln token: the signature is the
//! authentication) and the delivery log, `GET /api/tasks/{name}/deliveries`.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::{ApiErrorBody, ApiErrorDetail};

use super::error::ApiError;
use super::extract::ValidBytes;
use super::App;
use crate::access::Principal;
use crate::service::source_triggers::{HookError, Outcome, MAX_BODY};
use crate::wire::hooks::DeliveryList;

/// The webhook endpoint, outside token authentication.
pub fn public_routes() -> Router<App> {
    Router::new().route(
        "/api/hooks/tasks/{hook}",
        post(deliver).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

/// The delivery log, behind token authentication.
pub fn routes() -> Router<App> {
    Router::new().route("/api/tasks/{name}/deliveries", get(deliveries))
}

async fn deliver(
    State(app): State<App>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Result<ValidBytes, ApiError>,
) -> Result<Response, HookApiError> {
    let ValidBytes(body) = body?;
    Ok(match app.hooks.deliver(&hook, &headers, &body).await? {
        Outcome::Queued(answer) => (StatusCode::ACCEPTED, Json(answer)).into_response(),
        Outcome::Ignored(answer) => (StatusCode::OK, Json(answer)).into_response(),
    })
}

async fn deliveries(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(app.hooks.deliveries(&name, &who).await?))
}

/// The webhook endpoint's errors: the API's, and a 401 that, unlike the API's, does not
/// tell a git host to log in.
#[derive(Debug)]
pub enum HookApiError {
    Api(ApiError),
    BadSignature(String),
}

impl From<ApiError> for HookApiError {
    fn from(e: ApiError) -> HookApiError {
        HookApiError::Api(e)
    }
}

impl From<HookError> for HookApiError {
    fn from(e: HookError) -> HookApiError {
        match e {
            e @ HookError::NotFound => HookApiError::Api(ApiError::NotFound(e.to_string())),
            e @ HookError::BadSignature => HookApiError::BadSignature(e.to_string()),
            HookError::Malformed(m) => HookApiError::Api(ApiError::BadRequest(m)),
            HookError::Service(e) => HookApiError::Api(e.into()),
        }
    }
}

impl IntoResponse for HookApiError {
    fn into_response(self) -> Response {
        match self {
            HookApiError::Api(e) => e.into_response(),
            HookApiError::BadSignature(message) => {
                let body = ApiErrorBody {
                    error: ApiErrorDetail {
                        code: "UNAUTHORIZED".into(),
                        message,
                        offset: None,
                    },
                };
                (StatusCode::UNAUTHORIZED, Json(body)).into_response()
            }
        }
    }
}
