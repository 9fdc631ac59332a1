//! Running a saved task, and the runs it queued.

use kiln_worker::protocol::Secret;

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
            TaskKind::Cmd => return self.run_cmd(&task, req, who).await,
            TaskKind::Steps => return Err(steps_run(&task)),
        }
        let values = values_of(&task.spec, &extra)?;
        let spec = &task.spec;
        let images = spec
            .images
            .iter()
            .map(|t| render_values(t, &values, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ServiceError::Invalid(format!("task '{}': {m}", task.name)))?;
        let (context, git_token) = match req.context {
            // An uploaded folder replaces the repository, so its token is not needed.
            Some(context) => (context, None),
            None => {
                let context = context_source(&spec.context)?.ok_or_else(|| {
                    ServiceError::Invalid(format!("task '{}' has no context to build", task.name))
                })?;
                (context, spec.secrets.git_token.clone().map(Secret::new))
            }
        };
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
        let run = self.runs.submit(create, who, Some(task.id)).await?;
        tracing::info!(task = %task.name, run.id = %run.id, "task run queued");
        Ok(run)
    }

    /// A `--cmd` task: one cmd step, compiled like `kiln run --cmd` with the task's values
    /// (its values file, then its `--set`, then the run's) and queued as a steps run.
    async fn run_cmd(
        &self,
        task: &TaskRow,
        req: RunTask,
        who: &Principal,
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
        let (context, git_access_token) = match req.context {
            Some(context) => (Some(context), None),
            None => (
                context_source(&spec.context)?,
                spec.secrets.git_token.clone().map(Secret::new),
            ),
        };
        let create = CreateStepsRun {
            task_file: None,
            file_name: None,
            cmd: spec.cmd.clone(),
            values: values.plain,
            secret_values: values.secret,
            context,
            platform: Some(req.platform.unwrap_or_else(|| spec.platform.clone())),
            timeout_secs: Some(spec.timeout_secs),
            queue_timeout_secs: None,
            git_access_token,
        };
        let run = self.runs.submit_steps(create, who, Some(task.id)).await?;
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

/// A multi-step task's file lives in its context (a repository or tarball), which only a
/// worker fetches, while the server compiles task files before anything is queued: until the
/// file is fetched for the server, such a task cannot run (`kiln run -f` can run the file).
fn steps_run(task: &TaskRow) -> ServiceError {
    ServiceError::Invalid(format!(
        "task '{}': multi-step tasks whose file is in their context cannot run yet; run the \
         file with 'kiln run -f FILE CONTEXT'",
        task.name
    ))
}
