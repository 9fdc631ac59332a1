//! `kiln serve`: opens the data dir, runs migrations, serves the API and starts the embedded
//! workers and the reaper. Tests start it in-process on a port-0 listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kiln_worker::{Agent, AgentConfig, DockerEngine};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::api::{self, App};
use crate::config::ServeArgs;
use crate::service::contexts::ContextStore;
use crate::service::logs::LogHub;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::runs::RunService;
use crate::service::RunSettings;
use crate::store::Store;

/// How often workers heartbeat. Short, because it is also how fast a cancel reaches a build.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const REAP_EVERY: Duration = Duration::from_secs(1);
const MAX_TIMEOUT_SECS: u64 = 28_800;
const DEFAULT_TIMEOUT_SECS: u64 = 3_600;

/// A running server. Dropping it does not stop it: call `shutdown`.
pub struct Server {
    addr: std::net::SocketAddr,
    tasks: JoinSet<()>,
    store: Store,
}

impl Server {
    /// Starts serving on `listener`.
    pub async fn start(args: ServeArgs, listener: TcpListener) -> anyhow::Result<Server> {
        if let Some(registry) = &args.registry {
            kiln_worker::protocol::ImageRef::validate_registry(registry)
                .map_err(|e| anyhow::anyhow!("invalid --registry: {e}"))?;
        }
        let data = &args.data_dir;
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create the data dir {}", data.display()))?;
        let store = Store::open(&data.join("kiln.db"))
            .await
            .with_context(|| format!("cannot open the database in {}", data.display()))?;
        let logs = Arc::new(LogHub::new(data.join("logs"))?);
        let contexts = Arc::new(ContextStore::new(
            data.join("contexts"),
            args.max_context_size,
        )?);
        let settings = RunSettings {
            default_registry: args.registry.clone(),
            credentials: args.credentials()?,
            default_timeout_secs: DEFAULT_TIMEOUT_SECS.max(args.min_timeout),
            timeout_range: args.min_timeout..=MAX_TIMEOUT_SECS,
            lease_ttl: Duration::from_secs(args.lease_ttl),
            heartbeat_interval: HEARTBEAT_INTERVAL,
        };
        let runs = Arc::new(RunService::new(
            store.clone(),
            logs,
            contexts.clone(),
            settings,
        ));
        let queue = Arc::new(Queue::new(runs.clone()));
        let registry = Arc::new(RegistryService::new(
            store.clone(),
            data.join("registry"),
            args.gc_grace,
        )?);
        let app = App {
            runs,
            queue: queue.clone(),
            contexts,
            registry: registry.clone(),
            token: args.token.as_ref().map(|t| Arc::from(t.expose())),
        };
        let addr = listener.local_addr()?;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            if let Err(e) = axum::serve(listener, api::router(app)).await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
        tasks.spawn(queue.reap_forever(REAP_EVERY));
        if !args.gc_interval.is_zero() {
            tasks.spawn(registry.collect_forever(args.gc_interval));
        }
        // Embedded workers speak the same HTTP protocol as remote ones, over loopback.
        let host = if addr.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        for i in 0..args.workers {
            let config = AgentConfig {
                server: format!("http://{host}"),
                token: args.token.clone(),
                name: format!("embedded-{i}"),
                platforms: Vec::new(),
            };
            let agent = Agent::new(config, DockerEngine::new(args.docker_host.as_deref()))?;
            tasks.spawn(async move { agent.run(tokio_util::sync::CancellationToken::new()).await });
        }
        tracing::info!(%addr, data_dir = %data.display(), workers = args.workers, "kiln serving");
        Ok(Server { addr, tasks, store })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Runs until the API server stops.
    pub async fn wait(mut self) {
        self.tasks.join_next().await;
        self.shutdown().await;
    }

    /// Stops at once: open requests are dropped and a build in progress is abandoned, to be
    /// reported lost when its lease runs out. Queued runs stay queued for the next start.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
        self.store.close().await;
    }
}
