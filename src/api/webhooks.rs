//! `/api/webhooks`: outbound webhooks (owners only), their delivery log, pings and redeliveries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::ValidJson;
use super::App;
use crate::access::Principal;
use crate::wire::webhooks::{CreateWebhook, Delivery, DeliveryList, Webhook, WebhookList};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/webhooks", post(create).get(list))
        .route("/api/webhooks/{name}", axum::routing::delete(delete))
        .route("/api/webhooks/{name}/ping", post(ping))
        .route("/api/webhooks/{name}/deliveries", get(deliveries))
        .route(
            "/api/webhooks/{name}/deliveries/{id}/redeliver",
            post(redeliver),
        )
}

async fn create(
    State(app): State<App>,
    who: Principal,
    body: Result<ValidJson<CreateWebhook>, ApiError>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    // Authorised first: a caller who may not do this learns nothing from its body.
    who.require_owner()?;
    let ValidJson(req) = body?;
    Ok((
        StatusCode::CREATED,
        Json(app.webhooks.create(req, &who).await?),
    ))
}

async fn list(State(app): State<App>, who: Principal) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(app.webhooks.list(&who).await?))
}

async fn delete(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.webhooks.delete(&name, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ping(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.webhooks.ping(&name, &who).await?),
    ))
}

async fn deliveries(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(app.webhooks.deliveries(&name, &who).await?))
}

async fn redeliver(
    State(app): State<App>,
    who: Principal,
    Path((name, id)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(app.webhooks.redeliver(&name, id, &who).await?),
    ))
}
