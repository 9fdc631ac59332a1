//! The worker's main loop: lease a run, build and push it while heartbeating, ship logs,
//! report the result. Cancel and timeout stop the build itself, not only the status.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, ServerClient};
use crate::engine::{BuildJob, Engine, PlatformSupport};
use crate::engine_health::wait_for_engine;
use crate::executor::Board;
use crate::fetch_policy::FetchPolicy;
use crate::logship::{self, LogSink};
use crate::protocol::{
    human_transfer, BaseImage, BuildSpec, Job, JobKind, Lease, LeaseRequest, Outcome, OutputImage,
    Platform, PurgeCounts, ReturnRun, RunResult, Secret, StepState, StepStatus, StepType, StepsJob,
    WorkerInfo, PROTOCOL_VERSION,
};
use crate::steps::base_images;
use crate::{publish, source};

/// The server refuses this worker for good: it speaks a protocol the server no longer
/// serves. The message says what to do ("upgrade kiln-worker").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// How long one lease request may wait on the server before the worker asks again.
const LEASE_WAIT: Duration = Duration::from_secs(25);
/// Pause after the server could not be reached, so a down server is not hammered.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub server: String,
    pub token: Option<Secret>,
    pub name: String,
    /// Platforms to advertise; empty: ask the engine.
    pub platforms: Vec<Platform>,
    /// What git contexts, submodules and tarballs may be fetched from.
    pub fetch_policy: FetchPolicy,
    /// Once `shutdown` fires, how long the run in progress may still take. After it, a run
    /// that has not started building goes back to the queue and one that has ends as Error.
    pub drain_timeout: Duration,
    /// Who stopped, for the message of a run ended by the drain: "the server shut down".
    pub shutdown_reason: String,
}

pub struct Agent<E> {
    client: ServerClient,
    engine: Arc<E>,
    config: AgentConfig,
    id: String,
}

/// Why a build stopped before it finished on its own.
enum Stop {
    Canceled,
    /// The server gave the run to no one or someone else: drop it without a report.
    Lost(String),
}

impl<E: Engine> Agent<E> {
    pub fn new(config: AgentConfig, engine: E) -> Result<Agent<E>, ClientError> {
        Ok(Agent {
            client: ServerClient::new(&config.server, config.token.clone())?,
            engine: Arc::new(engine),
            id: format!("{}-{}", config.name, uuid::Uuid::new_v4().simple()),
            config,
        })
    }

    /// Unique to this agent: what the server knows it by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Leases and runs builds until `shutdown` fires. A run in progress gets the drain
    /// timeout to finish; see `AgentConfig::drain_timeout`. Leases only while the engine
    /// answers (`engine_health`).
    ///
    /// Returns an error only when the server refuses this worker for good (it speaks a
    /// protocol the server no longer serves): asking again could never work.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), Refused> {
        let mut req = LeaseRequest {
            worker: WorkerInfo {
                id: self.id.clone(),
                name: self.config.name.clone(),
                platforms: if self.config.platforms.is_empty() {
                    vec![Platform::default()]
                } else {
                    self.config.platforms.clone()
                },
                emulated: Vec::new(),
                engine_error: None,
                protocol: PROTOCOL_VERSION,
                jobs: vec![
                    JobKind::Build,
                    JobKind::Steps,
                    JobKind::Purge,
                    JobKind::Scan,
                ],
                step_types: vec![
                    StepType::Build,
                    StepType::Push,
                    StepType::Cmd,
                    StepType::Purge,
                    StepType::Scan,
                ],
            },
            wait_ms: LEASE_WAIT.as_millis() as u64,
        };
        // What the engine builds is only known once it answers.
        if !wait_for_engine(self.engine.as_ref(), &self.client, &mut req, &shutdown).await {
            return Ok(());
        }
        self.remove_leftovers().await;
        let support = self.platforms().await;
        req.worker.platforms = support
            .native
            .iter()
            .chain(&support.emulated)
            .cloned()
            .collect();
        tracing::info!(
            worker = %self.config.name,
            native = ?support.native.iter().map(ToString::to_string).collect::<Vec<_>>(),
            emulated = ?support.emulated.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "worker ready"
        );
        req.worker.emulated = support.emulated;
        loop {
            // Checked before every lease request, so a dead engine takes no run.
            if !wait_for_engine(self.engine.as_ref(), &self.client, &mut req, &shutdown).await {
                return Ok(());
            }
            let lease = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                lease = self.client.lease(&req) => lease,
            };
            match lease {
                // Granted just as the shutdown began: someone else can build it.
                Ok(Some(lease)) if shutdown.is_cancelled() => self.give_back(&lease).await,
                Ok(Some(lease)) => self.execute(lease, &shutdown).await,
                Ok(None) => {}
                Err(ClientError::Server { status, message })
                    if status == reqwest::StatusCode::UPGRADE_REQUIRED =>
                {
                    tracing::error!(worker = %self.config.name, "{message}");
                    return Err(Refused(message));
                }
                Err(e) => {
                    tracing::warn!(worker = %self.config.name, error = %e, "lease request failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
        }
    }

    /// Hands a run that has not started building back to the queue.
    async fn give_back(&self, lease: &Lease) {
        let returned = ReturnRun {
            attempt: lease.attempt,
            reason: format!("worker '{}' is shutting down", self.config.name),
        };
        match self.client.give_back(lease.run_id, &returned).await {
            Ok(()) => {
                tracing::info!(run.id = %lease.run_id, "run returned to the queue: the worker is shutting down")
            }
            Err(e) => {
                tracing::warn!(run.id = %lease.run_id, error = %e, "returning the run failed; the server settles it when its lease runs out")
            }
        }
    }

    /// What to advertise: the configured platforms (taken as native), else the engine's.
    async fn platforms(&self) -> PlatformSupport {
        if !self.config.platforms.is_empty() {
            return PlatformSupport {
                native: self.config.platforms.clone(),
                emulated: Vec::new(),
            };
        }
        match self.engine.platforms().await {
            Ok(p) => p,
            Err(e) => {
                // It answered a ping just now: a passing fault, so assume the common case.
                tracing::warn!(error = %e, "cannot ask the engine for its platforms; assuming linux/amd64");
                PlatformSupport {
                    native: vec![Platform::default()],
                    emulated: Vec::new(),
                }
            }
        }
    }

    async fn execute(&self, lease: Lease, shutdown: &CancellationToken) {
        let run = lease.run_id;
        let building = AtomicBool::new(false);
        let drained = async {
            shutdown.cancelled().await;
            tracing::info!(
                run.id = %run,
                "shutting down: the run in progress gets {}s to finish",
                self.config.drain_timeout.as_secs()
            );
            tokio::time::sleep(self.config.drain_timeout).await;
        };
        let started = Instant::now();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let build_name = format!("kiln-build/{run}-{nonce}");
        // A steps run's resources on the engine carry this; short, it ends container names.
        let execution = format!("{run}-{}", &nonce[..8]);
        let (log, shipper) =
            logship::start(self.client.clone(), run, lease.attempt, lease.log_offset);
        let steps_job = match &lease.job {
            Job::Steps(job) => Some(job),
            Job::Build(_) | Job::Purge(_) | Job::Scan(_) => None,
        };
        // A purge or scan run's one step, as the purge or scan reports it.
        let own_step = std::sync::Mutex::new(None);
        let log = match &lease.job {
            Job::Steps(job) => log.masking(masked_values(Some(job), &lease)),
            // A purge or a scan prints registry responses: the credentials it holds never show.
            Job::Purge(_) | Job::Scan(_) => log.masking(masked_values(None, &lease)),
            Job::Build(_) => log,
        };
        let (board, reporter) = match steps_job {
            Some(job) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let reporter = tokio::spawn(steps::report_steps(
                    self.client.clone(),
                    run,
                    lease.attempt,
                    rx,
                ));
                (Some(Board::new(job, Some(tx))), Some(reporter))
            }
            None => (None, None),
        };
        log.line(format!(
            "Run ID: {run} started on worker {} ({})",
            self.config.name,
            lease.job.platforms()
        ));
        let stop = CancellationToken::new();
        let reason = Arc::new(std::sync::Mutex::new(None));
        let heartbeat = tokio::spawn(heartbeat_loop(
            self.client.clone(),
            lease.clone(),
            stop.clone(),
            reason.clone(),
        ));
        let timeout = Duration::from_millis(lease.timeout_ms);
        let outcome = tokio::select! {
            r = self.perform(&lease, &execution, board.as_ref(), &build_name, &log, &building, &own_step) => r,
            _ = drained => {
                if !building.load(Ordering::Relaxed) {
                    log.line("Build stopped before it started: the worker is shutting down");
                    if let (Some(job), Some(board)) = (steps_job, &board) {
                        self.finish_steps(job, &execution, board, StepStatus::Canceled, &log).await;
                    }
                    heartbeat.abort();
                    drop(log);
                    let _ = shipper.await;
                    self.give_back(&lease).await;
                    return;
                }
                let msg = format!("{} while this run was building", self.config.shutdown_reason);
                log.line(format!("Build stopped: {msg}"));
                Err((Outcome::Error, msg))
            }
            _ = stop.cancelled() => {
                let why = reason.lock().unwrap_or_else(|e| e.into_inner()).take();
                match why {
                    Some(Stop::Lost(msg)) => {
                        tracing::warn!(run.id = %run, "dropping run: {msg}");
                        if let (Some(job), Some(board)) = (steps_job, &board) {
                            self.finish_steps(job, &execution, board, StepStatus::Canceled, &log).await;
                        }
                        heartbeat.abort();
                        drop(log);
                        let _ = shipper.await;
                        let nothing = RunResult {
                            attempt: lease.attempt,
                            outcome: Outcome::Error,
                            error_message: None,
                            output_images: Vec::new(),
                            steps: Vec::new(),
                            base_images: Vec::new(),
                        };
                        self.engine.forget(&local_names(&lease, &build_name, &nothing)).await;
                        return;
                    }
                    _ => {
                        log.line("Build stopped: the run was canceled");
                        Err((Outcome::Canceled, "canceled by user".to_string()))
                    }
                }
            }
            _ = tokio::time::sleep(timeout) => {
                let msg = format!("the run exceeded its timeout of {}s", timeout.as_secs());
                log.line(format!("Build stopped: {msg}"));
                Err((Outcome::Timeout, msg))
            }
        };
        let steps = match (steps_job, &board) {
            (Some(job), Some(board)) => {
                let running = match &outcome {
                    Err((Outcome::Timeout, _)) => StepStatus::Timeout,
                    _ => StepStatus::Canceled,
                };
                self.finish_steps(job, &execution, board, running, &log)
                    .await
            }
            _ => own_step
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .into_iter()
                .collect(),
        };
        // Live states first: the result makes the run final.
        drop(board);
        if let Some(reporter) = reporter {
            let _ = reporter.await;
        }
        let result = match outcome {
            Ok((outputs, summary)) => {
                log.line(summary.line(&lease, started.elapsed()));
                RunResult {
                    attempt: lease.attempt,
                    outcome: Outcome::Succeeded,
                    error_message: None,
                    output_images: outputs,
                    steps,
                    base_images: summary.base_images,
                }
            }
            Err((outcome, message)) => RunResult {
                attempt: lease.attempt,
                outcome,
                error_message: Some(message),
                output_images: Vec::new(),
                steps,
                base_images: Vec::new(),
            },
        };
        // The log must be complete before the result makes the run final.
        drop(log);
        if let Ok(Err(e)) = shipper.await {
            tracing::warn!(run.id = %run, error = %e, "log upload failed");
        }
        self.report(&lease, &result).await;
        // Beats go on until the result is in: a slow log upload must not lose the lease.
        heartbeat.abort();
        self.engine
            .forget(&local_names(&lease, &build_name, &result))
            .await;
    }

    async fn report(&self, lease: &Lease, result: &RunResult) {
        for attempt in 0..5u32 {
            match self.client.report(lease.run_id, result).await {
                Ok(()) => return,
                Err(ClientError::Stale(msg)) => {
                    tracing::warn!(run.id = %lease.run_id, "result not accepted: {msg}");
                    return;
                }
                Err(e) => {
                    tracing::warn!(run.id = %lease.run_id, error = %e, "reporting the result failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
        }
    }

    /// Runs the lease's job, whatever its kind. A purge or scan job leaves its one step's state in
    /// `own_step`.
    #[expect(clippy::too_many_arguments, reason = "what each job kind needs")]
    async fn perform(
        &self,
        lease: &Lease,
        execution: &str,
        board: Option<&Board>,
        build_name: &str,
        log: &LogSink,
        building: &AtomicBool,
        own_step: &std::sync::Mutex<Option<StepState>>,
    ) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
        match &lease.job {
            Job::Build(spec) => {
                self.build_and_push(lease, spec, build_name, log, building)
                    .await
            }
            Job::Steps(job) => {
                let Some(board) = board else {
                    return Err((Outcome::Error, "no step board for a steps job".into()));
                };
                self.run_steps(lease, job, execution, board, log, building)
                    .await
            }
            Job::Purge(job) => {
                building.store(true, Ordering::Relaxed);
                purge_job::run(lease, job, log, own_step).await
            }
            Job::Scan(job) => {
                building.store(true, Ordering::Relaxed);
                let server = crate::scan_run::RunScans {
                    client: self.client.clone(),
                    run: lease.run_id,
                    attempt: lease.attempt,
                };
                scan_job::run(lease, job, &server, log, own_step).await
            }
        }
    }

    async fn build_and_push(
        &self,
        lease: &Lease,
        spec: &BuildSpec,
        build_name: &str,
        log: &LogSink,
        building: &AtomicBool,
    ) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
        let prepared = source::prepare(&self.client, lease, spec, &self.config.fetch_policy, log)
            .await
            .inspect_err(|(_, msg)| log.line(format!("Context failed: {msg}")))?;
        let mut spec = spec.clone();
        spec.dockerfile = prepared.dockerfile.clone();
        let mut credentials = lease.credentials.clone();
        if let Some(resolved) = &prepared.resolved {
            spec.images = resolved.images.clone();
            credentials = resolved.credentials.clone();
        }
        let build_started = Instant::now();
        // From here a shutdown ends the run rather than handing it to another worker.
        building.store(true, Ordering::Relaxed);
        let mut builds = Vec::new();
        for platform in spec.platforms.iter() {
            if spec.platforms.len() > 1 {
                log.line(format!("Building for {platform}"));
            }
            let job = BuildJob {
                run_id: lease.run_id,
                spec: spec.clone(),
                platform: platform.clone(),
                local_name: local_name(build_name, platform),
                context: prepared.open(&self.client, lease).await?,
                credentials: credentials.clone(),
            };
            // No log line here: the server's closing line gives the reason, once.
            let built = self
                .engine
                .build(job, log)
                .await
                .map_err(|e| (e.outcome(), e.to_string()))?;
            builds.push(built);
        }
        let mut summary = Summary {
            steps: builds.iter().map(|b| b.steps_total).sum(),
            cached: builds.iter().map(|b| b.steps_cached).sum(),
            build: build_started.elapsed(),
            push: None,
            base_images: Vec::new(),
            purged: None,
        };
        log.line(format!(
            "Build finished in {:.1}s: {} steps, {} cached",
            summary.build.as_secs_f64(),
            summary.steps,
            summary.cached
        ));
        // Read back once the build used them, as the steps' build step does, for the
        // base-image trigger.
        let context = prepared.open(&self.client, lease).await?;
        if let Some(text) = base_images::archive_file(context, &spec.dockerfile).await {
            summary.base_images =
                base_images::base_images(&text, &spec.build_args, &credentials).await;
        }
        if !spec.push {
            if spec.images.is_empty() {
                log.line("No image names given: the image was built but not pushed");
            } else {
                log.line("Push skipped (--no-push)");
            }
            return Ok((Vec::new(), summary));
        }
        let push_started = Instant::now();
        let outputs = publish::publish(
            self.engine.as_ref(),
            &builds,
            &spec.images,
            &credentials,
            log,
        )
        .await?;
        summary.push = Some(push_started.elapsed());
        Ok((outputs, summary))
    }
}

/// What a successful run did, for its one-line summary.
struct Summary {
    steps: usize,
    cached: usize,
    build: Duration,
    push: Option<Duration>,
    /// What the Dockerfile's stages start from, with the digests they resolve to.
    base_images: Vec<BaseImage>,
    /// A purge run's counts: its summary says what it deleted instead.
    purged: Option<PurgeCounts>,
}

impl Summary {
    /// `Summary: 7 steps (5 cached); context 1.20 MiB uploaded at 48 MiB/s; build 3.1s; push 0.4s; total 3.9s`
    fn line(&self, lease: &Lease, total: Duration) -> String {
        if let Some(purged) = self.purged {
            return format!(
                "Summary: {} tags and {} manifests deleted; total {:.1}s",
                purged.deleted_tags,
                purged.deleted_manifests,
                total.as_secs_f64()
            );
        }
        let mut parts = vec![format!("{} steps ({} cached)", self.steps, self.cached)];
        if let Some(ctx) = &lease.context_stats {
            let took = Duration::from_millis(ctx.upload_ms);
            parts.push(format!(
                "context {} uploaded",
                human_transfer(ctx.size, took)
            ));
        }
        parts.push(format!("build {:.1}s", self.build.as_secs_f64()));
        if let Some(push) = self.push {
            parts.push(format!("push {:.1}s", push.as_secs_f64()));
        }
        parts.push(format!("total {:.1}s", total.as_secs_f64()));
        format!("Summary: {}", parts.join("; "))
    }
}

/// What a steps (or purge) run's log never shows: the values the server marked, and the
/// credentials and git token the worker holds.
fn masked_values(job: Option<&StepsJob>, lease: &Lease) -> Vec<String> {
    let masked = job
        .into_iter()
        .flat_map(|j| &j.masked)
        .map(|s| s.expose().to_string());
    let credentials = lease
        .credentials
        .iter()
        .map(|c| c.password.expose().to_string());
    let git = lease.git_token.iter().map(|t| t.expose().to_string());
    masked.chain(credentials).chain(git).collect()
}

/// Every name the engine may hold for this run's images: the per-platform build names and
/// the pushed tags.
fn local_names(lease: &Lease, build_name: &str, result: &RunResult) -> Vec<String> {
    let Some(spec) = lease.build_spec() else {
        return Vec::new();
    };
    let built = spec.platforms.iter().map(|p| local_name(build_name, p));
    let named = spec.images.iter().map(ToString::to_string);
    let pushed = result.output_images.iter().map(|o| match &o.registry {
        Some(r) => format!("{r}/{}:{}", o.repository, o.tag),
        None => format!("{}:{}", o.repository, o.tag),
    });
    let mut names: Vec<String> = built.chain(named).chain(pushed).collect();
    names.sort();
    names.dedup();
    names
}

/// The engine-local name of one platform's build, e.g. `kiln-build/ca7-3f9a…:linux-arm64`.
/// `build_name` is new for every attempt: engines may be shared by workers of several servers,
/// whose run IDs can be equal.
fn local_name(build_name: &str, platform: &Platform) -> String {
    format!("{build_name}:{}", platform.to_string().replace('/', "-"))
}

/// Renews the lease until aborted; fires `stop` when the user cancels or the run is lost.
async fn heartbeat_loop(
    client: ServerClient,
    lease: Lease,
    stop: CancellationToken,
    reason: Arc<std::sync::Mutex<Option<Stop>>>,
) {
    let every = Duration::from_millis(lease.heartbeat_interval_ms.max(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let why = match client.heartbeat(lease.run_id, lease.attempt).await {
            Ok(reply) if reply.cancel => Stop::Canceled,
            Ok(_) => continue,
            Err(ClientError::Stale(msg)) => Stop::Lost(msg),
            Err(e) => {
                // A passing network fault: the lease outlives several missed beats.
                tracing::warn!(run.id = %lease.run_id, error = %e, "heartbeat failed");
                continue;
            }
        };
        *reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        stop.cancel();
        return;
    }
}

mod purge_job;
mod scan_job;
mod steps;

#[cfg(test)]
mod fake_server;
#[cfg(test)]
mod purge_tests;
#[cfg(test)]
mod steps_tests;
#[cfg(test)]
mod tests;
