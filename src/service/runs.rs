//! Runs as users see them: listing, where a queued run stands and why, cancel, logs, and the
//! one place a run ends, which also writes the run's closing log line. Submission (validation
//! and templating) is in `submit.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use kiln_worker::protocol::{
    BaseImage, ContextSource, ImageRef, OutputImage, PlatformSet, RunId, RunStatus, StepState,
};

use super::auth::AuthService;
use super::contexts::ContextStore;
use super::logs::LogHub;
use super::queue::MAX_LEASE_WAIT;
use super::triggers::base_images::tracked_base_images;
use super::wakeups::Wakeups;
use super::workers::{Wait, WorkerRegistry};
use super::{to_time, RunSettings, ServiceError};
use crate::access::{AccessError, Action, Principal};
use crate::config::format_duration;
use crate::store::{step_status_of, Finish, RunRow, Store};
use crate::wire;

/// `kiln run list` shows this many runs unless told otherwise, like `az acr task list-runs`.
pub const DEFAULT_TOP: u32 = 15;
const MAX_TOP: u32 = 1000;

pub struct RunService {
    pub(super) store: Store,
    pub(super) logs: Arc<LogHub>,
    pub(super) contexts: Arc<ContextStore>,
    pub(super) settings: RunSettings,
    /// Mints the credentials a run's build uses for Kiln's own registry.
    pub(super) auth: Arc<AuthService>,
    /// Wakes the lease requests a queued run concerns, so leasing workers need not poll.
    pub(super) wakeups: Wakeups,
    /// Which workers ask for work, for what queued runs wait for; the queue fills it in.
    pub(super) workers: Arc<WorkerRegistry>,
}

impl RunService {
    pub fn new(
        store: Store,
        logs: Arc<LogHub>,
        contexts: Arc<ContextStore>,
        auth: Arc<AuthService>,
        settings: RunSettings,
    ) -> RunService {
        RunService {
            store,
            logs,
            contexts,
            auth,
            // A worker asks again at most MAX_LEASE_WAIT after its last request; allow it a
            // lease's time on top before calling it gone, as for a silent running worker.
            workers: Arc::new(WorkerRegistry::new(MAX_LEASE_WAIT + settings.lease_ttl)),
            settings,
            wakeups: Wakeups::default(),
        }
    }

    /// The run, if `who` may see it.
    pub async fn get(&self, id: RunId, who: &Principal) -> Result<wire::Run, ServiceError> {
        who.require_any(Action::Pull)?;
        let row = self.row(id).await?;
        check(&row, who, Action::Pull)?;
        self.view(row).await
    }

    /// Now on the server's clock, as Unix milliseconds.
    pub(super) fn now_ms(&self) -> i64 {
        self.settings.clock.now_ms()
    }

    pub(super) async fn row(&self, id: RunId) -> Result<RunRow, ServiceError> {
        self.store
            .get_run(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("run '{id}' not found")))
    }

    /// The newest runs `who` may see (see `may`).
    pub async fn list(
        &self,
        q: wire::ListQuery,
        who: &Principal,
    ) -> Result<wire::RunList, ServiceError> {
        who.require_any(Action::Pull)?;
        let top = q.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_TOP);
        let image = q
            .image
            .as_deref()
            .map(|i| self.image_filter(i))
            .transpose()?;
        // Others' runs are filtered out after the query, so look further back for them.
        let owner = who.is_owner();
        let limit = if owner { top } else { MAX_TOP };
        let rows = self
            .store
            .list_runs(q.status, image.as_ref(), limit)
            .await?;
        let rows: Vec<RunRow> = rows
            .into_iter()
            .filter(|r| owner || may(r, who, Action::Pull))
            .take(top as usize)
            .collect();
        let running = if rows.iter().any(|r| r.status == RunStatus::Queued) {
            self.store.running_workers().await?
        } else {
            Vec::new()
        };
        let queued: Vec<(i64, &PlatformSet)> = rows
            .iter()
            .filter(|r| r.status == RunStatus::Queued)
            .map(|r| (r.id.seq() as i64, &r.platform))
            .collect();
        let positions = self.positions(&queued).await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let position = positions.get(&(row.id.seq() as i64)).copied();
            let queued = self.queue_spot(&row, position, &running);
            let queue_timeout = self.queue_timeout(&row).as_secs();
            let mut run = with_queue_spot(view_without_history(row), queued);
            run.queue_timeout_secs = Some(queue_timeout);
            runs.push(run);
        }
        Ok(wire::RunList { runs })
    }

    /// `run list --image`: a repository, or one tag of it, in the default registry unless it
    /// names one, as image names given to `kiln build` are.
    fn image_filter(&self, raw: &str) -> Result<ImageRef, ServiceError> {
        let image = ImageRef::parse(raw).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        if image.digest().is_some() {
            return Err(ServiceError::Invalid(format!(
                "invalid image filter '{raw}': name a repository or repository:tag, not a digest"
            )));
        }
        Ok(image.with_default_registry(&self.settings.default_registry))
    }

    /// A queued run's position (from `positions`) and why it waits; `None` for other runs.
    /// `running` is what `Store::running_workers` returned.
    fn queue_spot(
        &self,
        row: &RunRow,
        position: Option<u32>,
        running: &[(String, PlatformSet)],
    ) -> Option<QueueSpot> {
        let position = position.filter(|_| row.status == RunStatus::Queued)?;
        let wait = self
            .workers
            .wait_reason_for(&row.platform, &row.job.requirement(), running);
        // Said plainly when nothing can take the run now, so `kiln build` can warn at once.
        let warning = matches!(
            wait,
            Wait::NoWorker(..) | Wait::Unhealthy(..) | Wait::NoWorkerForJob(..)
        )
        .then(|| {
            let limit = self.queue_timeout(row);
            let how_long = if limit.is_zero() {
                "until one connects".to_string()
            } else {
                format!("up to {} for one", format_duration(limit))
            };
            format!("{wait}; the run waits {how_long}")
        });
        Some(QueueSpot {
            position,
            waiting_for: wait.to_string(),
            warning,
        })
    }

    /// How long the run may wait for a worker; zero: no limit.
    pub(super) fn queue_timeout(&self, row: &RunRow) -> Duration {
        row.queue_timeout_secs
            .map_or(self.settings.queue_timeout, Duration::from_secs)
    }

    /// Cancels the run, if `who` may. A queued run ends at once; a running one is stopped by
    /// its worker on its next heartbeat.
    pub async fn cancel(&self, id: RunId, who: &Principal) -> Result<wire::Run, ServiceError> {
        who.require_any(Action::Push)?;
        let row = self.row(id).await?;
        check(&row, who, Action::Push)?;
        match row.status {
            RunStatus::Queued => {
                let ended = self
                    .finish(id, None, RunStatus::Canceled, Some("canceled by user"), &[])
                    .await?;
                if ended.is_none() {
                    // A worker took it in the meantime: ask that worker to stop instead.
                    self.store.request_cancel(id).await?;
                }
            }
            RunStatus::Running => {
                self.store.request_cancel(id).await?;
            }
            status => {
                return Err(ServiceError::Conflict(format!(
                    "run '{id}' has already finished with status {status}"
                )))
            }
        }
        tracing::info!(run.id = %id, "cancel requested");
        self.view(self.row(id).await?).await
    }

    /// The run's log from `offset`; with `follow`, it ends only when the run does.
    pub async fn logs(
        &self,
        id: RunId,
        who: &Principal,
        offset: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, ServiceError> {
        who.require_any(Action::Pull)?;
        let row = self.row(id).await?;
        check(&row, who, Action::Pull)?;
        let follow = follow && !row.status.is_finished();
        let store = self.store.clone();
        let finished =
            async move { matches!(store.get_run(id).await, Ok(Some(r)) if r.status.is_finished()) };
        Ok(self.logs.read(id, offset, follow, finished).await)
    }

    /// Ends a run (fenced by `attempt` when running) and writes its closing log line before
    /// the status becomes visible. `None` when the run was no longer in that state.
    pub(crate) async fn finish(
        &self,
        id: RunId,
        attempt: Option<u32>,
        status: RunStatus,
        error: Option<&str>,
        outputs: &[OutputImage],
    ) -> Result<Option<RunRow>, ServiceError> {
        self.finish_reported(id, attempt, status, error, outputs, &[], &[])
            .await
    }

    /// `finish`, with the final step states and base images its worker reported.
    #[expect(
        clippy::too_many_arguments,
        reason = "one per part of a worker's report"
    )]
    pub(crate) async fn finish_reported(
        &self,
        id: RunId,
        attempt: Option<u32>,
        status: RunStatus,
        error: Option<&str>,
        outputs: &[OutputImage],
        steps: &[StepState],
        base_images: &[BaseImage],
    ) -> Result<Option<RunRow>, ServiceError> {
        let now = self.now_ms();
        let base_images = tracked_base_images(base_images, steps);
        let logs = &self.logs;
        let ended = self
            .store
            .finish_run(
                id,
                attempt,
                Finish {
                    status,
                    error_message: error,
                    output_images: outputs,
                    steps,
                    now,
                    base_images: &base_images,
                },
                |run| {
                    logs.append_line(id, &closing_line(run, now))
                        .map(|_| ())
                        .map_err(std::io::Error::other)
                },
            )
            .await?;
        if ended.is_some() {
            self.logs.close(id);
            tracing::info!(run.id = %id, run.status = %status, "run finished");
        }
        Ok(ended)
    }

    pub(super) async fn view(&self, row: RunRow) -> Result<wire::Run, ServiceError> {
        self.view_placed(row, None).await
    }

    /// `view`, with the queue position of a queued run when the caller knows it already.
    pub(super) async fn view_placed(
        &self,
        row: RunRow,
        position: Option<u32>,
    ) -> Result<wire::Run, ServiceError> {
        let history = self.store.run_events(row.id).await?;
        let queued = match row.status {
            RunStatus::Queued => {
                let running = self.store.running_workers().await?;
                let position = match position {
                    Some(p) => p,
                    None => {
                        let seq = row.id.seq() as i64;
                        let positions = self.positions(&[(seq, &row.platform)]).await?;
                        positions.get(&seq).copied().unwrap_or(1)
                    }
                };
                self.queue_spot(&row, Some(position), &running)
            }
            _ => None,
        };
        let queue_timeout = self.queue_timeout(&row).as_secs();
        let steps = self.store.run_steps(row.id).await?;
        let steps = steps_view(&row, steps);
        let task = match row.task_id {
            Some(id) => self.store.get_task_by_id(id).await?.map(|t| t.name),
            None => None,
        };
        let mut run = with_queue_spot(view_without_history(row), queued);
        run.queue_timeout_secs = Some(queue_timeout);
        run.steps = steps;
        run.task = task;
        run.status_history = history
            .into_iter()
            .map(|c| wire::StatusChange {
                status: c.status,
                at: to_time(c.at),
            })
            .collect();
        Ok(run)
    }
}

/// `Run ID: ca7 was successful after 27s`, in the words ACR's service uses.
fn closing_line(run: &RunRow, now: i64) -> String {
    let secs = (now - run.started_at.unwrap_or(run.created_at)).max(0) / 1000;
    let id = run.id;
    let reason = run
        .error_message
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    match run.status {
        RunStatus::Succeeded => format!("Run ID: {id} was successful after {secs}s"),
        RunStatus::Failed => format!("Run ID: {id} failed after {secs}s{reason}"),
        RunStatus::Canceled => format!("Run ID: {id} was canceled after {secs}s"),
        RunStatus::Timeout => format!("Run ID: {id} timed out after {secs}s"),
        RunStatus::Expired => format!("Run ID: {id} expired in the queue{reason}"),
        RunStatus::Error => format!("Run ID: {id} ended with an error after {secs}s{reason}"),
        RunStatus::Queued | RunStatus::Running => format!("Run ID: {id} is {}", run.status),
    }
}

/// Where a queued run stands, as `run show` tells it.
struct QueueSpot {
    position: u32,
    waiting_for: String,
    warning: Option<String>,
}

fn with_queue_spot(mut run: wire::Run, queued: Option<QueueSpot>) -> wire::Run {
    if let Some(spot) = queued {
        run.queue_position = Some(spot.position);
        run.waiting_for = Some(spot.waiting_for);
        run.warning = spot.warning;
    }
    run
}

fn view_without_history(row: RunRow) -> wire::Run {
    let context_digest = match row.job.context() {
        Some(ContextSource::Upload { digest }) => Some(digest.clone()),
        _ => None,
    };
    let build = row.job.build_spec();
    let (dockerfile, target, no_cache) = match build {
        Some(spec) => (spec.dockerfile.clone(), spec.target.clone(), spec.no_cache),
        None => (String::new(), None, false),
    };
    wire::Run {
        id: row.id,
        status: row.status,
        trigger: row.trigger,
        submitted_by: row.submitted_by,
        platform: row.platform,
        created_at: to_time(row.created_at),
        started_at: row.started_at.map(to_time),
        finished_at: row.finished_at.map(to_time),
        images: row.requested_images,
        rendered_images: row.job.images().iter().map(ToString::to_string).collect(),
        push: row.job.pushes(),
        output_images: row.output_images,
        error_message: row.error_message,
        timeout_secs: row.timeout_secs,
        worker: row.worker_name,
        context: row
            .job
            .context()
            .map_or_else(|| "/dev/null".to_string(), ContextSource::describe),
        context_digest,
        git_commit: row.git_commit,
        git_branch: row.git_branch,
        dockerfile,
        target,
        no_cache,
        status_history: Vec::new(),
        queue_position: None,
        waiting_for: None,
        queue_timeout_secs: None,
        warning: None,
        kind: row.job.kind(),
        trigger_detail: row
            .trigger_detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
        steps: Vec::new(),
        task: None,
    }
}

/// The steps `run show` lists. A build run's one step follows the run until it ends (and runs
/// from before steps were stored get it from the run too).
fn steps_view(row: &RunRow, stored: Vec<StepState>) -> Vec<wire::RunStep> {
    let mut steps = stored;
    if (row.job.build_spec().is_some() && !row.status.is_finished()) || steps.is_empty() {
        let status = step_status_of(row.status);
        steps = row
            .job
            .step_plan()
            .into_iter()
            .map(|(id, step_type)| StepState {
                id,
                step_type,
                status,
                started_at: row.started_at,
                finished_at: row.finished_at,
                exit_code: None,
                images: row.output_images.clone(),
                base_images: Vec::new(),
                error: row.error_message.clone(),
                purged: None,
            })
            .collect();
    }
    steps.into_iter().map(wire::RunStep::from).collect()
}

/// Who may see (`Pull`) or cancel (`Push`) a run: owners, the token that queued it (by id: a
/// new token under a revoked one's name is someone else), and tokens that may do `action` to
/// a repository it pushes to. A git run's images are known once its source is fetched; until
/// then only owners and its submitter see it.
pub(super) fn may(row: &RunRow, who: &Principal, action: Action) -> bool {
    if who.is_owner() {
        return true;
    }
    let submitter =
        row.submitted_token_id.is_some() && row.submitted_token_id.as_deref() == who.token_id();
    submitter
        || row
            .job
            .images()
            .iter()
            .any(|i| who.authorize(i.repository(), action).is_ok())
}

/// Refuses unless `who` may see (`Pull`) or cancel (`Push`) the run.
fn check(row: &RunRow, who: &Principal, action: Action) -> Result<(), ServiceError> {
    if may(row, who, action) {
        return Ok(());
    }
    let holder = who
        .subject()
        .map_or("an anonymous caller".into(), |s| s.describe());
    let verb = match action {
        Action::Push => "cancel",
        _ => "see",
    };
    Err(ServiceError::Access(AccessError::Denied(format!(
        "{holder} may not {verb} run {}: it pushes to none of the repositories the token \
         may {action}",
        row.id
    ))))
}
