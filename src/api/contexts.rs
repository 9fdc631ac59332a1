//! `/api/contexts`: build context upload, existence check by digest, download for workers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::Digest;
use tokio_util::io::ReaderStream;

use super::error::ApiError;
use super::extract::ValidPath;
use super::App;
use crate::access::{Action, Principal};
use crate::wire::ContextUploaded;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/contexts", post(upload))
        .route("/api/contexts/{digest}", get(download).head(exists))
}

async fn upload(
    State(app): State<App>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ContextUploaded>), ApiError> {
    principal.require_any(Action::Push)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refuse before reading a byte when the client says up front that it is too big.
    if declared.is_some_and(|len| len > app.contexts.max_bytes) {
        return Err(crate::service::contexts::ContextError::TooLarge {
            limit: app.contexts.max_bytes,
        }
        .into());
    }
    let stored = app.contexts.put(body.into_data_stream()).await?;
    tracing::info!(context.digest = %stored.digest, size_bytes = stored.size, files = stored.files, "context stored");
    Ok((
        StatusCode::CREATED,
        Json(ContextUploaded {
            digest: stored.digest,
            size: stored.size,
        }),
    ))
}

/// Part of uploading: the CLI skips an upload the server already has.
async fn exists(
    State(app): State<App>,
    principal: Principal,
    ValidPath(digest): ValidPath<Digest>,
) -> Result<StatusCode, ApiError> {
    principal.require_any(Action::Push)?;
    Ok(if app.contexts.exists(&digest) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn download(
    State(app): State<App>,
    principal: Principal,
    ValidPath(digest): ValidPath<Digest>,
) -> Result<Response, ApiError> {
    principal.require_any(Action::Pull)?;
    archive_response(&app, &digest).await
}

/// Streams a stored context archive.
pub(super) async fn archive_response(app: &App, digest: &Digest) -> Result<Response, ApiError> {
    let file = app
        .contexts
        .open(digest)
        .await
        .map_err(|_| ApiError::NotFound(format!("build context {digest} not found")))?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut resp = Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024)).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = len {
        headers.insert(header::CONTENT_LENGTH, len.into());
    }
    Ok(resp)
}
