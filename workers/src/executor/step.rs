//! One step from start to end: its delay, attempts with their timeout, retries and repeats,
//! and the exit-code rules that decide whether an attempt succeeded.

use std::time::{Duration, Instant};

use super::board::now_ms;
use super::{AttemptEnd, Board, StepError, StepOutput, StepRunner};
use crate::logship::LogSink;
use crate::protocol::{PurgeCounts, Step, StepState, StepStatus};

/// How a step ended, for the DAG.
#[derive(Debug, Clone)]
pub(super) enum StepEnd {
    Succeeded,
    /// Failed (or timed out); `ignored` when `ignoreErrors` turned it into a success for its
    /// dependants.
    Failed {
        message: String,
        infrastructure: bool,
        ignored: bool,
    },
}

/// Whether an exit code counts as success: `exitedWith` (default: only 0) minus
/// `exitedWithout`. With only `exitedWithout` given, every other code succeeds.
pub(super) fn exit_ok(step: &Step, code: i64) -> bool {
    if step.exited_without.contains(&code) {
        return false;
    }
    if step.exited_with.is_empty() {
        return code == 0 || !step.exited_without.is_empty();
    }
    step.exited_with.contains(&code)
}

/// One attempt's verdict.
enum Verdict {
    Ok(AttemptEnd),
    Failed {
        message: String,
        exit_code: Option<i64>,
        infrastructure: bool,
        purged: Option<PurgeCounts>,
    },
    TimedOut,
}

async fn attempt<R: StepRunner>(runner: &R, step: &Step, output: &StepOutput) -> Verdict {
    let limit = Duration::from_secs(step.timeout_secs.max(1));
    match tokio::time::timeout(limit, runner.attempt(step, output)).await {
        Err(_) => {
            runner.stop(step).await;
            Verdict::TimedOut
        }
        Ok(Err(StepError::Failed(message))) => Verdict::Failed {
            message,
            exit_code: None,
            infrastructure: false,
            purged: None,
        },
        Ok(Err(StepError::Infrastructure(message))) => Verdict::Failed {
            message,
            exit_code: None,
            infrastructure: true,
            purged: None,
        },
        Ok(Ok(end)) => match end.exit_code {
            Some(code) if !exit_ok(step, code) => Verdict::Failed {
                message: end
                    .failure
                    .unwrap_or_else(|| format!("step {} exited with code {code}", step.id)),
                exit_code: Some(code),
                infrastructure: false,
                purged: end.purged,
            },
            _ => Verdict::Ok(end),
        },
    }
}

/// Runs `step` (the `index`th of the job) to its end, reporting its state on `board`.
/// `log` is the run's log; `output` the step's (prefixed when steps run side by side).
pub(super) async fn run_step<R: StepRunner>(
    runner: &R,
    board: &Board,
    index: usize,
    step: &Step,
    log: &LogSink,
    output: LogSink,
) -> StepEnd {
    if step.start_delay_secs > 0 {
        tokio::time::sleep(Duration::from_secs(step.start_delay_secs)).await;
    }
    let started = Instant::now();
    board.set(index, |s| {
        s.status = StepStatus::Running;
        s.started_at = Some(now_ms());
    });
    log.line(format!(
        "Executing step ID: {}. Timeout(sec): {}, Working directory: '{}', Network: '{}'",
        step.id,
        step.timeout_secs,
        step.working_directory,
        runner.network(step)
    ));
    let output = StepOutput::new(output);
    let mut failure: Option<(StepStatus, String, bool)> = None;
    let mut last_exit = None;
    for _ in 0..=step.repeat {
        let mut retries_left = step.retries;
        loop {
            output.clear();
            let verdict = attempt(runner, step, &output).await;
            let (status, message, exit_code, infrastructure) = match verdict {
                Verdict::Ok(end) => {
                    last_exit = end.exit_code;
                    board.set(index, |s| {
                        s.exit_code = end.exit_code;
                        s.images.extend(end.images);
                        s.base_images.extend(end.base_images);
                        add_purged(s, end.purged);
                    });
                    break;
                }
                Verdict::TimedOut => (
                    StepStatus::Timeout,
                    format!(
                        "step {} exceeded its timeout of {}s",
                        step.id, step.timeout_secs
                    ),
                    None,
                    false,
                ),
                Verdict::Failed {
                    message,
                    exit_code,
                    infrastructure,
                    purged,
                } => {
                    board.set(index, |s| add_purged(s, purged));
                    (StepStatus::Failed, message, exit_code, infrastructure)
                }
            };
            last_exit = exit_code;
            board.set(index, |s| s.exit_code = exit_code);
            let retryable = status == StepStatus::Failed
                && !infrastructure
                && (step.retry_on_errors.is_empty() || output.contains_any(&step.retry_on_errors));
            if retryable && retries_left > 0 {
                retries_left -= 1;
                log.line(format!(
                    "Container failed during run: {}, waiting {} seconds before retrying...",
                    step.id, step.retry_delay_secs
                ));
                tokio::time::sleep(Duration::from_secs(step.retry_delay_secs)).await;
                continue;
            }
            if step.retries > 0 {
                log.line(format!(
                    "Container failed during run: {}. No retries remaining.",
                    step.id
                ));
            }
            log.line(format!("Step ID: {} failed: {message}", step.id));
            // `repeat` goes on whatever happened; the first failure is the step's.
            failure.get_or_insert((status, message, infrastructure));
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    match failure {
        None => {
            board.set(index, |s| {
                s.status = StepStatus::Succeeded;
                s.finished_at = Some(now_ms());
                s.exit_code = last_exit;
            });
            log.line(format!(
                "Step ID: {} marked as successful (elapsed time in seconds: {elapsed:.3})",
                step.id
            ));
            StepEnd::Succeeded
        }
        Some((status, message, infrastructure)) => {
            board.set(index, |s| {
                s.status = status;
                s.finished_at = Some(now_ms());
                s.error = Some(message.clone());
            });
            let verdict = if step.ignore_errors {
                "failed, errors ignored"
            } else {
                "failed"
            };
            log.line(format!(
                "Step ID: {} marked as {verdict} (elapsed time in seconds: {elapsed:.3})",
                step.id
            ));
            StepEnd::Failed {
                message,
                infrastructure,
                ignored: step.ignore_errors,
            }
        }
    }
}

/// Adds what one attempt of a purge step deleted to the step's counts (retries and repeats
/// add up: each deletes what the one before left).
fn add_purged(state: &mut StepState, purged: Option<PurgeCounts>) {
    let Some(more) = purged else {
        return;
    };
    let total = state.purged.get_or_insert_with(PurgeCounts::default);
    total.deleted_tags += more.deleted_tags;
    total.deleted_manifests += more.deleted_manifests;
}
