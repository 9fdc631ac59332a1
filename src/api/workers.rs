//! `/api/worker/…`: the protocol workers speak. Every call after the lease names its attempt,
//! and a stale attempt gets 409, which tells the worker to stop.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::{
    Heartbeat, HeartbeatReply, LeaseRequest, LogAppendReply, RunResult, SourceReply, SourceResolved,
};
use serde::Deserialize;

use super::contexts::archive_response;
use super::error::ApiError;
use super::extract::ValidQuery;
use super::runs::run_id;
use super::App;
use crate::access::Principal;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/worker/lease", post(lease))
        .route("/api/worker/runs/{id}/heartbeat", post(heartbeat))
        .route("/api/worker/runs/{id}/logs", post(append_logs))
        .route("/api/worker/runs/{id}/result", post(result))
        .route("/api/worker/runs/{id}/source", post(source))
        .route("/api/worker/runs/{id}/context", get(context))
}

#[derive(Deserialize)]
struct AttemptQuery {
    attempt: u32,
    #[serde(default)]
    offset: u64,
}

async fn lease(
    State(app): State<App>,
    principal: Principal,
    Json(req): Json<LeaseRequest>,
) -> Result<Response, ApiError> {
    principal.require_worker()?;
    Ok(match app.queue.lease(req).await? {
        Some(lease) => Json(lease).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn heartbeat(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    Json(hb): Json<Heartbeat>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    principal.require_worker()?;
    Ok(Json(app.queue.heartbeat(run_id(&id)?, hb.attempt).await?))
}

async fn append_logs(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<AttemptQuery>,
    body: Bytes,
) -> Result<Json<LogAppendReply>, ApiError> {
    principal.require_worker()?;
    let size = app
        .queue
        .append_logs(run_id(&id)?, q.attempt, q.offset, &body)
        .await?;
    Ok(Json(LogAppendReply { size }))
}

async fn result(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    Json(res): Json<RunResult>,
) -> Result<StatusCode, ApiError> {
    principal.require_worker()?;
    app.queue.report(run_id(&id)?, res).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn source(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    Json(resolved): Json<SourceResolved>,
) -> Result<Json<SourceReply>, ApiError> {
    principal.require_worker()?;
    Ok(Json(
        app.queue.source_resolved(run_id(&id)?, resolved).await?,
    ))
}

async fn context(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<AttemptQuery>,
) -> Result<Response, ApiError> {
    principal.require_worker()?;
    let digest = app.queue.context_of(run_id(&id)?, q.attempt).await?;
    archive_response(&app, &digest).await
}
