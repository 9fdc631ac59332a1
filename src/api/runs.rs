//! `/api/runs`: queue, list, show, cancel and stream logs of runs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::RunId;

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::App;
use crate::access::Principal;
use crate::wire::{
    CreatePurgeRun, CreateRun, CreateScanRun, CreateStepsRun, ListQuery, LogQuery, Run, RunList,
    SubmitLimits,
};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/runs", post(create).get(list))
        .route("/api/runs/steps", post(create_steps))
        .route("/api/runs/purge", post(create_purge))
        .route("/api/runs/scan", post(create_scan))
        .route("/api/runs/{id}", get(show))
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/logs", get(logs))
        .route("/api/limits", get(limits))
}

/// `kiln purge`: bad arguments are a 400, a filter reaching a repository the caller may not
/// delete in a 403, and nothing is queued.
async fn create_purge(
    State(app): State<App>,
    who: Principal,
    ValidJson(req): ValidJson<CreatePurgeRun>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(app.runs.create_purge(req, &who).await?),
    ))
}

/// `kiln scan`: bad arguments are a 400, an image the caller may not pull a 403, and nothing
/// is queued.
async fn create_scan(
    State(app): State<App>,
    who: Principal,
    ValidJson(req): ValidJson<CreateScanRun>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(app.runs.create_scan(req, &who).await?),
    ))
}

async fn limits(State(app): State<App>, who: Principal) -> Result<Json<SubmitLimits>, ApiError> {
    Ok(Json(app.runs.limits(&who)?))
}

/// A malformed run ID names no run, so it gets the same 404 as an unknown one.
pub(super) fn run_id(raw: &str) -> Result<RunId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("run '{raw}' not found")))
}

async fn create(
    State(app): State<App>,
    who: Principal,
    body: Result<ValidJson<CreateRun>, ApiError>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    // Authorised first: a caller who may not do this learns nothing from its body.
    app.runs.may_submit(&who)?;
    let ValidJson(req) = body?;
    Ok((StatusCode::CREATED, Json(app.runs.create(req, &who).await?)))
}

/// A task file or a cmd: compiled on the server, so a bad one is a 400 and nothing queued.
async fn create_steps(
    State(app): State<App>,
    who: Principal,
    body: Result<ValidJson<CreateStepsRun>, ApiError>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    app.runs.may_submit(&who)?;
    let ValidJson(req) = body?;
    Ok((
        StatusCode::CREATED,
        Json(app.runs.create_steps(req, &who).await?),
    ))
}

async fn list(
    State(app): State<App>,
    principal: Principal,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<RunList>, ApiError> {
    Ok(Json(app.runs.list(q, &principal).await?))
}

async fn show(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let id = run_id(&id)?;
    Ok(Json(app.runs.get(id, &principal).await?))
}

async fn cancel(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let id = run_id(&id)?;
    Ok(Json(app.runs.cancel(id, &principal).await?))
}

/// Plain text from `offset`; with `follow=true` the body ends only when the run finishes, so a
/// clean end of body means "complete" and a broken one means "reconnect at your offset".
async fn logs(
    State(app): State<App>,
    principal: Principal,
    Path(id): Path<String>,
    ValidQuery(q): ValidQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let id = run_id(&id)?;
    let stream = app.runs.logs(id, &principal, q.offset, q.follow).await?;
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Proxies must pass each chunk on as it comes.
    resp.headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    Ok(resp)
}
