//! `/api/worker/…`: the protocol workers speak. Every call after the lease names its attempt,
//! and a stale attempt gets 409 `STALE_ATTEMPT`, which tells the worker to stop; a log upload
//! past the end of the log gets 409 `LOG_GAP` with the offset to resend from.
//! Only worker tokens get past the route layer, before any body is read.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::{
    Heartbeat, HeartbeatReply, LeaseRequest, LogAppendReply, ReturnRun, RunResult, ScanAnswer,
    ScanUpload, SourceReply, SourceResolved, StepsUpdate,
};
use serde::Deserialize;

use super::contexts::archive_response;
use super::error::ApiError;
use super::extract::{ValidBytes, ValidJson, ValidQuery};
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
        .route("/api/worker/runs/{id}/steps", post(steps))
        .route("/api/worker/runs/{id}/return", post(give_back))
        .route("/api/worker/runs/{id}/context", get(context))
        .route(
            "/api/worker/runs/{id}/scans",
            post(scans).layer(DefaultBodyLimit::max(MAX_INVENTORY)),
        )
        .route_layer(axum::middleware::from_fn(require_worker))
}

async fn require_worker(principal: Principal, req: Request, next: Next) -> Response {
    match principal.require_worker() {
        Ok(()) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An inventory of a large image (tens of thousands of packages, each with its path and
/// layer) is some MB of JSON: more than axum's default body limit.
const MAX_INVENTORY: usize = 256 << 20;

#[derive(Deserialize)]
struct AttemptQuery {
    attempt: u32,
    #[serde(default)]
    offset: u64,
}

async fn lease(
    State(app): State<App>,
    ValidJson(req): ValidJson<LeaseRequest>,
) -> Result<Response, ApiError> {
    Ok(match app.queue.lease(req).await? {
        Some(lease) => Json(lease).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn heartbeat(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidJson(hb): ValidJson<Heartbeat>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    Ok(Json(app.queue.heartbeat(run_id(&id)?, hb.attempt).await?))
}

async fn append_logs(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<AttemptQuery>,
    ValidBytes(body): ValidBytes,
) -> Result<Json<LogAppendReply>, ApiError> {
    let size = app
        .queue
        .append_logs(run_id(&id)?, q.attempt, q.offset, &body)
        .await?;
    Ok(Json(LogAppendReply { size }))
}

async fn result(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidJson(res): ValidJson<RunResult>,
) -> Result<StatusCode, ApiError> {
    app.queue.report(run_id(&id)?, res).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn steps(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidJson(update): ValidJson<StepsUpdate>,
) -> Result<StatusCode, ApiError> {
    app.queue.steps_update(run_id(&id)?, update).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn give_back(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    Json(returned): Json<ReturnRun>,
) -> Result<StatusCode, ApiError> {
    principal.require_worker()?;
    app.queue.give_back(run_id(&id)?, returned).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn source(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidJson(resolved): ValidJson<SourceResolved>,
) -> Result<Json<SourceReply>, ApiError> {
    Ok(Json(
        app.queue.source_resolved(run_id(&id)?, resolved).await?,
    ))
}

async fn context(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<AttemptQuery>,
) -> Result<Response, ApiError> {
    let digest = app.queue.context_of(run_id(&id)?, q.attempt).await?;
    archive_response(&app, &digest).await
}

async fn scans(
    State(app): State<App>,
    Path(id): Path<String>,
    ValidJson(upload): ValidJson<ScanUpload>,
) -> Result<Json<ScanAnswer>, ApiError> {
    Ok(Json(app.scans.answer(&run_id(&id)?, upload).await?))
}
