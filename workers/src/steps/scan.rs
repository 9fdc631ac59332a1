//! Scans, as a `scan` step (`cmd: kiln scan …`) or as a whole scan run: the job's words
//! parsed into `ScanArgs` and handed to `scan_run`, no container involved.

use super::EngineSteps;
use crate::engine::Engine;
use crate::executor::{AttemptEnd, StepError, StepOutput};
use crate::protocol::{RegistryCredential, ScanJob};
use crate::scan_run::{run_scan, ScanEnd, ScanRequest, ScanServer};

/// Runs `job` with the run's `credentials`, each output line to `log`. Arguments the worker
/// cannot read end it with exit code 1.
pub async fn scan<S: ScanServer>(
    job: &ScanJob,
    credentials: &[RegistryCredential],
    server: &S,
    log: &(dyn Fn(String) + Sync),
) -> ScanEnd {
    match ScanRequest::of(job) {
        Ok(req) => run_scan(&req, credentials, server, log).await,
        Err(message) => {
            log(message.clone());
            ScanEnd {
                exit_code: 1,
                message: Some(message),
            }
        }
    }
}

impl<E: Engine> EngineSteps<'_, E> {
    pub(super) async fn scan(
        &self,
        job: &ScanJob,
        output: &StepOutput,
    ) -> Result<AttemptEnd, StepError> {
        let Some(server) = &self.scans else {
            return Err(StepError::Infrastructure(
                "this worker was started without a server to match scans".into(),
            ));
        };
        // A canceled run drops this future: the scan stops at its next await.
        let end = scan(job, &self.credentials, server, &|line| output.line(&line)).await;
        Ok(AttemptEnd {
            exit_code: Some(i64::from(end.exit_code)),
            failure: end.message,
            ..AttemptEnd::default()
        })
    }
}
