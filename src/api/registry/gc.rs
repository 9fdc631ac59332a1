//! `POST /api/registry/gc`: an owner runs the registry's garbage collection now.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;

use crate::access::Principal;
use crate::api::error::ApiError;
use crate::api::App;
use crate::service::registry::RegistryError;
use crate::wire::registry::{GcReport, GcRequest};

pub(super) async fn collect(
    State(app): State<App>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<GcReport>, ApiError> {
    let request: GcRequest = if body.iter().all(u8::is_ascii_whitespace) {
        GcRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid request: {e}")))?
    };
    let report = app
        .registry
        .collect_garbage(&principal, request.dry_run)
        .await
        .map_err(|e| match e {
            RegistryError::Access { error, .. } => error.into(),
            e => ApiError::Internal(e.to_string()),
        })?;
    Ok(Json(report))
}
