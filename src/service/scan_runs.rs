//! Scans as runs (`kiln scan`, and `kiln scan …` steps of task files, `--cmd` and tasks): the
//! arguments read before anything is queued, the registry settled (`--registry`, else the
//! images' own, else Kiln's), and the submitter's right to pull checked on every repository
//! named, so a scan is refused whole rather than failing half way on a 401.

use std::str::FromStr;

use kiln_worker::protocol::{ScanJob, StepAction, StepsJob};
use kiln_worker::scan_run::ScanArgs;

use super::origin::{RunOrigin, TriggerKind};
use super::purge::Rights;
use super::runs::RunService;
use super::ServiceError;
use crate::access::{AccessError, Action, Grant, Principal, RepoPattern};
use crate::store::StoredJob;
use crate::wire::{self, CreateScanRun};

impl RunService {
    /// Queues a scan run for `who`. Arguments that do not parse, or name images in several
    /// registries, are a 400; an image in a repository `who` may not pull is a 403 naming
    /// it. Nothing is stored in either case. The run's registry credentials pull wherever
    /// `who` may (`--all` lists what they reach).
    pub async fn create_scan(
        &self,
        req: CreateScanRun,
        who: &Principal,
    ) -> Result<wire::Run, ServiceError> {
        // Only a user of the registry learns anything from the body.
        who.require_any(Action::Pull)?;
        self.check_timeouts(req.timeout_secs)?;
        let args = ScanArgs::from_words(&req.words)
            .map_err(|e| ServiceError::Invalid(format!("invalid scan arguments: {e}")))?;
        let job = self.settle_scan(req.words, &args)?;
        check_scan(&args, &Rights::Caller(who))?;
        // `--attach-sbom` pushes into what it scans: push where `who` may (checked above).
        let attach = args.attach_sbom.is_some();
        let mut registry_grants = self.registry_grants(&[], attach, attach, who)?;
        if attach && job.kiln {
            for image in &args.images {
                let pattern =
                    RepoPattern::from_str(image.repository()).map_err(ServiceError::Invalid)?;
                registry_grants.push(Grant::new(pattern, &[Action::Pull, Action::Push]));
            }
        }
        let timeouts = (req.timeout_secs, req.queue_timeout_secs);
        let job = StoredJob::Scan(job);
        self.queue_own_job(
            job,
            timeouts,
            registry_grants,
            Some(who),
            RunOrigin::manual(),
        )
        .await
    }

    /// Queues the scan of `repository@digest` in Kiln's registry, pushed (by tag) just now:
    /// the server's own run, whose credentials pull that repository only. An index is one
    /// run that scans every platform.
    pub async fn queue_push_scan(
        &self,
        repository: &str,
        tag: &str,
        digest: &str,
    ) -> Result<wire::Run, ServiceError> {
        let own = &self.settings.own_registry;
        let job = ScanJob {
            words: vec![format!("{own}/{repository}@{digest}")],
            registry: own.clone(),
            kiln: true,
        };
        let pattern = RepoPattern::from_str(repository).map_err(ServiceError::Invalid)?;
        let grants = vec![Grant::new(pattern, &[Action::Pull])];
        let origin = RunOrigin {
            trigger: TriggerKind::ImagePush,
            detail: Some(serde_json::json!({
                "repository": repository,
                "tag": tag,
                "digest": digest,
            })),
            ..RunOrigin::default()
        };
        self.queue_own_job(StoredJob::Scan(job), (None, None), grants, None, origin)
            .await
    }

    /// The scan of `words`: in `--registry`, else in the registry the images name, else in
    /// Kiln's own. Images in two registries, or `--all` outside Kiln's, are a 400.
    fn settle_scan(&self, words: Vec<String>, args: &ScanArgs) -> Result<ScanJob, ServiceError> {
        let own = &self.settings.own_registry;
        let registry = settle_registry(args, own).map_err(ServiceError::Invalid)?;
        Ok(ScanJob {
            kiln: registry == *own,
            words,
            registry,
        })
    }

    /// Settles the registry of every scan step of `job` and checks `who` may pull what each
    /// names. Errors name the step.
    pub(super) fn settle_scan_steps(
        &self,
        job: &mut StepsJob,
        who: &Rights<'_>,
    ) -> Result<(), ServiceError> {
        for step in &mut job.steps {
            let StepAction::Scan(scan) = &mut step.action else {
                continue;
            };
            let args = ScanArgs::from_words(&scan.words).map_err(|e| {
                ServiceError::Invalid(format!("step {}: invalid scan arguments: {e}", step.id))
            })?;
            *scan = self
                .settle_scan(std::mem::take(&mut scan.words), &args)
                .map_err(|e| match e {
                    ServiceError::Invalid(m) => {
                        ServiceError::Invalid(format!("step {}: {m}", step.id))
                    }
                    other => other,
                })?;
            check_scan(&args, who).map_err(|e| match e {
                ServiceError::Access(AccessError::Denied(m)) => {
                    ServiceError::Access(AccessError::Denied(format!("step {}: {m}", step.id)))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

/// The one registry a scan reads: `--registry`, else the one the images name, else `own`.
fn settle_registry(args: &ScanArgs, own: &str) -> Result<String, String> {
    let named = args.named_registries();
    let unqualified = args.images.iter().any(|i| i.registry().is_none());
    let registry = match (&args.registry, named.as_slice()) {
        (Some(registry), _) => {
            if let Some(other) = named.iter().find(|n| **n != registry.as_str()) {
                return Err(format!(
                    "an image names the registry {other} but --registry is {registry}: scan \
                     each registry in its own run"
                ));
            }
            registry.clone()
        }
        (None, []) => own.to_owned(),
        (None, [one]) if *one == own || !unqualified => (*one).to_owned(),
        (None, [one]) => {
            return Err(format!(
                "the images are in {one} and in Kiln's registry ({own}): scan each registry in \
                 its own run, or name the registry of all of them with --registry"
            ))
        }
        (None, several) => {
            return Err(format!(
                "the images are in several registries ({}): scan each registry in its own run",
                several.join(", ")
            ))
        }
    };
    if args.all && registry != own {
        return Err(format!(
            "--all scans Kiln's own registry ({own}), not {registry}: name the images to scan there"
        ));
    }
    Ok(registry)
}

/// Refuses the scan unless `who` may pull every repository it names, and with
/// `--attach-sbom` push there too (with `--all`, the run's credentials reach only what `who`
/// may pull and push, so there is nothing to refuse).
fn check_scan(args: &ScanArgs, who: &Rights<'_>) -> Result<(), ServiceError> {
    check_role(
        args,
        who,
        Action::Pull,
        "scanning needs the pull role on what it scans",
    )?;
    if args.attach_sbom.is_some() {
        check_role(
            args,
            who,
            Action::Push,
            "--attach-sbom needs the push role on what it scans",
        )?;
    }
    Ok(())
}

fn check_role(
    args: &ScanArgs,
    who: &Rights<'_>,
    action: Action,
    needs: &str,
) -> Result<(), ServiceError> {
    let mut refused: Vec<&str> = Vec::new();
    for image in &args.images {
        let repository = image.repository();
        if !who.may(repository, action) && !refused.contains(&repository) {
            refused.push(repository);
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(AccessError::Denied(format!(
        "{needs}, which you lack on: {}",
        refused.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(line: &str) -> Result<String, String> {
        let args = ScanArgs::from_words(shell_words::split(line).unwrap()).unwrap();
        settle_registry(&args, "127.0.0.1:8080")
    }

    #[test]
    fn the_registry_is_the_flag_the_images_or_kilns() {
        assert_eq!(registry("app:v1").unwrap(), "127.0.0.1:8080");
        assert_eq!(
            registry("127.0.0.1:8080/app:v1 lib:v2").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            registry("127.0.0.1:5000/ci/tool:3").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            registry("--registry 127.0.0.1:5000 ci/tool:3 127.0.0.1:5000/x:1").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(registry("--all").unwrap(), "127.0.0.1:8080");
        for (line, said) in [
            ("127.0.0.1:5000/ci/tool:3 app:v1", "its own run"),
            (
                "127.0.0.1:5000/a:1 localhost:5001/b:1",
                "several registries",
            ),
            (
                "--registry 127.0.0.1:5000 127.0.0.1:8080/a:1",
                "--registry is",
            ),
            ("--registry 127.0.0.1:5000 --all", "--all scans Kiln's own"),
        ] {
            let error = registry(line).unwrap_err();
            assert!(error.contains(said), "{line}: {error}");
        }
    }
}
