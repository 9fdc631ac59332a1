//! HTTP routes, one file per resource. Handlers only extract, authorise and delegate to
//! services; services never call routes.

mod auth;
mod contexts;
pub mod error;
mod extract;
pub mod oci_error;
mod registry;
mod runs;
mod workers;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::service::contexts::ContextStore;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::runs::RunService;

/// What every handler can reach.
#[derive(Clone)]
pub struct App {
    pub runs: Arc<RunService>,
    pub queue: Arc<Queue>,
    pub contexts: Arc<ContextStore>,
    pub registry: Arc<RegistryService>,
    /// `None`: the API is open (a server on loopback for one user).
    pub token: Option<Arc<str>>,
}

pub fn router(app: App) -> Router {
    let api = Router::new()
        .merge(contexts::routes())
        .merge(runs::routes())
        .merge(workers::routes())
        .merge(registry::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}
