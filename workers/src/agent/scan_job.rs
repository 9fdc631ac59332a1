//! How the agent runs a `Scan` job (`kiln scan`): the scan itself, no engine involved,
//! reported as the run's one step, `scan`.

use std::sync::Mutex;
use std::time::Instant;

use super::purge_job::OwnStepEnd;
use super::Summary;
use crate::logship::LogSink;
use crate::protocol::{Lease, Outcome, OutputImage, ScanJob, StepState, StepType};
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
    let ended = OwnStepEnd {
        id: SCAN_STEP,
        step_type: StepType::Scan,
        started,
        started_at,
        exit_code: end.exit_code,
        failure: end.message,
        purged: None,
    };
    ended.report(step)
}
