//! The order steps run in: a step starts once every step in its `when` is done (succeeded,
//! or failed with `ignoreErrors`); steps whose turn comes together run at the same time.
//! Fail-fast: the first step that fails for real stops the steps still running (Canceled),
//! skips the ones not started (Skipped) and fails the run.

use std::collections::HashMap;

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::board::now_ms;
use super::step::{run_step, StepEnd};
use super::{Board, StepRunner};
use crate::logship::LogSink;
use crate::protocol::{Outcome, StepStatus, StepsJob};

/// Whether the steps run one after the other in file order, so output needs no prefix.
fn is_chain(job: &StepsJob) -> bool {
    job.steps.iter().enumerate().all(|(i, s)| match i {
        0 => s.when.is_empty(),
        _ => s.when.len() == 1 && s.when[0] == job.steps[i - 1].id,
    })
}

/// Runs every step of `job` in DAG order; `Err` carries the run's outcome and message.
pub async fn execute<R: StepRunner>(
    job: &StepsJob,
    runner: &R,
    board: &Board,
    log: &LogSink,
) -> Result<(), (Outcome, String)> {
    let prefixed = !is_chain(job);
    let index_of: HashMap<&str, usize> = job
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let n = job.steps.len();
    let (mut started, mut finished, mut done) = (vec![false; n], vec![false; n], vec![false; n]);
    let mut running = FuturesUnordered::new();
    let failure = loop {
        for (i, step) in job.steps.iter().enumerate() {
            let ready = step
                .when
                .iter()
                .all(|w| index_of.get(w.as_str()).is_some_and(|&j| done[j]));
            if started[i] || !ready {
                continue;
            }
            started[i] = true;
            let output = if prefixed {
                log.prefixed(&format!("[{}] ", step.id))
            } else {
                log.clone()
            };
            running.push(async move { (i, run_step(runner, board, i, step, log, output).await) });
        }
        let Some((i, end)) = running.next().await else {
            break None;
        };
        finished[i] = true;
        match end {
            StepEnd::Succeeded | StepEnd::Failed { ignored: true, .. } => done[i] = true,
            StepEnd::Failed {
                message,
                infrastructure,
                ..
            } => {
                let outcome = if infrastructure {
                    Outcome::Error
                } else {
                    Outcome::Failed
                };
                break Some((outcome, message));
            }
        }
    };
    // Dropping the attempts in flight stops waiting for them; `stop` ends their containers.
    drop(running);
    for (i, step) in job.steps.iter().enumerate() {
        if started[i] && !finished[i] {
            runner.stop(step).await;
            let was_running = board.status(i) == StepStatus::Running;
            board.set(i, |s| {
                s.status = if was_running {
                    StepStatus::Canceled
                } else {
                    StepStatus::Skipped
                };
                s.finished_at = was_running.then(now_ms);
            });
            log.line(format!("Step ID: {} marked as canceled", step.id));
        } else if !started[i] {
            board.set(i, |s| s.status = StepStatus::Skipped);
            log.line(format!("Step ID: {} marked as skipped", step.id));
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    match job.steps.iter().zip(&started).find(|(_, s)| !**s) {
        // The server checks `when`; a worker still refuses to report success for steps it
        // never ran.
        Some((step, _)) => Err((
            Outcome::Failed,
            format!("step {} waits for a step that does not exist", step.id),
        )),
        None => Ok(()),
    }
}
