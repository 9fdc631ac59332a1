//! `GET /api/scans?repository=&reference=`: the stored scan reports of an image in Kiln's
//! registry, one per platform (`kiln scan show`). Workers post inventories through
//! `/api/worker/runs/{id}/scans` (`workers.rs`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use kiln_worker::protocol::ScanReport;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::ValidQuery;
use super::App;
use crate::access::Principal;

pub fn routes() -> Router<App> {
    Router::new().route("/api/scans", get(reports))
}

#[derive(Deserialize)]
struct ReportsQuery {
    repository: String,
    /// A tag or a digest.
    reference: String,
}

async fn reports(
    State(app): State<App>,
    who: Principal,
    ValidQuery(q): ValidQuery<ReportsQuery>,
) -> Result<Json<Vec<ScanReport>>, ApiError> {
    Ok(Json(
        app.scans.reports(&who, &q.repository, &q.reference).await?,
    ))
}
