//! A saved task's file that lives in its git context (`--file ci/acb.yaml`): only a worker
//! fetches the repository, so the run is queued with no steps, the worker sends the file's
//! text with the commit it checked out, and the server compiles it here, with the values
//! the run was queued with and the commit and branch now known. The compiled job replaces
//! the stored one (pinned to that commit, so a retried attempt runs the same file) and goes
//! back to the worker. A file that does not compile fails the run with its errors.

use kiln_worker::protocol::{SourceResolved, StepAction, StepsJob};

use super::purge::Rights;
use super::queue::Queue;
use super::ServiceError;
use crate::access::{Action, Subject};
use crate::store::{RunRow, StoredJob};
use crate::taskfile::{self, CompileInput, Values};
use crate::template::RunVars;

impl Queue {
    /// Compiles the run's deferred task file from `resolved`; `None` when it has none.
    pub(super) async fn compile_deferred(
        &self,
        run: &RunRow,
        resolved: &SourceResolved,
        vars: RunVars,
    ) -> Result<Option<StepsJob>, ServiceError> {
        let StoredJob::Steps(job) = &run.job else {
            return Ok(None);
        };
        let Some(file) = &job.deferred else {
            return Ok(None);
        };
        let text = resolved.task_file.as_deref().ok_or_else(|| {
            ServiceError::Invalid(format!(
                "the worker sent no text for the task file {}: upgrade kiln-worker",
                file.path
            ))
        })?;
        let settings = &self.runs.settings;
        let input = CompileInput {
            run: vars,
            values: Values {
                plain: file.values.clone(),
                secret: file.secret_values.clone(),
            },
            platforms: job.platforms.clone(),
            allow_privileged: settings.allow_privileged_steps,
            default_registry: Some(settings.default_registry.clone()),
        };
        let mut compiled = taskfile::compile(&file.path, text, &input)
            .map_err(|errors| ServiceError::Invalid(errors.to_string()))?;
        compiled.context = job.context.clone();
        if let Some(context) = &mut compiled.context {
            context.pin(&resolved.commit);
        }
        for secret in &job.masked {
            if !compiled.masked.contains(secret) {
                compiled.masked.push(secret.clone());
            }
        }
        compiled
            .masked
            .sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        // The run was queued to push and purge wherever its submitter might; the file says
        // where.
        let may = Subject::run(&run.id.to_string(), run.registry_grants.clone());
        if compiled
            .steps
            .iter()
            .any(|s| matches!(s.action, StepAction::Purge(_)))
        {
            let repositories = self.runs.store.repository_names().await?;
            self.runs
                .settle_purge_steps(&mut compiled, &repositories, &Rights::Run(&may))
                .map_err(|e| ServiceError::Invalid(format!("{}: {e}", file.path)))?;
        }
        self.runs
            .settle_scan_steps(&mut compiled, &Rights::Run(&may))
            .map_err(|e| ServiceError::Invalid(format!("{}: {e}", file.path)))?;
        let compiled = StoredJob::Steps(compiled);
        if let Some(image) = compiled
            .pushed_images()
            .into_iter()
            .find(|i| !may.permits(i.repository(), Action::Push))
        {
            return Err(ServiceError::Invalid(format!(
                "{}: the run may not push {image}",
                file.path
            )));
        }
        let current = self
            .runs
            .store
            .record_compiled_job(run.id, resolved.attempt, &compiled, run.git_token.as_ref())
            .await?;
        if !current {
            return Err(super::queue::stale(run.id, resolved.attempt));
        }
        match compiled {
            StoredJob::Steps(job) => Ok(Some(job)),
            StoredJob::Build(_) | StoredJob::Purge(_) | StoredJob::Scan(_) => Ok(None),
        }
    }
}
