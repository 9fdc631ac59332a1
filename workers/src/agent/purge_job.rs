//! How the agent runs a `Purge` job (`kiln purge`): the purge itself, no engine involved,
//! reported as the run's one step, `purge`, with what it deleted.

use std::sync::Mutex;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Summary;
use crate::logship::LogSink;
use crate::protocol::{Lease, Outcome, OutputImage, PurgeJob, StepState, StepStatus, StepType};
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
    let failed = failure(&end);
    *step.lock().unwrap_or_else(|e| e.into_inner()) = Some(StepState {
        id: PURGE_STEP.into(),
        step_type: StepType::Purge,
        status: match failed {
            None => StepStatus::Succeeded,
            Some(_) => StepStatus::Failed,
        },
        started_at: Some(started_at),
        finished_at: Some(chrono::Utc::now().timestamp_millis()),
        exit_code: Some(i64::from(end.exit_code)),
        images: Vec::new(),
        base_images: Vec::new(),
        error: failed.clone(),
        purged: Some(counts(&end)),
    });
    if let Some(message) = failed {
        return Err((Outcome::Failed, message));
    }
    let summary = Summary {
        steps: 1,
        cached: 0,
        build: started.elapsed(),
        push: None,
        base_images: Vec::new(),
        purged: Some(counts(&end)),
    };
    Ok((Vec::new(), summary))
}
