//! Runs as users see them: submission (validation and templating), listing, where a queued
//! run stands and why, cancel, logs, and the one place a run ends, which also writes the run's
//! closing log line.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::Stream;
use kiln_worker::protocol::{
    redact_url, BuildSpec, ContextSource, ImageRef, OutputImage, Platform, PlatformSet, RunId,
    RunStatus,
};
use tokio::sync::Notify;

use super::contexts::ContextStore;
use super::logs::LogHub;
use super::queue::MAX_LEASE_WAIT;
use super::workers::WorkerRegistry;
use super::{now_ms, RunSettings, ServiceError};
use crate::store::{Finish, NewRun, RunRow, Store};
use crate::template::{render, RunVars};
use crate::wire::{self, CreateRun};

/// `kiln run list` shows this many runs unless told otherwise, like `az acr task list-runs`.
pub const DEFAULT_TOP: u32 = 15;
const MAX_TOP: u32 = 1000;

pub struct RunService {
    pub(super) store: Store,
    pub(super) logs: Arc<LogHub>,
    pub(super) contexts: Arc<ContextStore>,
    pub(super) settings: RunSettings,
    /// Woken whenever a run is queued, so leasing workers need not poll.
    pub(super) queued: Arc<Notify>,
    /// Which workers ask for work, for what queued runs wait for; the queue fills it in.
    pub(super) workers: Arc<WorkerRegistry>,
}

impl RunService {
    pub fn new(
        store: Store,
        logs: Arc<LogHub>,
        contexts: Arc<ContextStore>,
        settings: RunSettings,
    ) -> RunService {
        RunService {
            store,
            logs,
            contexts,
            // A worker asks again at most MAX_LEASE_WAIT after its last request; allow it a
            // lease's time on top before calling it gone, as for a silent running worker.
            workers: Arc::new(WorkerRegistry::new(MAX_LEASE_WAIT + settings.lease_ttl)),
            settings,
            queued: Arc::new(Notify::new()),
        }
    }

    /// Validates and queues a build. Nothing is stored when any part of it is rejected.
    pub async fn create(&self, req: CreateRun) -> Result<wire::Run, ServiceError> {
        self.check_request(&req)?;
        let now = now_ms();
        let platform = req.platform.clone().unwrap_or_default();
        let is_git = matches!(req.context, ContextSource::Git { .. });
        let running = self.store.running_workers().await?;
        let created = self
            .store
            .create_run(
                now,
                |id| {
                    let mut vars = self.run_vars(id, now, platform.first());
                    if is_git {
                        // The commit is known once a worker fetches it; check the names now with
                        // stand-ins so mistakes are a 400, and render them for real then.
                        vars.commit = Some("0".repeat(40));
                        vars.branch = Some("main".into());
                    }
                    let images = self.render_images(&req.images, &vars, req.push)?;
                    Ok::<_, ServiceError>(NewRun {
                        trigger: "Manual".into(),
                        platform: platform.clone(),
                        requested_images: req.images.clone(),
                        timeout_secs: req
                            .timeout_secs
                            .unwrap_or(self.settings.default_timeout_secs),
                        git_token: req.git_access_token.clone(),
                        cache_key: cache_key(&req, &platform),
                        spec: BuildSpec {
                            context: req.context.clone(),
                            dockerfile: req.dockerfile.clone(),
                            build_args: req.build_args.clone(),
                            target: req.target.clone(),
                            platforms: platform.clone(),
                            no_cache: req.no_cache,
                            push: req.push && !images.is_empty(),
                            images: if is_git { Vec::new() } else { images },
                        },
                    })
                },
                |run, position| self.note_wait(run, position, &running),
            )
            .await??;
        tracing::info!(run.id = %created.id, "run queued");
        self.queued.notify_waiters();
        self.view(created).await
    }

    /// Tells the run's log why it waits, when it cannot start at once: `kiln build` shows this
    /// right after "Waiting for an agent...". Called before any worker can lease the run.
    fn note_wait(
        &self,
        run: &RunRow,
        position: u32,
        running: &[(String, PlatformSet)],
    ) -> std::io::Result<()> {
        let wait = self.workers.wait_reason(&run.platform, running);
        if wait.starts_now() {
            return Ok(());
        }
        let line = format!(
            "Waiting in the queue: position {position} for {} ({wait})",
            run.platform
        );
        self.logs
            .append_line(run.id, &line)
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    fn check_request(&self, req: &CreateRun) -> Result<(), ServiceError> {
        let invalid = |m: String| Err(ServiceError::Invalid(m));
        match &req.context {
            ContextSource::Upload { digest } if !self.contexts.exists(digest) => {
                return invalid(format!(
                    "unknown build context {digest}: upload it with POST /api/contexts first"
                ))
            }
            ContextSource::Upload { .. } => {}
            ContextSource::Git { url, subdir, .. } => {
                // file:// would read the worker's own disk: only network remotes are contexts.
                let remote = ["https://", "http://", "git://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme));
                if !remote || !kiln_worker::git::looks_like_git(url) {
                    return invalid(format!(
                        "invalid git context '{}': expected e.g. https://host/org/repo.git#branch:subdir",
                        redact_url(url)
                    ));
                }
                if subdir
                    .as_deref()
                    .is_some_and(|s| s.starts_with('/') || s.split('/').any(|c| c == ".."))
                {
                    return invalid(format!(
                        "invalid git context subdir '{}': it must be a relative path inside the repository",
                        subdir.as_deref().unwrap_or_default()
                    ));
                }
            }
            ContextSource::Tarball { url } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return invalid(format!(
                        "invalid tarball context '{}': expected an http:// or https:// URL",
                        redact_url(url)
                    ));
                }
            }
        }
        if req.git_access_token.is_some() && !matches!(req.context, ContextSource::Git { .. }) {
            return invalid("a git access token only goes with a git context".into());
        }
        let df = &req.dockerfile;
        if df.is_empty() || df.starts_with('/') || df.split('/').any(|c| c == "..") {
            return invalid(format!(
                "invalid dockerfile path '{df}': it must be a relative path inside the context"
            ));
        }
        let range = &self.settings.timeout_range;
        if let Some(t) = req.timeout_secs {
            if !range.contains(&t) {
                return invalid(format!(
                    "invalid timeout {t}s: it must be between {} and {} seconds",
                    range.start(),
                    range.end()
                ));
            }
        }
        for key in req.build_args.keys() {
            if key.is_empty() || key.contains('=') || key.contains(char::is_whitespace) {
                return invalid(format!("invalid build argument name '{key}'"));
            }
        }
        if let Some(t) = &req.target {
            if t.is_empty() || t.contains(char::is_whitespace) {
                return invalid(format!("invalid target stage '{t}'"));
            }
        }
        Ok(())
    }

    /// The `<<.Run.*>>` variables of a run, without the git ones.
    pub(super) fn run_vars(&self, id: RunId, created_at: i64, platform: &Platform) -> RunVars {
        RunVars {
            id: id.to_string(),
            registry: self.settings.default_registry.clone(),
            date: to_time(created_at),
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            commit: None,
            branch: None,
        }
    }

    /// Renders each image name and puts it in its registry.
    pub(super) fn render_images(
        &self,
        templates: &[String],
        vars: &RunVars,
        push: bool,
    ) -> Result<Vec<ImageRef>, ServiceError> {
        let mut images: Vec<ImageRef> = Vec::new();
        for template in templates {
            let name = render(template, vars).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            let image = ImageRef::parse(&name).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            if image.digest().is_some() {
                return Err(ServiceError::Invalid(format!(
                    "invalid image '{name}': a pushed image needs a tag, not a digest"
                )));
            }
            let image = match (image.registry(), &self.settings.default_registry) {
                (Some(_), _) => image,
                (None, Some(registry)) => image.with_default_registry(registry),
                (None, None) if push => {
                    return Err(ServiceError::Invalid(format!(
                        "image '{name}' names no registry and this server has no default registry \
                         (kiln serve --registry): name one, e.g. 'myregistry.example.com/{name}', \
                         or build with --no-push"
                    )))
                }
                (None, None) => image,
            };
            if !images.contains(&image) {
                images.push(image);
            }
        }
        Ok(images)
    }

    pub async fn get(&self, id: RunId) -> Result<wire::Run, ServiceError> {
        let row = self.row(id).await?;
        self.view(row).await
    }

    pub(super) async fn row(&self, id: RunId) -> Result<RunRow, ServiceError> {
        self.store
            .get_run(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("run '{id}' not found")))
    }

    pub async fn list(&self, q: wire::ListQuery) -> Result<wire::RunList, ServiceError> {
        let top = q.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_TOP);
        let image = q
            .image
            .as_deref()
            .map(|i| self.image_filter(i))
            .transpose()?;
        let rows = self.store.list_runs(q.status, image.as_ref(), top).await?;
        let running = if rows.iter().any(|r| r.status == RunStatus::Queued) {
            self.store.running_workers().await?
        } else {
            Vec::new()
        };
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let queued = self.queue_spot(&row, &running).await?;
            runs.push(with_queue_spot(view_without_history(row), queued));
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
        Ok(match &self.settings.default_registry {
            Some(registry) => image.with_default_registry(registry),
            None => image,
        })
    }

    /// A queued run's position for its platform and why it waits; `None` for other runs.
    /// `running` is what `Store::running_workers` returned.
    async fn queue_spot(
        &self,
        row: &RunRow,
        running: &[(String, PlatformSet)],
    ) -> Result<Option<(u32, String)>, ServiceError> {
        if row.status != RunStatus::Queued {
            return Ok(None);
        }
        let position = self.store.queue_position(row).await?;
        let wait = self.workers.wait_reason(&row.platform, running);
        Ok(Some((position, wait.to_string())))
    }

    /// A queued run ends at once; a running one is stopped by its worker on its next heartbeat.
    pub async fn cancel(&self, id: RunId) -> Result<wire::Run, ServiceError> {
        let row = self.row(id).await?;
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
        self.get(id).await
    }

    /// The run's log from `offset`; with `follow`, it ends only when the run does.
    pub async fn logs(
        &self,
        id: RunId,
        offset: u64,
        follow: bool,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, ServiceError> {
        let row = self.row(id).await?;
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
        let now = now_ms();
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
                    now,
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

    async fn view(&self, row: RunRow) -> Result<wire::Run, ServiceError> {
        let history = self.store.run_events(row.id).await?;
        let queued = match row.status {
            RunStatus::Queued => {
                let running = self.store.running_workers().await?;
                self.queue_spot(&row, &running).await?
            }
            _ => None,
        };
        let mut run = with_queue_spot(view_without_history(row), queued);
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

/// Runs that share this key reuse each other's layer cache: same context location, same
/// Dockerfile, same target repository and platforms. An uploaded context counts as one place,
/// since its digest changes with every edit.
fn cache_key(req: &CreateRun, platforms: &PlatformSet) -> String {
    use sha2::Digest as _;
    let context = match &req.context {
        ContextSource::Upload { .. } => "upload".to_string(),
        ContextSource::Git { url, subdir, .. } => {
            format!("git {url} {}", subdir.as_deref().unwrap_or(""))
        }
        ContextSource::Tarball { url } => format!("tarball {url}"),
    };
    let repository = req
        .images
        .first()
        .map_or("", |image| match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => image.as_str(),
        });
    let key = format!("{context}\n{}\n{repository}\n{platforms}", req.dockerfile);
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
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
        RunStatus::Error => format!("Run ID: {id} ended with an error after {secs}s{reason}"),
        RunStatus::Queued | RunStatus::Running => format!("Run ID: {id} is {}", run.status),
    }
}

pub(super) fn to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn with_queue_spot(mut run: wire::Run, queued: Option<(u32, String)>) -> wire::Run {
    if let Some((position, wait)) = queued {
        run.queue_position = Some(position);
        run.waiting_for = Some(wait);
    }
    run
}

fn view_without_history(row: RunRow) -> wire::Run {
    let context_digest = match &row.spec.context {
        ContextSource::Upload { digest } => Some(digest.clone()),
        _ => None,
    };
    wire::Run {
        id: row.id,
        status: row.status,
        trigger: row.trigger,
        platform: row.platform,
        created_at: to_time(row.created_at),
        started_at: row.started_at.map(to_time),
        finished_at: row.finished_at.map(to_time),
        images: row.requested_images,
        rendered_images: row.spec.images.iter().map(ToString::to_string).collect(),
        push: row.spec.push,
        output_images: row.output_images,
        error_message: row.error_message,
        timeout_secs: row.timeout_secs,
        worker: row.worker_name,
        context: row.spec.context.describe(),
        context_digest,
        git_commit: row.git_commit,
        git_branch: row.git_branch,
        dockerfile: row.spec.dockerfile,
        target: row.spec.target,
        no_cache: row.spec.no_cache,
        status_history: Vec::new(),
        queue_position: None,
        waiting_for: None,
    }
}
