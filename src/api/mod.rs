//! HTTP routes, one file per resource. Handlers only extract, delegate to services with the
//! caller's `Principal` and map errors; the services authorise, so no caller can skip a
//! check. Services never call routes.

mod auth;
mod contexts;
mod docker_token;
pub mod error;
mod extract;
mod hooks;
pub mod oci_error;
mod registry;
mod repositories;
mod runs;
mod scans;
mod tasks;
mod timers;
mod tokens;
mod vulndb;
mod webhooks;
mod workers;

use std::sync::Arc;

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use self::error::ApiError;

use crate::service::auth::AuthService;
use crate::service::contexts::ContextStore;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::repositories::RepositoryService;
use crate::service::runs::RunService;
use crate::service::scans::ScanService;
use crate::service::source_triggers::HookService;
use crate::service::tasks::TaskService;
use crate::service::vulndb::VulnDbService;
use crate::service::webhooks::WebhookService;

/// What every handler can reach.
#[derive(Clone)]
pub struct App {
    pub runs: Arc<RunService>,
    pub queue: Arc<Queue>,
    pub contexts: Arc<ContextStore>,
    pub repositories: Arc<RepositoryService>,
    pub auth: Arc<AuthService>,
    /// The server's URL as clients outside see it (`https://kiln.example.com`), for the
    /// registry's token challenge. `None`: `http://` and the request's Host.
    pub public_url: Option<Arc<str>>,
    pub registry: Arc<RegistryService>,
    pub tasks: Arc<TaskService>,
    // Source triggers (git webhooks in).
    pub hooks: Arc<HookService>,
    // Outbound webhooks (issue 11).
    pub webhooks: Arc<WebhookService>,
    // Vulnerability database and scan reports (issue 13).
    pub vulndb: Arc<VulnDbService>,
    pub scans: Arc<ScanService>,
}

pub fn router(app: App) -> Router {
    // Everything under /api answers in the API's envelope, wrong methods included.
    let api = Router::new()
        .merge(contexts::routes())
        .merge(runs::routes())
        .merge(repositories::routes())
        .merge(workers::routes())
        .merge(tokens::routes())
        .merge(tasks::routes())
        .merge(timers::routes())
        .merge(hooks::routes())
        .merge(webhooks::routes())
        .merge(vulndb::routes())
        .merge(scans::routes())
        .method_not_allowed_fallback(method_not_allowed);
    let authenticated = Router::new()
        .merge(api)
        .merge(registry::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(docker_token::routes())
        .merge(hooks::public_routes())
        .merge(authenticated)
        .fallback(not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}

/// Unknown paths under /api get the API's envelope; others keep a bare 404.
async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        ApiError::NotFound(format!("no API endpoint at {path}")).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
