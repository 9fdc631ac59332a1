//! Submitting a multi-step run: a task file or a `--cmd`, compiled by `taskfile` into a
//! rendered steps job, authorised by what it pushes, and queued.

use kiln_worker::protocol::{
    human_size, ContextSource, DeferredFile, Digest, PlatformSet, Secret, StepsJob,
};

use super::origin::RunOrigin;
use super::purge::{delete_grants, may_purge, Rights};
use super::runs::RunService;
use super::ServiceError;
use crate::access::Principal;
use crate::store::{NewRun, StoredJob};
use crate::taskfile::{self, CompileInput, Values};
use crate::wire::{self, CreateStepsRun};

/// The name a task file goes by in errors when the request names none.
const DEFAULT_FILE_NAME: &str = "acb.yaml";

/// The largest task file read from an uploaded folder: task files are a few KiB.
const MAX_TASK_FILE: u64 = 1024 * 1024;

impl RunService {
    /// Compiles and queues a steps run for `who`, who must be allowed to push every image
    /// its push steps push (a run that pushes nothing needs only the right to queue runs).
    /// Invalid input is a 400 with every error, and nothing is stored.
    pub async fn create_steps(
        &self,
        req: CreateStepsRun,
        who: &Principal,
    ) -> Result<wire::Run, ServiceError> {
        self.submit_steps(req, who, &RunOrigin::manual()).await
    }

    /// `create_steps`, for a run with that origin (a task, a trigger).
    pub async fn submit_steps(
        &self,
        req: CreateStepsRun,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        self.queue_steps(req, None, who, origin).await
    }

    /// Queues a run of the task file at `path` in the request's git context, compiled with
    /// the request's values once a worker has fetched it (see `deferred_file.rs`). The run
    /// may push wherever `who` may, as a build whose image names depend on its commit.
    pub async fn submit_deferred(
        &self,
        req: CreateStepsRun,
        path: &str,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        self.queue_steps(req, Some(path), who, origin).await
    }

    async fn queue_steps(
        &self,
        req: CreateStepsRun,
        deferred: Option<&str>,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        self.may_submit(who)?;
        self.check_steps_request(&req, deferred)?;
        if let Some(context) = &req.context {
            self.check_context_access(context, who).await?;
        }
        // Read before the write transaction, for the check of purge steps' filters.
        let text = req
            .task_file
            .as_deref()
            .or(req.cmd.as_deref())
            .unwrap_or("");
        let repositories = match may_purge(text) {
            true => self.store.repository_names().await?,
            false => Vec::new(),
        };
        let now = self.now_ms();
        let platform = req.platform.clone().unwrap_or_default();
        self.queue_job(now, &platform, "steps run", |id| {
            let mut run = self.run_vars(id, now, platform.first());
            run.task_name = origin.task_name.clone();
            let input = CompileInput {
                run,
                values: Values {
                    plain: req.values.clone(),
                    secret: req.secret_values.clone(),
                },
                platforms: platform.clone(),
                allow_privileged: self.settings.allow_privileged_steps,
                default_registry: Some(self.settings.default_registry.clone()),
            };
            let mut job = match deferred {
                Some(path) => deferred_job(path, &req, &input),
                None => compile(&req, &input)?,
            };
            job.context = req.context.clone();
            mask_secret_values(&mut job, &req);
            self.settle_purge_steps(&mut job, &repositories, &Rights::Caller(who))?;
            self.settle_scan_steps(&mut job, &Rights::Caller(who))?;
            let job = StoredJob::Steps(job);
            let mut registry_grants =
                self.registry_grants(&job.pushed_images(), deferred.is_some(), true, who)?;
            // A file compiled later may purge wherever `who` may delete.
            if deferred.is_some() || job.purges().iter().any(|(_, p)| p.kiln) {
                registry_grants.extend(delete_grants(who));
            }
            Ok::<_, ServiceError>(NewRun {
                trigger: origin.trigger.as_str().into(),
                platform: platform.clone(),
                requested_images: Vec::new(),
                cache_key: cache_key(&req, &platform),
                job,
                timeout_secs: req
                    .timeout_secs
                    .unwrap_or(self.settings.default_timeout_secs),
                git_token: req.git_access_token.clone(),
                submitted_by: who.subject().map(|s| s.describe()),
                submitted_token_id: who.token_id().map(str::to_string),
                registry_grants,
                queue_timeout_secs: req
                    .queue_timeout_secs
                    .unwrap_or(self.settings.queue_timeout.as_secs()),
                trigger_detail: origin.detail_json(),
                task_id: origin.task_id,
            })
        })
        .await
    }

    fn check_steps_request(
        &self,
        req: &CreateStepsRun,
        deferred: Option<&str>,
    ) -> Result<(), ServiceError> {
        let invalid = |m: &str| Err(ServiceError::Invalid(m.to_string()));
        match (&req.task_file, &req.cmd, deferred) {
            (Some(_), Some(_), _) => return invalid("give a task file or a cmd, not both"),
            (None, None, None) => return invalid("give a task file or a cmd"),
            (None, None, Some(_)) if !matches!(req.context, Some(ContextSource::Git { .. })) => {
                return invalid("a task file in the context needs a git context")
            }
            _ => {}
        }
        match &req.context {
            Some(context) => self.check_context(context, req.git_access_token.is_some())?,
            None if req.git_access_token.is_some() => {
                return invalid("a git access token only goes with a git context")
            }
            None => {}
        }
        self.check_timeouts(req.timeout_secs)
    }
}

fn compile(req: &CreateStepsRun, input: &CompileInput) -> Result<StepsJob, ServiceError> {
    let compiled = match (&req.task_file, &req.cmd) {
        (Some(text), _) => {
            let name = req.file_name.as_deref().unwrap_or(DEFAULT_FILE_NAME);
            taskfile::compile(name, text, input)
        }
        (None, Some(cmd)) => taskfile::compile_cmd(cmd, input),
        (None, None) => return Err(ServiceError::Invalid("give a task file or a cmd".into())),
    };
    compiled.map_err(|errors| ServiceError::Invalid(errors.to_string()))
}

impl RunService {
    /// The task file at `path` in an uploaded context, as text.
    pub(super) async fn uploaded_task_file(
        &self,
        digest: &Digest,
        path: &str,
    ) -> Result<String, ServiceError> {
        let bytes = self
            .contexts
            .read_file(digest, path, MAX_TASK_FILE)
            .await?
            .ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "task file {path} is not in the uploaded folder (or is over {})",
                    human_size(MAX_TASK_FILE)
                ))
            })?;
        String::from_utf8(bytes)
            .map_err(|_| ServiceError::Invalid(format!("task file {path} is not UTF-8 text")))
    }
}

/// A job whose steps come from the task file at `path` in its context, once a worker has
/// fetched it: until then it has no steps, and keeps the values to compile the file with.
fn deferred_job(path: &str, req: &CreateStepsRun, input: &CompileInput) -> StepsJob {
    StepsJob {
        context: None,
        platforms: input.platforms.clone(),
        steps: Vec::new(),
        networks: Vec::new(),
        volumes: Vec::new(),
        masked: Vec::new(),
        deferred: Some(DeferredFile {
            path: path.to_string(),
            values: req.values.clone(),
            secret_values: req.secret_values.clone(),
        }),
    }
}

/// Every secret value the request carries is masked in the run's log and sealed at rest,
/// whatever the compiler listed.
fn mask_secret_values(job: &mut StepsJob, req: &CreateStepsRun) {
    let secrets = req
        .secret_values
        .values()
        .chain(&req.git_access_token)
        .filter(|s| !s.expose().is_empty());
    for secret in secrets {
        if !job.masked.contains(secret) {
            job.masked.push(secret.clone());
        }
    }
    job.masked
        .sort_by_key(|s: &Secret| std::cmp::Reverse(s.expose().len()));
}

/// Steps runs from the same place with the same task share a layer cache.
fn cache_key(req: &CreateStepsRun, platforms: &PlatformSet) -> String {
    use sha2::Digest as _;
    let context = match &req.context {
        Some(ContextSource::Upload { .. }) => "upload".to_string(),
        Some(other) => other.describe(),
        None => "none".to_string(),
    };
    let task = req
        .file_name
        .as_deref()
        .or(req.cmd.as_deref())
        .unwrap_or_default();
    let key = format!("steps\n{context}\n{task}\n{platforms}");
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}
