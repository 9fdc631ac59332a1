//! `/api/tasks/{name}/timers`: a task's cron timers (`kiln task timer ...`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::ValidJson;
use super::App;
use crate::access::Principal;
use crate::wire::timers::{CreateTimer, Timer, TimerList, UpdateTimer};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/tasks/{name}/timers", get(list).post(add))
        .route(
            "/api/tasks/{name}/timers/{timer}",
            patch(update).delete(remove),
        )
}

async fn list(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Json<TimerList>, ApiError> {
    Ok(Json(app.tasks.list_timers(&name, &who).await?))
}

async fn add(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
    body: Result<ValidJson<CreateTimer>, ApiError>,
) -> Result<(StatusCode, Json<Timer>), ApiError> {
    // Authorised first: a caller who may not do this learns nothing from its body.
    app.tasks.may_manage(&who)?;
    let ValidJson(req) = body?;
    Ok((
        StatusCode::CREATED,
        Json(app.tasks.add_timer(&name, req, &who).await?),
    ))
}

async fn update(
    State(app): State<App>,
    who: Principal,
    Path((name, timer)): Path<(String, String)>,
    body: Result<ValidJson<UpdateTimer>, ApiError>,
) -> Result<Json<Timer>, ApiError> {
    app.tasks.may_manage(&who)?;
    let ValidJson(req) = body?;
    Ok(Json(
        app.tasks.update_timer(&name, &timer, req, &who).await?,
    ))
}

async fn remove(
    State(app): State<App>,
    who: Principal,
    Path((name, timer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.tasks.remove_timer(&name, &timer, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}
