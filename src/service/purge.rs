//! Purges as runs (`kiln purge`, and `acr purge …` steps of task files, `--cmd` and tasks):
//! the arguments read before anything is queued, the registry settled (`--registry`, else
//! Kiln's own), and the submitter's right to delete checked on every repository the filters
//! reach, so a purge is refused whole rather than left half done by a 403.

use kiln_worker::protocol::{PurgeJob, StepAction, StepsJob};
use kiln_worker::purge::PurgeArgs;

use super::origin::RunOrigin;
use super::runs::RunService;
use super::ServiceError;
use crate::access::{AccessError, Action, Grant, Principal, Subject};
use crate::store::{NewRun, StoredJob};
use crate::wire::{self, CreatePurgeRun};

/// What stands for the run's registry in purge arguments (`$Registry` as a task file's alias
/// gives it, and the template it stands for).
const REGISTRY_PLACEHOLDERS: &[&str] = &["$Registry", "{{.Run.Registry}}"];

/// A caller's rights, as a purge (delete) or a scan (pull) checks them: a user's token when
/// the run is queued, or a run's grants when a task file in its context is compiled.
pub(super) enum Rights<'a> {
    Caller(&'a Principal),
    Run(&'a Subject),
}

impl Rights<'_> {
    pub(super) fn may(&self, repository: &str, action: Action) -> bool {
        match self {
            Rights::Caller(who) => who.authorize(repository, action).is_ok(),
            Rights::Run(run) => run.permits(repository, action),
        }
    }

    /// Whether it may delete in every repository there is: a purge of another registry is
    /// done with the server's credentials there, whose repositories Kiln cannot list.
    fn may_delete_everywhere(&self) -> bool {
        let grants = match self {
            Rights::Caller(who) => who.subject().map(|s| s.grants.as_slice()),
            Rights::Run(run) => Some(run.grants.as_slice()),
        };
        grants.unwrap_or_default().iter().any(|g| {
            g.pattern == crate::access::RepoPattern::any() && g.actions.contains(&Action::Delete)
        })
    }
}

impl RunService {
    /// Queues a purge run for `who`. Arguments that do not parse are a 400 with the parse
    /// error; a filter reaching a repository `who` may see but not delete is a 403 naming
    /// them. Nothing is stored in either case.
    pub async fn create_purge(
        &self,
        req: CreatePurgeRun,
        who: &Principal,
    ) -> Result<wire::Run, ServiceError> {
        // Only a user of the registry learns anything from the body.
        who.require_any(Action::Pull)?;
        self.check_timeouts(req.timeout_secs)?;
        let words = render_registry(&req.words, &self.settings.default_registry);
        let args = PurgeArgs::from_words(&words)
            .map_err(|e| ServiceError::Invalid(format!("invalid purge arguments: {e}")))?;
        let job = self.settle_purge(words, &args);
        let repositories = self.store.repository_names().await?;
        // The repositories first: a refusal names them.
        check_purge(&job, &args, &repositories, &Rights::Caller(who))?;
        who.require_any(Action::Delete)?;
        let mut registry_grants = self.registry_grants(&[], false, false, who)?;
        registry_grants.extend(delete_grants(who));
        let timeouts = (req.timeout_secs, req.queue_timeout_secs);
        let job = StoredJob::Purge(job);
        self.queue_own_job(
            job,
            timeouts,
            registry_grants,
            Some(who),
            RunOrigin::manual(),
        )
        .await
    }

    /// Queues a job the worker runs itself (a purge or a scan), queued by `who` (`None`: the
    /// server, for a trigger) with the run credentials `registry_grants`; `timeouts` are the
    /// run's and the queue's.
    pub(super) async fn queue_own_job(
        &self,
        job: StoredJob,
        timeouts: (Option<u64>, Option<u64>),
        registry_grants: Vec<Grant>,
        who: Option<&Principal>,
        origin: RunOrigin,
    ) -> Result<wire::Run, ServiceError> {
        let now = self.now_ms();
        let what = format!("{} run", job.kind().as_str());
        let platform = kiln_worker::protocol::PlatformSet::default();
        self.queue_job(now, &platform, &what, |_| {
            Ok::<_, ServiceError>(NewRun {
                trigger: origin.trigger.as_str().into(),
                platform: platform.clone(),
                requested_images: Vec::new(),
                cache_key: String::new(),
                job,
                timeout_secs: timeouts.0.unwrap_or(self.settings.default_timeout_secs),
                git_token: None,
                submitted_by: who.and_then(|w| w.subject()).map(|s| s.describe()),
                submitted_token_id: who.and_then(|w| w.token_id()).map(str::to_string),
                registry_grants,
                queue_timeout_secs: timeouts.1.unwrap_or(self.settings.queue_timeout.as_secs()),
                trigger_detail: origin.detail_json(),
                task_id: None,
            })
        })
        .await
    }

    /// A timeout outside the server's range is a 400.
    pub(super) fn check_timeouts(&self, timeout_secs: Option<u64>) -> Result<(), ServiceError> {
        let range = &self.settings.timeout_range;
        match timeout_secs.filter(|t| !range.contains(t)) {
            Some(t) => Err(ServiceError::Invalid(format!(
                "invalid timeout {t}s: it must be between {}s and {}s",
                range.start(),
                range.end()
            ))),
            None => Ok(()),
        }
    }

    /// The purge of `words`: in `--registry`, else in Kiln's own registry.
    fn settle_purge(&self, words: Vec<String>, args: &PurgeArgs) -> PurgeJob {
        let own = &self.settings.own_registry;
        let registry = args.registry.clone().unwrap_or_else(|| own.clone());
        PurgeJob {
            kiln: registry == *own,
            words,
            registry,
        }
    }

    /// Settles the registry of every purge step of `job` (compiled from a task file or a
    /// `--cmd`, whose templates already rendered `$Registry`) and checks `who` may delete what
    /// each reaches, `repositories` being Kiln's. Errors name the step.
    pub(super) fn settle_purge_steps(
        &self,
        job: &mut StepsJob,
        repositories: &[String],
        who: &Rights<'_>,
    ) -> Result<(), ServiceError> {
        for step in &mut job.steps {
            let StepAction::Purge(purge) = &mut step.action else {
                continue;
            };
            let args = PurgeArgs::from_words(&purge.words).map_err(|e| {
                ServiceError::Invalid(format!("step {}: invalid purge arguments: {e}", step.id))
            })?;
            *purge = self.settle_purge(std::mem::take(&mut purge.words), &args);
            check_purge(purge, &args, repositories, who).map_err(|e| match e {
                ServiceError::Access(AccessError::Denied(m)) => {
                    ServiceError::Access(AccessError::Denied(format!("step {}: {m}", step.id)))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

/// Whether a steps request may hold a purge, so the repositories are read only then.
pub(super) fn may_purge(text: &str) -> bool {
    text.contains("purge")
}

/// Replaces the run registry's placeholders in each word.
fn render_registry(words: &[String], registry: &str) -> Vec<String> {
    words
        .iter()
        .map(|word| {
            REGISTRY_PLACEHOLDERS
                .iter()
                .fold(word.clone(), |w, p| w.replace(p, registry))
        })
        .collect()
}

/// Refuses the purge unless `who` may delete in every repository of Kiln's registry
/// (`repositories`) that it may see and a filter reaches (`--untagged-only` without filters
/// reaches all); in another registry, unless it may delete everywhere.
fn check_purge(
    job: &PurgeJob,
    args: &PurgeArgs,
    repositories: &[String],
    who: &Rights<'_>,
) -> Result<(), ServiceError> {
    if !job.kiln {
        if who.may_delete_everywhere() {
            return Ok(());
        }
        return Err(AccessError::Denied(format!(
            "purging {} uses the server's credentials there, for every repository: it needs \
             the delete role on all repositories ('*')",
            job.registry
        ))
        .into());
    }
    let mut refused = Vec::new();
    for name in repositories {
        if !who.may(name, Action::Pull) || !reaches(args, name)? {
            continue;
        }
        if !who.may(name, Action::Delete) {
            refused.push(name.as_str());
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(AccessError::Denied(format!(
        "the purge's filters reach repositories you may not delete in: {}; nothing was deleted",
        refused.join(", ")
    ))
    .into())
}

/// Whether any of the purge's filters reaches `repository` (all do without filters).
fn reaches(args: &PurgeArgs, repository: &str) -> Result<bool, ServiceError> {
    if args.filters.is_empty() {
        return Ok(true);
    }
    for filter in &args.filters {
        if filter.reaches(repository).map_err(ServiceError::Invalid)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a purge run's credentials may delete in Kiln's registry: wherever `who` may (the
/// plan is made when the run starts, so repositories pushed meanwhile are covered too).
pub(super) fn delete_grants(who: &Principal) -> Vec<Grant> {
    let Some(subject) = who.subject() else {
        return Vec::new();
    };
    subject
        .grants
        .iter()
        .filter(|g| g.actions.contains(&Action::Delete))
        .map(|g| Grant::new(g.pattern.clone(), &[Action::Pull, Action::Delete]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_registry_placeholders_render() {
        let words = vec![
            "--registry".to_string(),
            "$Registry".to_string(),
            "--filter={{.Run.Registry}}x:.*".to_string(),
            "app:^v1$".to_string(),
        ];
        assert_eq!(
            render_registry(&words, "127.0.0.1:8080"),
            [
                "--registry",
                "127.0.0.1:8080",
                "--filter=127.0.0.1:8080x:.*",
                "app:^v1$"
            ]
        );
    }
}
