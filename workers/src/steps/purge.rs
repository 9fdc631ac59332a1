//! Purges, as a `purge` step (`cmd: acr purge …`) or as a whole purge run: the job's words
//! parsed into `PurgeArgs` and handed to `purge_run`, no container involved.

use tokio_util::sync::CancellationToken;

use super::EngineSteps;
use crate::engine::Engine;
use crate::executor::{AttemptEnd, StepError, StepOutput};
use crate::protocol::{PurgeCounts, PurgeJob, RegistryCredential};
use crate::purge::PurgeArgs;
use crate::purge_run::{run_purge, PurgeEnd, PurgeRequest};

/// Runs `job` with the run's `credentials`, each output line to `log`, until it ends or
/// `cancel` fires. Arguments the worker cannot read end it with exit code 1 (the server read
/// them before queueing, so only a mismatched server and worker get there).
pub async fn purge(
    job: &PurgeJob,
    credentials: &[RegistryCredential],
    log: &(dyn Fn(String) + Sync),
    cancel: &CancellationToken,
) -> PurgeEnd {
    let args = match PurgeArgs::from_words(&job.words) {
        Ok(args) => args,
        Err(e) => {
            let message = format!("invalid purge arguments: {e}");
            log(message.clone());
            return PurgeEnd {
                exit_code: 1,
                deleted_tags: 0,
                deleted_manifests: 0,
                message: Some(message),
            };
        }
    };
    let req = PurgeRequest {
        args,
        registry: job.registry.clone(),
        kiln: job.kiln,
    };
    run_purge(&req, credentials, log, cancel).await
}

/// What a purge deleted, as its step reports it.
pub fn counts(end: &PurgeEnd) -> PurgeCounts {
    PurgeCounts {
        deleted_tags: end.deleted_tags as u64,
        deleted_manifests: end.deleted_manifests as u64,
    }
}

/// Why a purge that ended with `end` failed (`None`: it succeeded).
pub fn failure(end: &PurgeEnd) -> Option<String> {
    (end.exit_code != 0).then(|| {
        end.message
            .clone()
            .unwrap_or_else(|| format!("purge exited with code {}", end.exit_code))
    })
}

impl<E: Engine> EngineSteps<'_, E> {
    pub(super) async fn purge(
        &self,
        job: &PurgeJob,
        output: &StepOutput,
    ) -> Result<AttemptEnd, StepError> {
        // A canceled run drops this future: the purge stops at its next await.
        let end = purge(
            job,
            &self.credentials,
            &|line| output.line(&line),
            &CancellationToken::new(),
        )
        .await;
        Ok(AttemptEnd {
            exit_code: Some(i64::from(end.exit_code)),
            purged: Some(counts(&end)),
            failure: failure(&end),
            ..AttemptEnd::default()
        })
    }
}
