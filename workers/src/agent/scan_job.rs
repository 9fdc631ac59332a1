//! How the agent runs a `Scan` job (`kiln scan`): the scan itself, no engine involved,
//! reported as the run's one step, `scan`.

use std::sync::Mutex;
use std::time::Instant;

use super::Summary;
use crate::logship::LogSink;
use crate::protocol::{Lease, Outcome, OutputImage, ScanJob, StepState, StepStatus, StepType};
use crate::scan_run::ScanServer;
use crate::steps::scan::scan;

/// The id of a scan run's one step (the server plans it under this id too).
pub const SCAN_STEP: &str = "scan";

/// Runs the scan; its step's final state goes to `step` however it ended.
pub(super) async fn run<S: ScanServer>(
    lease: &Lease,
    job: &ScanJob,
    server: &S,
    log: &LogSink,
    step: &Mutex<Option<StepState>>,
) -> Result<(Vec<OutputImage>, Summary), (Outcome, String)> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().timestamp_millis();
    // Cancel and timeout drop this future (see `Agent::execute`).
    let end = scan(job, &lease.credentials, server, &|line| log.line(line)).await;
    *step.lock().unwrap_or_else(|e| e.into_inner()) = Some(StepState {
        id: SCAN_STEP.into(),
        step_type: StepType::Scan,
        status: match end.message {
            None => StepStatus::Succeeded,
            Some(_) => StepStatus::Failed,
        },
        started_at: Some(started_at),
        finished_at: Some(chrono::Utc::now().timestamp_millis()),
        exit_code: Some(i64::from(end.exit_code)),
        images: Vec::new(),
        base_images: Vec::new(),
        error: end.message.clone(),
        purged: None,
    });
    if let Some(message) = end.message {
        return Err((Outcome::Failed, message));
    }
    let summary = Summary {
        steps: 1,
        cached: 0,
        build: started.elapsed(),
        push: None,
        base_images: Vec::new(),
        purged: None,
    };
    Ok((Vec::new(), summary))
}
