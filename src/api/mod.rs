//! HTTP routes, one file per resource. Handlers only extract, delegate to services with the
//! caller's `Principal` and map errors; the services authorise, so no caller can skip a
//! check. Services never call routes.

mod auth;
mod contexts;
mod docker_token;
pub mod error;
mod extract;
pub mod oci_error;
mod registry;
mod repositories;
mod runs;
mod tokens;
mod workers;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::service::auth::AuthService;
use crate::service::contexts::ContextStore;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::repositories::RepositoryService;
use crate::service::runs::RunService;

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
}

pub fn router(app: App) -> Router {
    let api = Router::new()
        .merge(contexts::routes())
        .merge(runs::routes())
        .merge(repositories::routes())
        .merge(workers::routes())
        .merge(tokens::routes())
        .merge(registry::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(docker_token::routes())
        .merge(api)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}
