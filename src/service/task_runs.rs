//! Running a saved task, and the runs it queued.

use kiln_worker::protocol::{ContextSource, Secret};

use super::origin::{RunOrigin, TriggerKind};
use super::runs::DEFAULT_TOP;
use super::task_values::render_values;
use super::tasks::{build_args, context_source, kind_of, values_of, TaskService};
use super::ServiceError;
use crate::access::{Action, Principal};
use crate::store::TaskRow;
use crate::taskfile::Values;
use crate::wire::tasks::{RunTask, TaskKind, TaskRunsQuery, TaskStatus};
use crate::wire::{self, CreateRun, CreateStepsRun, RunList};

/// How far back `list-runs` looks for runs a token that is not an owner may see.
const MAX_SCAN: u32 = 1000;

impl TaskService {
    /// Queues a run of the task with `req`'s overrides, triggered `Manual`. `who` must be
    /// allowed to push what it pushes, as for `kiln build`.
    pub async fn run(
        &self,
        name: &str,
        req: RunTask,
        who: &Principal,
    ) -> Result<wire::Run, ServiceError> {
        self.runs.may_submit(who)?;
        let task = self.row(name).await?;
        self.queue_run(&task, req, who, &RunOrigin::task(task.id, &task.name))
            .await
    }

    /// Queues a run a trigger started: as the token that created the task (so a trigger
    /// never does more than its creator may, and stops when that token is revoked), on the
    /// pinned commit when `firing` gives one. A disabled task, a revoked creator or a request
    /// the task's rules refuse is an error, which the trigger records as its verdict.
    pub async fn run_triggered(
        &self,
        task_id: i64,
        firing: Firing,
    ) -> Result<wire::Run, ServiceError> {
        let task =
            self.store.get_task_by_id(task_id).await?.ok_or_else(|| {
                ServiceError::NotFound(format!("task {task_id} no longer exists"))
            })?;
        let who = self.creator(&task).await?;
        let mut detail = firing.detail;
        if let (Some(branch), Some(map)) = (&firing.branch, detail.as_object_mut()) {
            map.entry("branch").or_insert_with(|| branch.clone().into());
        }
        let origin = RunOrigin {
            task_id: Some(task.id),
            task_name: Some(task.name.clone()),
            trigger: firing.trigger,
            detail: Some(detail),
        };
        let mut req = RunTask {
            no_push: !firing.push,
            ..RunTask::default()
        };
        if let Some(commit) = firing.commit {
            req.context = Some(pinned(&task, commit)?);
        }
        self.queue_run(&task, req, &who, &origin).await
    }

    /// The principal a task's triggered runs act as: its creator's token while it lives.
    async fn creator(&self, task: &TaskRow) -> Result<Principal, ServiceError> {
        let Some(token) = task.created_token_id.as_deref() else {
            return Err(ServiceError::Conflict(format!(
                "task '{}' has no creating token to run as: recreate it with a token",
                task.name
            )));
        };
        self.auth.principal_of_token(token).await.map_err(|_| {
            ServiceError::Conflict(format!(
                "the token that created task '{}' is revoked or expired: its triggers cannot run",
                task.name
            ))
        })
    }

    async fn queue_run(
        &self,
        task: &TaskRow,
        req: RunTask,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        self.runs.may_submit(who)?;
        if task.status == TaskStatus::Disabled.as_str() {
            return Err(ServiceError::Conflict(format!(
                "task '{}' is disabled: enable it with 'kiln task update --name {} --status Enabled'",
                task.name, task.name
            )));
        }
        let mut extra = req.values.clone();
        extra.extend(
            req.secret_values
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string())),
        );
        match kind_of(&task.spec) {
            TaskKind::Build => {}
            TaskKind::Cmd | TaskKind::Steps => {
                return self.run_steps_task(task, req, who, origin).await
            }
        }
        let values = values_of(&task.spec, &extra)?;
        let spec = &task.spec;
        let images = spec
            .images
            .iter()
            .map(|t| render_values(t, &values, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ServiceError::Invalid(format!("task '{}': {m}", task.name)))?;
        let (context, git_token) = context_of(task, req.context)?;
        let context = context.ok_or_else(|| {
            ServiceError::Invalid(format!("task '{}' has no context to build", task.name))
        })?;
        let create = CreateRun {
            context,
            dockerfile: spec.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            images,
            build_args: build_args(spec),
            target: spec.target.clone(),
            platform: Some(req.platform.unwrap_or_else(|| spec.platform.clone())),
            push: spec.push && !req.no_push,
            no_cache: spec.no_cache,
            timeout_secs: Some(spec.timeout_secs),
            git_access_token: git_token,
            queue_timeout_secs: None,
        };
        let run = self.runs.submit(create, who, origin).await?;
        tracing::info!(task = %task.name, run.id = %run.id, "task run queued");
        Ok(run)
    }

    /// A `--cmd` task (one cmd step, compiled like `kiln run --cmd`) or a task file in the
    /// context (compiled once a worker fetched it), with the task's values (its values file,
    /// then its `--set`, then the run's), queued as a steps run.
    async fn run_steps_task(
        &self,
        task: &TaskRow,
        req: RunTask,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        let spec = &task.spec;
        let mut set = spec.values.clone();
        set.extend(req.values.clone());
        let mut secret = spec.secrets.secret_values.clone();
        secret.extend(
            req.secret_values
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string())),
        );
        // A value set in the run wins over the task's, whichever kind each is.
        set.retain(|k, _| !req.secret_values.contains_key(k));
        secret.retain(|k, _| !req.values.contains_key(k));
        let file = spec.values_file.as_deref().map(|text| ("values", text));
        let values = Values::from_parts(file, &set, &secret)
            .map_err(|e| ServiceError::Invalid(format!("task '{}': {e}", task.name)))?;
        let (context, git_access_token) = context_of(task, req.context)?;
        let kind = kind_of(spec);
        // A file in a git context is read by the worker that fetches it; one in an uploaded
        // folder (`task run -c`) is read here, and the run compiled now.
        let task_file = match (kind, &context, &spec.file) {
            (TaskKind::Steps, Some(ContextSource::Upload { digest }), Some(path)) => {
                Some(self.runs.uploaded_task_file(digest, path).await?)
            }
            (TaskKind::Steps, Some(ContextSource::Git { .. }), _) => None,
            (TaskKind::Steps, _, _) => return Err(steps_run(task)),
            _ => None,
        };
        let compiled_now = task_file.is_some();
        let create = CreateStepsRun {
            task_file,
            file_name: spec.file.clone(),
            cmd: spec.cmd.clone(),
            values: values.plain,
            secret_values: values.secret,
            context,
            platform: Some(req.platform.unwrap_or_else(|| spec.platform.clone())),
            timeout_secs: Some(spec.timeout_secs),
            queue_timeout_secs: None,
            git_access_token,
        };
        let run = match (kind, &spec.file) {
            (TaskKind::Steps, Some(path)) if !compiled_now => {
                self.runs.submit_deferred(create, path, who, origin).await?
            }
            _ => self.runs.submit_steps(create, who, origin).await?,
        };
        tracing::info!(task = %task.name, run.id = %run.id, "task run queued");
        Ok(run)
    }

    /// The task's runs that `who` may see, newest first.
    pub async fn task_runs(
        &self,
        name: &str,
        q: TaskRunsQuery,
        who: &Principal,
    ) -> Result<RunList, ServiceError> {
        who.require_any(Action::Pull)?;
        let task = self.row(name).await?;
        let top = q.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_SCAN);
        let scan = if who.is_owner() { top } else { MAX_SCAN };
        let mut runs = Vec::new();
        for id in self.store.task_run_ids(task.id, scan).await? {
            match self.runs.get(id, who).await {
                Ok(run) => runs.push(run),
                // Another token's run that pushes nowhere this one may read.
                Err(ServiceError::Access(_)) => continue,
                Err(e) => return Err(e),
            }
            if runs.len() == top as usize {
                break;
            }
        }
        Ok(RunList { runs })
    }
}

/// A multi-step task's file is read from its git context by the worker that fetches it, or
/// from the folder a run uploads instead; a tarball is fetched only by the worker.
fn steps_run(task: &TaskRow) -> ServiceError {
    ServiceError::Invalid(format!(
        "task '{}': its task file is read from a git context or an uploaded folder, not a \
         tarball; run the file with 'kiln run -f FILE CONTEXT'",
        task.name
    ))
}

/// What a trigger asks of a task run beyond the task itself.
#[derive(Debug, Clone)]
pub struct Firing {
    pub trigger: TriggerKind,
    /// What started it, shown by `run show` (a JSON object: the event, commit, timer...).
    pub detail: serde_json::Value,
    /// The commit to build instead of the head of the context's branch (git contexts only).
    pub commit: Option<String>,
    /// `.Run.Branch` of a run pinned to a commit; added to the detail as `branch`.
    pub branch: Option<String>,
    /// Whether the run pushes what the task pushes (pull-request runs do not, by default).
    pub push: bool,
}

/// The task's git context with its reference replaced by `commit`, subdir kept.
fn pinned(task: &TaskRow, commit: String) -> Result<ContextSource, ServiceError> {
    let no_git = || {
        ServiceError::Invalid(format!(
            "task '{}' has no git context to build commit {commit} from",
            task.name
        ))
    };
    let mut context = context_source(&task.spec.context)?.ok_or_else(no_git)?;
    match context.pin(&commit) {
        true => Ok(context),
        false => Err(no_git()),
    }
}

/// The run's context (the run's own, else the task's) and the git token it needs: an
/// uploaded folder replaces the repository and needs none; a pinned commit of the task's
/// repository needs the task's.
fn context_of(
    task: &TaskRow,
    given: Option<ContextSource>,
) -> Result<(Option<ContextSource>, Option<Secret>), ServiceError> {
    let context = match given {
        Some(context) => Some(context),
        None => context_source(&task.spec.context)?,
    };
    let token = match &context {
        Some(ContextSource::Git { .. }) => task.spec.secrets.git_token.clone().map(Secret::new),
        _ => None,
    };
    Ok((context, token))
}
