//! `/api/vulndb`: the vulnerability database's sources (`kiln vulndb status`), and
//! `POST /api/vulndb/sources/{name}` with an OSV zip as the body (`kiln vulndb import`),
//! which replaces that source.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_worker::protocol::{DatabaseState, SourceState};

use super::error::ApiError;
use super::extract::ValidBytes;
use super::App;
use crate::access::Principal;

/// osv.dev's largest bulk exports (all ecosystems together) are some hundreds of MB.
const MAX_IMPORT: usize = 1 << 30;

pub fn routes() -> Router<App> {
    Router::new().route("/api/vulndb", get(status)).route(
        "/api/vulndb/sources/{name}",
        post(import).layer(DefaultBodyLimit::max(MAX_IMPORT)),
    )
}

async fn status(State(app): State<App>, who: Principal) -> Result<Json<DatabaseState>, ApiError> {
    Ok(Json(app.vulndb.status(&who).await?))
}

async fn import(
    State(app): State<App>,
    who: Principal,
    Path(name): Path<String>,
    ValidBytes(zip): ValidBytes,
) -> Result<Json<SourceState>, ApiError> {
    Ok(Json(app.vulndb.import(&who, &name, zip).await?))
}
