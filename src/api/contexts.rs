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
use crate::access::Principal;
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
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stored = app
        .runs
        .upload_context(&principal, declared, body.into_data_stream())
        .await?;
    tracing::info!(context.digest = %stored.digest, size_bytes = stored.size, files = stored.files, "context stored");
    Ok((
        StatusCode::CREATED,
        Json(ContextUploaded {
            digest: stored.digest,
            size: stored.size,
        }),
    ))
}

/// Part of uploading: the CLI skips an upload the server already has for this token.
async fn exists(
    State(app): State<App>,
    principal: Principal,
    ValidPath(digest): ValidPath<Digest>,
) -> Result<StatusCode, ApiError> {
    Ok(if app.runs.has_context(&principal, &digest).await? {
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
    let file = app.runs.open_context(&principal, &digest).await?;
    Ok(archive_body(file).await)
}

/// Streams a stored context archive, for a worker (which reads the context of the run it
/// leased).
pub(super) async fn archive_response(app: &App, digest: &Digest) -> Result<Response, ApiError> {
    let file = app
        .contexts
        .open(digest)
        .await
        .map_err(|_| ApiError::NotFound(format!("build context {digest} not found")))?;
    Ok(archive_body(file).await)
}

async fn archive_body(file: tokio::fs::File) -> Response {
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
    resp
}
