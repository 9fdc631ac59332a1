//! `kiln serve`: opens the data dir, runs migrations, serves the API and starts the embedded
//! workers and the reaper. Tests start it in-process on a port-0 listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kiln_worker::{Agent, AgentConfig, DockerEngine};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::api::{self, App};
use crate::cli::credentials;
use crate::clock::{SharedClock, SystemClock};
use crate::config::ServeArgs;
use crate::http_server;
use crate::secret_key::SecretKey;
use crate::service::auth::{AuthService, OWNER_TOKEN};
use crate::service::collector::collect_forever;
use crate::service::contexts::ContextStore;
use crate::service::logs::LogHub;
use crate::service::queue::Queue;
use crate::service::registry::RegistryService;
use crate::service::repositories::RepositoryService;
use crate::service::retention::Retention;
use crate::service::runs::RunService;
use crate::service::scans::ScanService;
use crate::service::source_triggers::HookService;
use crate::service::tasks::TaskService;
use crate::service::triggers::base_images::BaseImageTriggers;
use crate::service::triggers::scan_on_push::ScanOnPush;
use crate::service::triggers::timers::TimerScheduler;
use crate::service::vulndb::VulnDbService;
use crate::service::webhooks::WebhookService;
use crate::service::RunSettings;
use crate::store::{Store, StoreError};

/// How often workers heartbeat. Short, because it is also how fast a cancel reaches a build.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const REAP_EVERY: Duration = Duration::from_secs(1);
const DEFAULT_TIMEOUT_SECS: u64 = 3_600;
/// Time the embedded workers get past the shutdown grace to report how their run ended.
const REPORT_SLACK: Duration = Duration::from_secs(5);
/// Requests in flight get at least this long once the API stops accepting, even when the
/// embedded workers used up the grace.
const MIN_REQUEST_DRAIN: Duration = Duration::from_secs(1);

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
            auth.discard_bootstrap_owner().await?;
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
    /// The reaper and the collector: stopped last.
    tasks: JoinSet<()>,
    store: Store,
    logs: Arc<LogHub>,
    queue: Arc<Queue>,
    serving: JoinHandle<()>,
    stop_serving: CancellationToken,
    agents: JoinSet<()>,
    stop_agents: CancellationToken,
    grace: Duration,
}

impl Server {
    /// Starts serving on `listener`, on the wall clock.
    pub async fn start(args: ServeArgs, listener: TcpListener) -> anyhow::Result<Server> {
        Server::start_with_clock(args, listener, Arc::new(SystemClock)).await
    }

    /// Starts serving on `listener`, reading every time from `clock` (tests pass a
    /// `ManualClock` and move it instead of waiting).
    pub async fn start_with_clock(
        args: ServeArgs,
        listener: TcpListener,
        clock: SharedClock,
    ) -> anyhow::Result<Server> {
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
            args.context_limits(),
        )?);
        // Nothing is uploading yet: whatever is in tmp/ is a partial upload a crash left.
        let leftovers = contexts.clean_tmp()?;
        if leftovers > 0 {
            tracing::info!(
                files = leftovers,
                "removed partial context uploads left by the last run"
            );
        }
        let addr = listener.local_addr()?;
        // Embedded workers and the local CLI reach the server over loopback.
        let local_url = format!("http://{}", local_addr(addr));
        let own_registry = own_registry(args.public_url.as_deref(), addr)?;
        let base_image_registry = own_registry.clone();
        let auth = Arc::new(AuthService::new(store.clone(), clock.clone()).await?);
        let settings = RunSettings {
            default_registry: args.registry.clone().unwrap_or(own_registry.clone()),
            own_registry,
            credentials: args.credentials()?,
            default_timeout_secs: DEFAULT_TIMEOUT_SECS.max(args.min_timeout),
            timeout_range: args.min_timeout..=crate::submission::MAX_TIMEOUT_SECS,
            lease_ttl: Duration::from_secs(args.lease_ttl),
            heartbeat_interval: HEARTBEAT_INTERVAL,
            queue_timeout: args.queue_timeout,
            clock: clock.clone(),
            allow_privileged_steps: args.allow_privileged_steps,
        };
        let runs = Arc::new(RunService::new(
            store.clone(),
            logs.clone(),
            contexts.clone(),
            auth.clone(),
            settings,
        ));
        bootstrap_owner(&auth, &args, &local_url).await?;
        let worker_token = match args.workers {
            0 => None,
            _ => Some(auth.rotate_embedded_worker_token().await?),
        };
        let registry = Arc::new(RegistryService::new(
            store.clone(),
            data.join("registry"),
            args.gc_grace,
            clock.clone(),
        )?);
        // A purge asks for a collection after it only where the server collects at all.
        let purge_gc = (!args.gc_interval.is_zero()).then(|| registry.clone());
        let queue = Arc::new(Queue::new(runs.clone(), purge_gc));
        let tasks = Arc::new(TaskService::new(store.clone(), runs.clone(), auth.clone()));
        let timers = TimerScheduler::new(tasks.clone(), clock.clone());
        let webhooks = Arc::new(WebhookService::new(store.clone(), clock.clone()));
        let base_images = Arc::new(BaseImageTriggers::new(
            store.clone(),
            tasks.clone(),
            base_image_registry,
            args.credentials()?,
            args.base_image_poll_interval,
            clock.clone(),
        ));
        let scan_on_push = Arc::new(ScanOnPush::new(
            store.clone(),
            runs.clone(),
            args.scan_on_push,
        ));
        let scans = Arc::new(ScanService::new(store.clone(), runs.clone()));
        let app = App {
            runs,
            queue: queue.clone(),
            contexts: contexts.clone(),
            repositories: Arc::new(RepositoryService::new(store.clone())),
            auth,
            public_url: args.public_url.as_deref().map(Arc::from),
            registry: registry.clone(),
            hooks: Arc::new(HookService::new(
                store.clone(),
                tasks.clone(),
                clock.clone(),
            )),
            tasks,
            webhooks: webhooks.clone(),
            vulndb: Arc::new(VulnDbService::new(store.clone(), clock.clone())),
            scans,
        };
        // Before any worker asks for work: what a stopped process's embedded workers held
        // ends now, not a lease time from now.
        let settled = queue.settle_previous_instances().await?;
        if settled > 0 {
            tracing::warn!(
                runs = settled,
                "ended the runs the previous server process was building"
            );
        }
        let mut tasks = JoinSet::new();
        let stop_serving = CancellationToken::new();
        let limits = http_server::ServeLimits::from_args(&args);
        let serving = tokio::spawn(http_server::serve(
            listener,
            api::router(app),
            limits,
            stop_serving.clone(),
        ));
        tasks.spawn(queue.clone().reap_forever(REAP_EVERY));
        tasks.spawn(timers.run_forever());
        tasks.spawn(base_images.clone().consume_forever());
        tasks.spawn(base_images.poll_forever());
        tasks.spawn(webhooks.clone().consume_forever());
        tasks.spawn(scan_on_push.consume_forever());
        tasks.spawn(webhooks.send_forever());
        if !args.gc_interval.is_zero() {
            let retention = Retention::new(
                store.clone(),
                logs.clone(),
                contexts,
                args.run_retention,
                clock.clone(),
            );
            tasks.spawn(collect_forever(
                registry,
                Arc::new(retention),
                args.gc_interval,
                clock,
            ));
        }
        // Embedded workers speak the same HTTP protocol as remote ones.
        let stop_agents = CancellationToken::new();
        let mut agents = JoinSet::new();
        for i in 0..args.workers {
            let config = AgentConfig {
                server: local_url.clone(),
                token: worker_token.clone(),
                name: format!("embedded-{i}"),
                platforms: Vec::new(),
                fetch_policy: kiln_worker::fetch_policy::FetchPolicy {
                    deny_private_addresses: args.deny_private_addresses,
                },
                drain_timeout: args.shutdown_grace,
                shutdown_reason: "the server shut down".into(),
            };
            let agent = Agent::new(config, DockerEngine::new(args.docker_host.as_deref()))?;
            queue.adopt_embedded(agent.id());
            let stop = stop_agents.clone();
            agents.spawn(async move {
                // It speaks this server's own protocol, so a refusal is a bug worth a line.
                if let Err(e) = agent.run(stop).await {
                    tracing::error!(error = %e, "embedded worker refused by its own server");
                }
            });
        }
        tracing::info!(%addr, data_dir = %data.display(), workers = args.workers, "kiln serving");
        Ok(Server {
            addr,
            tasks,
            store,
            logs,
            queue,
            serving,
            stop_serving,
            agents,
            stop_agents,
            grace: args.shutdown_grace,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops gracefully, within the shutdown grace:
    /// 1. no more runs are handed out (queued runs stay queued for the next start);
    /// 2. the embedded workers finish the run in progress, or hand back one that has not
    ///    started building, or end it as Error when the grace runs out. The API keeps
    ///    serving meanwhile: their builds push to Kiln's own registry and report over HTTP;
    /// 3. the API stops accepting connections and finishes the requests in flight (an
    ///    upload, say) in what is left of the grace, then drops the rest. Log followers of
    ///    runs that go on are cut off at once; `kiln` reconnects after the restart.
    pub async fn shutdown(mut self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        self.queue.stop_leasing();
        self.stop_agents.cancel();
        // The agents end their own runs at the grace; a little more lets them report it.
        let agents_done = async { while self.agents.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline + REPORT_SLACK, agents_done)
            .await
            .is_err()
        {
            tracing::warn!("embedded workers did not stop in time; abandoning them");
            self.agents.shutdown().await;
        }
        match self.queue.settle_own().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runs = n, "ended the runs the embedded workers still held"),
            Err(e) => tracing::error!(error = %e, "ending the embedded workers' runs failed"),
        }
        self.queue.release_lease_requests();
        self.logs.stop_following();
        self.stop_serving.cancel();
        let left = deadline.max(tokio::time::Instant::now() + MIN_REQUEST_DRAIN);
        if tokio::time::timeout_at(left, &mut self.serving)
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still in flight at the end of the shutdown grace were cut off"
            );
            self.serving.abort();
        }
        self.tasks.shutdown().await;
        self.store.close().await;
        tracing::info!("kiln stopped");
    }
}
