//! The worker side of runs: leases, heartbeats, log upload, results, and the reaper that ends
//! runs whose worker vanished or whose time ran out. Workers reach this only over HTTP.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_worker::protocol::{
    ContextSource, Digest, HeartbeatReply, ImageRef, Lease, LeaseRequest, PlatformSet,
    RegistryCredential, RunId, RunResult, RunStatus, SourceReply, SourceResolved, StepsUpdate,
    WorkerInfo, MIN_PROTOCOL_VERSION,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::origin::detail_branch;
use super::registry::RegistryService;
use super::runs::RunService;
use super::ServiceError;
use crate::access::RUN_USERNAME;
use crate::config::format_duration;
use crate::store::{requirements_met, RunRow, StoredJob};

/// The longest a lease request may wait; workers ask again after it.
pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(30);
/// How many of the oldest runs a worker could take it considers, so that it can leave one to a
/// better placed worker and take the next. Only runs of platform sets it builds are read.
const CLAIM_WINDOW: u32 = 32;
/// A request that left a run to a better placed worker looks again this often, in case that
/// worker never takes it.
const RECHECK_DEFERRED: Duration = Duration::from_secs(1);
/// Run credentials outlive the run's timeout by this much, for the push after the build.
const RUN_CREDENTIALS_SLACK: Duration = Duration::from_secs(600);

pub struct Queue {
    pub(super) runs: Arc<RunService>,
    /// This server process, recorded on the runs its embedded workers claim, so the next
    /// start knows which runs it must settle.
    pub(super) instance: String,
    /// Worker IDs of this process's embedded workers.
    pub(super) embedded: Mutex<HashSet<String>>,
    /// Set once shutdown began: no more runs are handed out.
    pub(super) draining: AtomicBool,
    /// Fires when the API is about to stop: lease requests held during the drain answer.
    pub(super) closing: CancellationToken,
    /// The registry whose garbage a purge that deleted manifests there asks to collect;
    /// `None` when the server collects none (`--gc-interval 0`).
    pub(super) gc: Option<Arc<RegistryService>>,
}

impl Queue {
    pub fn new(runs: Arc<RunService>, gc: Option<Arc<RegistryService>>) -> Queue {
        Queue {
            runs,
            gc,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            embedded: Mutex::new(HashSet::new()),
            draining: AtomicBool::new(false),
            closing: CancellationToken::new(),
        }
    }

    /// Hands the oldest queued run for the worker's platforms to it, waiting up to `wait_ms`
    /// for one to be queued. Returns as soon as a run it can build is queued: no
    /// fixed-interval polling, and runs for other platforms do not wake it. The request marks
    /// the worker connected and idle while it waits; a claim marks it busy.
    pub async fn lease(&self, req: LeaseRequest) -> Result<Option<Lease>, ServiceError> {
        // Refused before it counts as connected: it could only fail the runs it took.
        if req.worker.protocol < MIN_PROTOCOL_VERSION {
            tracing::warn!(worker = %req.worker.name, protocol = req.worker.protocol, "worker too old");
            return Err(ServiceError::UpgradeRequired(format!(
                "kiln-worker speaks protocol {}; this server needs {MIN_PROTOCOL_VERSION}: \
                 upgrade kiln-worker",
                req.worker.protocol
            )));
        }
        let workers = &self.runs.workers;
        workers.lease_requested(&req.worker);
        // Told how the request ended; dropped unanswered, the worker went away.
        let mut request = RequestGuard {
            queue: self,
            worker_id: &req.worker.id,
            answered: false,
        };
        let leased = self.lease_waiting(&req).await;
        request.answered = true;
        leased
    }

    async fn lease_waiting(&self, req: &LeaseRequest) -> Result<Option<Lease>, ServiceError> {
        let wait = Duration::from_millis(req.wait_ms).min(MAX_LEASE_WAIT);
        let deadline = Instant::now() + wait;
        // An unhealthy worker only reports its state; it would fail any run it took.
        if req.worker.engine_error.is_some() {
            return Ok(None);
        }
        loop {
            if self.draining.load(Ordering::Relaxed) {
                // Held as usual rather than answered at once, so workers do not ask again
                // in a tight loop; answered when the API stops.
                tokio::select! {
                    _ = self.closing.cancelled() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
                return Ok(None);
            }
            // Register interest before querying, so a run queued in between is not missed.
            let waiting = self.runs.wakeups.wait(&req.worker.platforms);
            let mut look_again = deadline;
            match self.claim_next(&req.worker).await? {
                Claim::Taken(run) => {
                    self.runs.workers.claimed(&req.worker.id);
                    tracing::info!(run.id = %run.id, worker = %req.worker.name, attempt = run.attempt, "run leased");
                    return Ok(Some(self.lease_for(*run)));
                }
                Claim::Deferred => {
                    waiting.deferred();
                    look_again = deadline.min(Instant::now() + RECHECK_DEFERRED);
                }
                Claim::Nothing => {}
            }
            tokio::select! {
                _ = waiting.woken() => continue,
                _ = tokio::time::sleep_until(look_again) => {
                    if look_again == deadline {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Claims the oldest queued run this worker builds all platforms of, unless a better
    /// placed worker is free to take it (see `WorkerRegistry::leave_to_other`). Reads only
    /// the platform sets the worker builds, so runs for others never hide its own.
    async fn claim_next(&self, worker: &WorkerInfo) -> Result<Claim, ServiceError> {
        let store = &self.runs.store;
        let sets: Vec<PlatformSet> = store
            .queued_platform_sets()
            .await?
            .into_iter()
            .filter(|set| set.is_within(&worker.platforms))
            .collect();
        if sets.is_empty() {
            return Ok(Claim::Nothing);
        }
        let mut deferred = false;
        let requires = requirements_met(worker);
        for queued in store
            .queued_runs_for(&sets, &requires, CLAIM_WINDOW)
            .await?
        {
            if self.runs.workers.leave_to_other(worker, &queued) {
                deferred = true;
                continue;
            }
            let embedded = self
                .embedded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&worker.id);
            let instance = embedded.then_some(self.instance.as_str());
            let ttl = self.runs.settings.lease_ttl.as_millis() as i64;
            let claimed = store
                .try_claim(
                    queued.seq,
                    &worker.id,
                    &worker.name,
                    instance,
                    || self.runs.now_ms(),
                    ttl,
                )
                .await?;
            if let Some(run) = claimed {
                // Workers that left runs to this one must look again: it is busy now.
                self.runs.wakeups.claimed();
                return Ok(Claim::Taken(Box::new(run)));
            }
        }
        Ok(if deferred {
            Claim::Deferred
        } else {
            Claim::Nothing
        })
    }

    fn lease_for(&self, run: RunRow) -> Lease {
        let settings = &self.runs.settings;
        let credentials = self.credentials_for(&run, &run.job, &run.job.images());
        Lease {
            run_id: run.id,
            attempt: run.attempt,
            heartbeat_interval_ms: settings.heartbeat_interval.as_millis() as u64,
            timeout_ms: run.timeout_secs * 1000,
            log_offset: self.runs.logs.size(run.id),
            git_token: run.git_token,
            context_stats: match run.job.context() {
                Some(ContextSource::Upload { digest }) => self.runs.contexts.stats(digest),
                _ => None,
            },
            credentials,
            job: run.job.into_job(),
            context_limits: self.runs.contexts.limits,
        }
    }

    /// A worker only gets the credentials of the registries its run (`job`) pushes to or
    /// purges, and for Kiln's own registry ones minted for the run, which allow what the
    /// run's grants allow until the run would have timed out.
    fn credentials_for(
        &self,
        run: &RunRow,
        job: &StoredJob,
        images: &[ImageRef],
    ) -> Vec<RegistryCredential> {
        let settings = &self.runs.settings;
        let purged = job.purges();
        let registries: Vec<&str> = images
            .iter()
            .filter_map(|i| i.registry())
            .chain(purged.iter().map(|(_, p)| p.registry.as_str()))
            .collect();
        let mut credentials: Vec<RegistryCredential> = settings
            .credentials
            .iter()
            .filter(|c| registries.contains(&c.registry.as_str()))
            .cloned()
            .collect();
        // Always minted, even for a build-only run: its Dockerfile may start FROM an image here.
        let ttl = Duration::from_secs(run.timeout_secs) + RUN_CREDENTIALS_SLACK;
        credentials.push(RegistryCredential {
            registry: settings.own_registry.clone(),
            username: RUN_USERNAME.into(),
            password: self.runs.auth.mint_run_credentials(
                &run.id.to_string(),
                run.registry_grants.clone(),
                ttl,
            ),
        });
        credentials
    }

    /// Renews the lease; tells the worker whether to cancel.
    pub async fn heartbeat(&self, id: RunId, attempt: u32) -> Result<HeartbeatReply, ServiceError> {
        let expires = self.runs.now_ms() + self.runs.settings.lease_ttl.as_millis() as i64;
        match self.runs.store.renew_lease(id, attempt, expires).await? {
            Some(cancel) => Ok(HeartbeatReply { cancel }),
            None => Err(stale(id, attempt)),
        }
    }

    pub async fn append_logs(
        &self,
        id: RunId,
        attempt: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ServiceError> {
        if !self.runs.store.is_current_attempt(id, attempt).await? {
            return Err(stale(id, attempt));
        }
        Ok(self.runs.logs.append_at(id, offset, data)?)
    }

    pub async fn report(&self, id: RunId, result: RunResult) -> Result<(), ServiceError> {
        let status: RunStatus = result.outcome.into();
        let ended = self
            .runs
            .finish_reported(
                id,
                Some(result.attempt),
                status,
                result.error_message.as_deref(),
                &result.output_images,
                &result.steps,
                &result.base_images,
            )
            .await?;
        match ended {
            Some(run) => {
                // Its next lease request follows at once: count it free already, so the
                // next rebuild is not handed elsewhere in the meantime.
                if let Some(worker) = &run.worker_name {
                    self.runs.workers.released(worker);
                }
                self.collect_after_purge(&run, &result.steps);
                Ok(())
            }
            None => Err(stale(id, result.attempt)),
        }
    }

    /// Records the step states a worker reports while its run goes on.
    pub async fn steps_update(&self, id: RunId, update: StepsUpdate) -> Result<(), ServiceError> {
        let current = self
            .runs
            .store
            .record_steps(id, update.attempt, &update.steps)
            .await?;
        if !current {
            return Err(stale(id, update.attempt));
        }
        Ok(())
    }

    /// Renders a git run's image names from the commit its worker fetched. A steps job's
    /// names were rendered at submission: they stay as they are.
    pub async fn source_resolved(
        &self,
        id: RunId,
        resolved: SourceResolved,
    ) -> Result<SourceReply, ServiceError> {
        let run = self.runs.row(id).await?;
        if run.attempt != resolved.attempt || run.status != RunStatus::Running {
            return Err(stale(id, resolved.attempt));
        }
        let mut vars = self.runs.run_vars(id, run.created_at, run.platform.first());
        vars.commit = Some(resolved.commit.clone());
        vars.branch = resolved
            .branch
            .clone()
            .or_else(|| detail_branch(run.trigger_detail.as_deref()));
        if let Some(task) = run.task_id {
            vars.task_name = self.runs.store.get_task_by_id(task).await?.map(|t| t.name);
        }
        let job = self.compile_deferred(&run, &resolved, vars.clone()).await?;
        let compiled = job.clone().map(StoredJob::Steps);
        let ran = compiled.as_ref().unwrap_or(&run.job);
        let images = match &run.job {
            StoredJob::Build(_) => self.runs.render_images(&run.requested_images, &vars)?,
            StoredJob::Steps(_) | StoredJob::Purge(_) | StoredJob::Scan(_) => ran.images(),
        };
        let current = self
            .runs
            .store
            .record_source(
                id,
                resolved.attempt,
                &resolved.commit,
                resolved.branch.as_deref(),
                &images,
            )
            .await?;
        if !current {
            return Err(stale(id, resolved.attempt));
        }
        Ok(SourceReply {
            credentials: self.credentials_for(&run, ran, &images),
            images,
            job,
        })
    }

    /// Whether the worker may download this context: only for a run it currently holds.
    pub async fn context_of(&self, id: RunId, attempt: u32) -> Result<Digest, ServiceError> {
        let run = self.runs.row(id).await?;
        if run.attempt != attempt || run.status != RunStatus::Running {
            return Err(stale(id, attempt));
        }
        match run.job.context() {
            Some(ContextSource::Upload { digest }) => Ok(digest.clone()),
            Some(other) => Err(ServiceError::NotFound(format!(
                "run '{id}' has no uploaded context: its context is {}",
                other.describe()
            ))),
            None => Err(ServiceError::NotFound(format!(
                "run '{id}' has no context: it runs on an empty workspace"
            ))),
        }
    }

    /// Ends runs whose worker stopped heartbeating (Error, "worker lost"), that outlived
    /// their timeout without the worker reporting it, or that waited in the queue past their
    /// queue timeout (Expired). Runs until the process stops.
    pub async fn reap_forever(self: Arc<Self>, every: Duration) {
        let default = self.runs.settings.queue_timeout.as_secs();
        match self.runs.store.settle_queue_timeouts(default).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "queued runs given the default queue timeout"),
            Err(e) => tracing::error!(error = %e, "giving queued runs a queue deadline failed"),
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.reap_once().await {
                tracing::error!(error = %e, "reaping overdue runs failed");
            }
        }
    }

    async fn reap_once(&self) -> Result<(), ServiceError> {
        self.expire_queued().await?;
        let now = self.runs.now_ms();
        // The worker enforces the timeout itself; the server steps in one lease later.
        let grace = self.runs.settings.lease_ttl.as_millis() as i64;
        for run in self.runs.store.overdue_runs(now, grace).await? {
            let timed_out = run
                .started_at
                .is_some_and(|s| s + (run.timeout_secs as i64) * 1000 + grace < now);
            let (status, message) = if run.cancel_requested {
                (RunStatus::Canceled, "canceled by user".to_string())
            } else if timed_out {
                (
                    RunStatus::Timeout,
                    format!("the run exceeded its timeout of {}s", run.timeout_secs),
                )
            } else {
                let worker = run.worker_name.as_deref().unwrap_or("unknown");
                // Gone: no queued run may count it as connected any more.
                if let Some(id) = &run.worker_id {
                    self.runs.workers.lost(id);
                }
                (
                    RunStatus::Error,
                    format!(
                        "worker lost: worker '{worker}' stopped sending heartbeats for {}s",
                        self.runs.settings.lease_ttl.as_secs()
                    ),
                )
            };
            tracing::warn!(run.id = %run.id, run.status = %status, "{message}");
            // One run that cannot be ended must not keep the others from being reaped.
            if let Err(e) = self
                .runs
                .finish(run.id, Some(run.attempt), status, Some(&message), &[])
                .await
            {
                tracing::error!(run.id = %run.id, error = %e, "ending an overdue run failed");
            }
        }
        Ok(())
    }
}

impl Queue {
    /// Ends queued runs no worker took within their queue timeout as Expired, saying what
    /// they waited for.
    async fn expire_queued(&self) -> Result<(), ServiceError> {
        let expired = self
            .runs
            .store
            .expired_queued_runs(self.runs.now_ms())
            .await?;
        if expired.is_empty() {
            return Ok(());
        }
        let running = self.runs.store.running_workers().await?;
        for run in expired {
            let waited = format_duration(self.runs.queue_timeout(&run));
            let why =
                self.runs
                    .workers
                    .wait_reason_for(&run.platform, &run.job.requirement(), &running);
            let message = format!("no worker took this run in {waited}: {why}");
            tracing::warn!(run.id = %run.id, "{message}");
            // A worker may have taken it meanwhile: then `finish` changes nothing.
            if let Err(e) = self
                .runs
                .finish(run.id, None, RunStatus::Expired, Some(&message), &[])
                .await
            {
                tracing::error!(run.id = %run.id, error = %e, "ending an expired run failed");
            }
        }
        Ok(())
    }
}

/// What one look at the queue found for a worker.
enum Claim {
    Taken(Box<RunRow>),
    /// Nothing taken: it left a run to a better placed worker.
    Deferred,
    Nothing,
}

/// Tells the worker registry that a lease request ended, and whether it was answered.
struct RequestGuard<'a> {
    queue: &'a Queue,
    worker_id: &'a str,
    answered: bool,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        let workers = &self.queue.runs.workers;
        workers.request_ended(self.worker_id, !self.answered);
        if !self.answered {
            // It may have been the worker others left a run to.
            self.queue.runs.wakeups.claimed();
        }
    }
}

pub(super) fn stale(id: RunId, attempt: u32) -> ServiceError {
    ServiceError::StaleAttempt(format!(
        "attempt {attempt} of run '{id}' is no longer current: the run finished or was handed to another worker"
    ))
}
