//! Runs as users see them: submission (validation and templating), listing, cancel, logs,
//! and the one place a run ends, which also writes the run's closing log line.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::Stream;
use kiln_worker::protocol::{BuildSpec, ContextSource, ImageRef, OutputImage, RunId, RunStatus};
use tokio::sync::Notify;

use super::contexts::ContextStore;
use super::logs::LogHub;
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
    contexts: Arc<ContextStore>,
    pub(super) settings: RunSettings,
    /// Woken whenever a run is queued, so leasing workers need not poll.
    pub(super) queued: Arc<Notify>,
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
            settings,
            queued: Arc::new(Notify::new()),
        }
    }

    /// Validates and queues a build. Nothing is stored when any part of it is rejected.
    pub async fn create(&self, req: CreateRun) -> Result<wire::Run, ServiceError> {
        self.check_request(&req)?;
        let now = now_ms();
        let platform = req.platform.clone().unwrap_or_default();
        let created = self
            .store
            .create_run(now, |id| {
                let images = self.render_images(&req, id, now)?;
                Ok::<_, ServiceError>(NewRun {
                    trigger: "Manual".into(),
                    platform: platform.clone(),
                    requested_images: req.images.clone(),
                    timeout_secs: req
                        .timeout_secs
                        .unwrap_or(self.settings.default_timeout_secs),
                    spec: BuildSpec {
                        context: req.context.clone(),
                        dockerfile: req.dockerfile.clone(),
                        build_args: req.build_args.clone(),
                        target: req.target.clone(),
                        platform: platform.clone(),
                        no_cache: req.no_cache,
                        push: req.push && !images.is_empty(),
                        images,
                    },
                })
            })
            .await??;
        tracing::info!(run.id = %created.id, "run queued");
        self.queued.notify_waiters();
        self.view(created).await
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

    /// Renders `<<.Run.*>>` variables and puts each name in its registry.
    fn render_images(
        &self,
        req: &CreateRun,
        id: RunId,
        now: i64,
    ) -> Result<Vec<ImageRef>, ServiceError> {
        let platform = req.platform.clone().unwrap_or_default();
        let vars = RunVars {
            id: id.to_string(),
            registry: self.settings.default_registry.clone(),
            date: to_time(now),
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            commit: None,
            branch: None,
        };
        let mut images: Vec<ImageRef> = Vec::new();
        for template in &req.images {
            let name = render(template, &vars).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            let image = ImageRef::parse(&name).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            if image.digest().is_some() {
                return Err(ServiceError::Invalid(format!(
                    "invalid image '{name}': a pushed image needs a tag, not a digest"
                )));
            }
            let image = match (image.registry(), &self.settings.default_registry) {
                (Some(_), _) => image,
                (None, Some(registry)) => image.with_default_registry(registry),
                (None, None) if req.push => {
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
        let rows = self.store.list_runs(q.status, top).await?;
        Ok(wire::RunList {
            runs: rows.into_iter().map(view_without_history).collect(),
        })
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
        let mut run = view_without_history(row);
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
        RunStatus::Error => format!("Run ID: {id} ended with an error after {secs}s{reason}"),
        RunStatus::Queued | RunStatus::Running => format!("Run ID: {id} is {}", run.status),
    }
}

pub(super) fn to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn view_without_history(row: RunRow) -> wire::Run {
    let ContextSource::Upload { digest } = &row.spec.context;
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
        context_digest: Some(digest.clone()),
        dockerfile: row.spec.dockerfile,
        target: row.spec.target,
        no_cache: row.spec.no_cache,
        status_history: Vec::new(),
    }
}
