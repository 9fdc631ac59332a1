//! How the agent runs a `Purge` job (`kiln purge`): the purge itself, no engine involved,
//! reported as the run's one step, `purge`, with what it deleted.

use std::sync::Mutex;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Summary;
use crate::logship::LogSink;
use crate::protocol::{
    Lease, Outcome, OutputImage, PurgeCounts, PurgeJob, StepState, StepStatus, StepType,
};
use crate::steps::purge::{counts, failure, purge};

/// The id of a purge run's one step (the server plans it under this id too).
pub const PURGE_STEP: &str = "purge";

/// Runs the purge; its step's final state goes to `step` however it ended.
pub(super) async fn run(
    lease: &Lease,
    job: &PurgeJob,
    log: &LogSink,
    step: &Mutex<Option<StepState>>,
) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().timestamp_millis();
    // Cancel and timeout drop this future (see `Agent::execute`): the purge stops at its
    // next await, between deletions.
    let end = purge(
        job,
        &lease.credentials,
        &|line| log.line(line),
        &CancellationToken::new(),
    )
    .await;
    let ended = OwnStepEnd {
        id: PURGE_STEP,
        step_type: StepType::Purge,
        started,
        started_at,
        exit_code: end.exit_code,
        failure: failure(&end),
        purged: Some(counts(&end)),
    };
    ended.report(step)
}

/// How the one step of a job the worker runs itself (a purge, a scan) ended.
pub(super) struct OwnStepEnd {
    pub id: &'static str,
    pub step_type: StepType,
    pub started: Instant,
    /// Unix milliseconds.
    pub started_at: i64,
    pub exit_code: i32,
    pub failure: Option<String>,
    pub purged: Option<PurgeCounts>,
}

impl OwnStepEnd {
    /// Leaves the step's final state in `step`; the run's result: failed with the step's
    /// error, or its summary.
    pub fn report(
        self,
        step: &Mutex<Option<StepState>>,
    ) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
        *step.lock().unwrap_or_else(|e| e.into_inner()) = Some(StepState {
            id: self.id.into(),
            step_type: self.step_type,
            status: match self.failure {
                None => StepStatus::Succeeded,
                Some(_) => StepStatus::Failed,
            },
            started_at: Some(self.started_at),
            finished_at: Some(chrono::Utc::now().timestamp_millis()),
            exit_code: Some(i64::from(self.exit_code)),
            images: Vec::new(),
            base_images: Vec::new(),
            error: self.failure.clone(),
            purged: self.purged,
        });
        if let Some(message) = self.failure {
            return Err((Outcome::Failed, message));
        }
        let summary = Summary {
            steps: 1,
            cached: 0,
            build: self.started.elapsed(),
            push: None,
            base_images: Vec::new(),
            purged: self.purged,
        };
        Ok((Vec::new(), summary))
    }
}
