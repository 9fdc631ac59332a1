//! Submitting a run: validating the request, rendering its image names from templates and
//! queueing it.

use std::str::FromStr as _;

use kiln_worker::fetch_policy::{self, Fetcher};
use kiln_worker::protocol::{
    redact_url, BuildSpec, ContextSource, ImageRef, Platform, PlatformSet, RunId,
};

use super::origin::RunOrigin;
use super::runs::RunService;
use super::workers::Wait;
use super::{to_time, ServiceError};
use crate::access::{Action, Grant, Principal, RepoPattern};
use crate::store::{NewRun, RunRow, StoredJob};
use crate::submission::{render_images, RunOptions};
use crate::template::RunVars;
use crate::wire::{self, CreateRun, SubmitLimits};

impl RunService {
    /// Validates and queues a build for `who`, who must be allowed to push every image it
    /// names in Kiln's own registry. Nothing is stored when any part of it is rejected.
    /// Whether `who` may queue runs at all: the API asks before it reads a request body.
    pub fn may_submit(&self, who: &Principal) -> Result<(), ServiceError> {
        Ok(who.require_any(Action::Push)?)
    }

    pub async fn create(&self, req: CreateRun, who: &Principal) -> Result<wire::Run, ServiceError> {
        self.submit(req, who, &RunOrigin::manual()).await
    }

    /// `create`, for a run with that origin (a task, a trigger).
    pub async fn submit(
        &self,
        req: CreateRun,
        who: &Principal,
        origin: &RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        self.may_submit(who)?;
        self.check_request(&req)?;
        self.check_context_access(&req.context, who).await?;
        let now = self.now_ms();
        let platform = req.platform.clone().unwrap_or_default();
        let is_git = matches!(req.context, ContextSource::Git { .. });
        let (_, wait, position) = self.where_new_run_stands(&platform).await?;
        let created = self
            .store
            .create_run(
                now,
                |id| {
                    let mut vars = self.run_vars(id, now, platform.first());
                    vars.task_name = origin.task_name.clone();
                    if is_git {
                        // The commit is known once a worker fetches it; check the names now with
                        // stand-ins so mistakes are a 400, and render them for real then.
                        vars.commit = Some("0".repeat(40));
                        vars.branch = Some("main".into());
                    }
                    let images = self.render_images(&req.images, &vars)?;
                    // A repository name that depends on the commit or branch is only known
                    // once a worker fetched it: the run may then push wherever `who` may.
                    let templated = is_git && {
                        vars.commit = Some("1".repeat(40));
                        vars.branch = Some("other".into());
                        repositories(&self.render_images(&req.images, &vars)?)
                            != repositories(&images)
                    };
                    let registry_grants =
                        self.registry_grants(&images, templated, req.push, who)?;
                    Ok::<_, ServiceError>(NewRun {
                        trigger: origin.trigger.as_str().into(),
                        platform: platform.clone(),
                        requested_images: req.images.clone(),
                        timeout_secs: req
                            .timeout_secs
                            .unwrap_or(self.settings.default_timeout_secs),
                        git_token: req.git_access_token.clone(),
                        cache_key: cache_key(&req, &platform),
                        submitted_by: who.subject().map(|s| s.describe()),
                        submitted_token_id: who.token_id().map(str::to_string),
                        registry_grants,
                        queue_timeout_secs: req
                            .queue_timeout_secs
                            .unwrap_or(self.settings.queue_timeout.as_secs()),
                        trigger_detail: origin.detail_json(),
                        job: StoredJob::Build(BuildSpec {
                            context: req.context.clone(),
                            dockerfile: req.dockerfile.clone(),
                            build_args: req.build_args.clone(),
                            target: req.target.clone(),
                            platforms: platform.clone(),
                            no_cache: req.no_cache,
                            push: req.push && !images.is_empty(),
                            images: if is_git { Vec::new() } else { images },
                        }),
                        task_id: origin.task_id,
                    })
                },
                |run| self.note_wait(run, &wait, position),
            )
            .await??;
        tracing::info!(run.id = %created.id, "run queued");
        self.wakeups.queued(&created.platform);
        self.view_placed(created, position).await
    }

    /// Where a new run for `platform` will stand: the running runs' workers, why it would
    /// wait, and its queue position (`None`: it starts at once). Read before the write
    /// transaction, so submissions hold the database only for their own rows.
    pub(super) async fn where_new_run_stands(
        &self,
        platform: &PlatformSet,
    ) -> Result<(Vec<(String, PlatformSet)>, Wait, Option<u32>), ServiceError> {
        let running = self.store.running_workers().await?;
        let wait = self.workers.wait_reason(platform, &running);
        let position = match wait.starts_now() {
            true => None,
            false => Some(self.position_of_new(platform).await?),
        };
        Ok((running, wait, position))
    }

    /// Tells the run's log why it waits (`position` is `None` when it starts at once):
    /// `kiln build` shows this right after "Waiting for an agent...". Called before any
    /// worker can lease the run.
    pub(super) fn note_wait(
        &self,
        run: &RunRow,
        wait: &Wait,
        position: Option<u32>,
    ) -> std::io::Result<()> {
        let Some(position) = position else {
            return Ok(());
        };
        let line = format!(
            "Waiting in the queue: position {position} for {} ({wait})",
            run.platform
        );
        self.logs
            .append_line(run.id, &line)
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    /// Queues the run `build` makes for `platform` at `now`, telling its log why it waits for what it
    /// needs of a worker (its kind and step types, not only its platforms), and wakes the
    /// workers that could take it. `what` names the run in the server's log.
    pub(super) async fn queue_job(
        &self,
        now: i64,
        platform: &PlatformSet,
        what: &str,
        build: impl FnOnce(RunId) -> Result<NewRun, ServiceError>,
    ) -> Result<wire::Run, ServiceError> {
        let (running, _, position) = self.where_new_run_stands(platform).await?;
        let created = self
            .store
            .create_run(now, build, |run| {
                let wait =
                    self.workers
                        .wait_reason_for(&run.platform, &run.job.requirement(), &running);
                self.note_wait(run, &wait, position)
            })
            .await??;
        tracing::info!(run.id = %created.id, "{what} queued");
        self.wakeups.queued(&created.platform);
        self.view_placed(created, position).await
    }

    /// Refuses a context no worker could fetch: an unknown upload, or a URL the fetch policy
    /// forbids. `git_token`: the request carries a git access token.
    pub(super) fn check_context(
        &self,
        context: &ContextSource,
        git_token: bool,
    ) -> Result<(), ServiceError> {
        let invalid = |m: String| Err(ServiceError::Invalid(m));
        match context {
            ContextSource::Upload { digest } if !self.contexts.exists(digest) => {
                return invalid(format!(
                    "unknown build context {digest}: upload it with POST /api/contexts first"
                ))
            }
            ContextSource::Upload { .. } => {}
            ContextSource::Git { url, subdir, .. } => {
                // The workers' fetch policy, early: file:// would read a worker's own disk.
                if let Err(refused) = fetch_policy::check_url(url, Fetcher::Git) {
                    return invalid(format!("invalid git context: {refused}"));
                }
                if !kiln_worker::git::looks_like_git(url) {
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
                if let Err(refused) = fetch_policy::check_url(url, Fetcher::Http) {
                    return invalid(format!("invalid tarball context: {refused}"));
                }
            }
        }
        if git_token && !matches!(context, ContextSource::Git { .. }) {
            return invalid("a git access token only goes with a git context".into());
        }
        Ok(())
    }

    pub(super) fn check_request(&self, req: &CreateRun) -> Result<(), ServiceError> {
        let invalid = |m: String| Err(ServiceError::Invalid(m));
        self.check_context(&req.context, req.git_access_token.is_some())?;
        let df = &req.dockerfile;
        if df.is_empty() || df.starts_with('/') || df.split('/').any(|c| c == "..") {
            return invalid(format!(
                "invalid dockerfile path '{df}': it must be a relative path inside the context"
            ));
        }
        crate::submission::check(
            &RunOptions {
                images: &req.images,
                is_git: matches!(req.context, ContextSource::Git { .. }),
                platform: &req.platform.clone().unwrap_or_default(),
                build_args: &req.build_args,
                target: req.target.as_deref(),
                timeout_secs: req.timeout_secs,
                queue_timeout_secs: req.queue_timeout_secs,
            },
            &self.submit_limits(),
        )
        .map_err(ServiceError::Invalid)
    }

    /// The rules for run requests that depend on this server's configuration, for whoever
    /// may queue runs: `kiln build` checks a request with them before it uploads anything.
    pub fn limits(&self, who: &Principal) -> Result<SubmitLimits, ServiceError> {
        self.may_submit(who)?;
        Ok(self.submit_limits())
    }

    fn submit_limits(&self) -> SubmitLimits {
        SubmitLimits {
            min_timeout_secs: *self.settings.timeout_range.start(),
            max_timeout_secs: *self.settings.timeout_range.end(),
            default_registry: self.settings.default_registry.clone(),
        }
    }

    /// The `<<.Run.*>>` variables of a run, without the git ones.
    pub(super) fn run_vars(&self, id: RunId, created_at: i64, platform: &Platform) -> RunVars {
        RunVars {
            id: id.to_string(),
            registry: Some(self.settings.default_registry.clone()),
            date: to_time(created_at),
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            commit: None,
            branch: None,
            task_name: None,
            shared_volume: None,
        }
    }

    /// What the run's build may do in Kiln's own registry: push and pull the repositories it
    /// names there, and pull whatever `who` may pull, so a Dockerfile can start `FROM` one of
    /// them. With `templated` repository names (git variables), push wherever `who` may.
    ///
    /// `who` must be allowed to push every repository the run pushes to, in any registry: a
    /// token's repository patterns apply to the server's stored credentials for other
    /// registries too.
    pub(super) fn registry_grants(
        &self,
        images: &[ImageRef],
        templated: bool,
        push: bool,
        who: &Principal,
    ) -> Result<Vec<Grant>, ServiceError> {
        let mut grants = Vec::new();
        for image in images.iter().filter(|_| push) {
            let repo = image.repository();
            who.authorize(repo, Action::Push)?;
            if image.registry() == Some(self.settings.own_registry.as_str()) && !templated {
                let pattern = RepoPattern::from_str(repo).map_err(ServiceError::Invalid)?;
                grants.push(Grant::new(pattern, &[Action::Pull, Action::Push]));
            }
        }
        let Some(subject) = who.subject() else {
            return Ok(grants);
        };
        for g in &subject.grants {
            let push_too = templated && push && g.actions.contains(&Action::Push);
            let actions: &[Action] = if push_too {
                &[Action::Pull, Action::Push]
            } else {
                &[Action::Pull]
            };
            if g.actions.contains(&Action::Pull) {
                grants.push(Grant::new(g.pattern.clone(), actions));
            }
        }
        Ok(grants)
    }

    /// Renders each image name and puts it in its registry.
    pub(super) fn render_images(
        &self,
        templates: &[String],
        vars: &RunVars,
    ) -> Result<Vec<ImageRef>, ServiceError> {
        render_images(templates, vars, &self.settings.default_registry)
            .map_err(ServiceError::Invalid)
    }
}

fn repositories(images: &[ImageRef]) -> std::collections::BTreeSet<&str> {
    images.iter().map(ImageRef::repository).collect()
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
