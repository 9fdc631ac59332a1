//! `/api/tasks`: create, list, show, update, delete and run saved tasks, and list their runs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::{ValidJson, ValidQuery};
use super::App;
use crate::access::Principal;
use crate::wire::tasks::{CreateTask, RunTask, Task, TaskList, TaskRunsQuery, UpdateTask};
use crate::wire::{Run, RunList};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/tasks", post(create).get(list))
        .route("/api/tasks/{name}", get(show).patch(update).delete(delete))
        .route("/api/tasks/{name}/runs", post(run).get(runs))
}

async fn create(
    State(app): State<App>,
    who: Principal,
    body: Result<ValidJson<CreateTask>, ApiError>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    // Authorised first: a caller who may not do this learns nothing from its body.
    app.tasks.may_manage(&who)?;
    let ValidJson(req) = body?;
    Ok((
        StatusCode::CREATED,
        Json(app.tasks.create(req, &who).await?),
    ))
}

async fn list(State(app): State<App>, who: Principal) -> Result<Json<TaskList>, ApiError> {
    Ok(Json(app.tasks.list(&who).await?))
}

async fn show(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(app.tasks.show(&name, &who).await?))
}

async fn update(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
    body: Result<ValidJson<UpdateTask>, ApiError>,
) -> Result<Json<Task>, ApiError> {
    app.tasks.may_manage(&who)?;
    let ValidJson(req) = body?;
    Ok(Json(app.tasks.update(&name, req, &who).await?))
}

async fn delete(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.tasks.delete(&name, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn run(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
    body: Result<ValidJson<RunTask>, ApiError>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    app.runs.may_submit(&who)?;
    let ValidJson(req) = body?;
    Ok((
        StatusCode::CREATED,
        Json(app.tasks.run(&name, req, &who).await?),
    ))
}

async fn runs(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
    ValidQuery(q): ValidQuery<TaskRunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    Ok(Json(app.tasks.task_runs(&name, q, &who).await?))
}
