//! `kiln serve`: opens the data dir, runs migrations, serves the API and starts the embedded
//! workers and the reaper. Tests start it in-process on a port-0 listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kiln_worker::{Agent, AgentConfig, DockerEngine};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::api::{self, App};
use crate::cli::credentials;
use crate::config::ServeArgs;
use crate::secret_key::SecretKey;
use crate::service::auth::{AuthService, OWNER_TOKEN};
use crate::service::contexts::ContextStore;
use crate::service::logs::LogHub;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::repositories::RepositoryService;
use crate::service::runs::RunService;
use crate::service::RunSettings;
use crate::store::{Store, StoreError};

/// How often workers heartbeat. Short, because it is also how fast a cancel reaches a build.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const REAP_EVERY: Duration = Duration::from_secs(1);
const MAX_TIMEOUT_SECS: u64 = 28_800;
const DEFAULT_TIMEOUT_SECS: u64 = 3_600;

/// Where a client on this machine reaches a server listening on `addr`.
fn local_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() || (addr.ip().is_loopback() && addr.is_ipv4()) {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Kiln's own registry as `host:port` in image names: the host of `--public-url` when set, so
/// build hosts elsewhere can push to it, else the loopback address of this server.
fn own_registry(public_url: Option<&str>, addr: SocketAddr) -> anyhow::Result<String> {
    let Some(url) = public_url else {
        return Ok(local_addr(addr).to_string());
    };
    let parsed =
        reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("invalid --public-url: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("invalid --public-url '{url}': it names no host"))?;
    Ok(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// On the first start, an owner token in the credentials file, where the `kiln` CLI on this
/// machine finds it for `local_url`. The secret goes to the file only, never to the log.
async fn bootstrap_owner(
    auth: &AuthService,
    args: &ServeArgs,
    local_url: &str,
) -> anyhow::Result<()> {
    let Some(secret) = auth.bootstrap_owner().await? else {
        return Ok(());
    };
    let stored = credentials::path(args.credentials_file.as_deref())
        .and_then(|path| credentials::store(&path, local_url, &secret).map(|()| path));
    let path = match stored {
        Ok(path) => path,
        Err(e) => {
            // A secret nobody holds would lock the owner out: the next start tries again.
            auth.revoke_token(OWNER_TOKEN).await?;
            return Err(e.into());
        }
    };
    tracing::info!(
        token.name = OWNER_TOKEN,
        credentials_file = %path.display(),
        server = local_url,
        "created the owner token; the kiln CLI on this machine uses it from the credentials file"
    );
    Ok(())
}

/// A running server. Dropping it does not stop it: call `shutdown`.
pub struct Server {
    addr: SocketAddr,
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
        let key_file = args
            .secret_key_file
            .clone()
            .unwrap_or_else(|| data.join("secret.key"));
        let key = SecretKey::load(&key_file)?;
        let store = match Store::open_sealed(&data.join("kiln.db"), &key.bytes).await {
            Err(StoreError::WrongKey) => return Err(key.mismatch()),
            opened => {
                opened.with_context(|| format!("cannot open the database in {}", data.display()))?
            }
        };
        key.persist()?;
        let logs = Arc::new(LogHub::new(data.join("logs"))?);
        let contexts = Arc::new(ContextStore::new(
            data.join("contexts"),
            args.max_context_size,
        )?);
        let addr = listener.local_addr()?;
        // Embedded workers and the local CLI reach the server over loopback.
        let local_url = format!("http://{}", local_addr(addr));
        let own_registry = own_registry(args.public_url.as_deref(), addr)?;
        let auth = Arc::new(AuthService::new(store.clone()).await?);
        let settings = RunSettings {
            default_registry: args.registry.clone().unwrap_or(own_registry.clone()),
            own_registry,
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
            auth.clone(),
            settings,
        ));
        let queue = Arc::new(Queue::new(runs.clone()));
        bootstrap_owner(&auth, &args, &local_url).await?;
        let worker_token = match args.workers {
            0 => None,
            _ => Some(auth.rotate_embedded_worker_token().await?),
        };
        let registry = Arc::new(RegistryService::new(
            store.clone(),
            data.join("registry"),
            args.gc_grace,
        )?);
        let app = App {
            runs,
            queue: queue.clone(),
            contexts,
            repositories: Arc::new(RepositoryService::new(store.clone())),
            auth,
            public_url: args.public_url.as_deref().map(Arc::from),
            registry: registry.clone(),
        };
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
        // Embedded workers speak the same HTTP protocol as remote ones.
        for i in 0..args.workers {
            let config = AgentConfig {
                server: local_url.clone(),
                token: worker_token.clone(),
                name: format!("embedded-{i}"),
                platforms: Vec::new(),
            };
            let agent = Agent::new(config, DockerEngine::new(args.docker_host.as_deref()))?;
            tasks.spawn(async move { agent.run(tokio_util::sync::CancellationToken::new()).await });
        }
        tracing::info!(%addr, data_dir = %data.display(), workers = args.workers, "kiln serving");
        Ok(Server { addr, tasks, store })
    }

    pub fn addr(&self) -> SocketAddr {
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
