//! The step executor: runs a `Steps` job's DAG. It knows nothing of engines: a `StepRunner`
//! runs one attempt of one step (`crate::steps` on a real or fake engine), and this module
//! owns the order, parallelism, delays, timeouts, retries, repeats, exit-code rules,
//! fail-fast and the step states reported along the way.
//!
//! A run that is canceled or times out drops the executor's future: every attempt in flight
//! is dropped with it, and the caller reads the `Board` for the final states and removes the
//! run's containers by label.

mod board;
mod dag;
mod step;
mod table;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Mutex;

pub use board::Board;
pub use dag::execute;
pub use table::closing_table;

use crate::logship::LogSink;
use crate::protocol::{BaseImage, OutputImage, PurgeCounts, Step};

/// How much of a step's output is kept to match `retryOnErrors` against.
const OUTPUT_KEPT: usize = 64 * 1024;

/// What one attempt of a step produced.
#[derive(Debug, Clone, Default)]
pub struct AttemptEnd {
    /// A container's exit code; `None` for steps without one (build, push, detached cmd).
    pub exit_code: Option<i64>,
    pub images: Vec<OutputImage>,
    pub base_images: Vec<BaseImage>,
    /// A purge step's counts: reported whether or not it succeeded.
    pub purged: Option<PurgeCounts>,
    /// Why an attempt with a failing exit code failed, when the runner knows better than
    /// the code (a purge's `Failed to complete purge: …`).
    pub failure: Option<String>,
}

/// Why an attempt could not finish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// The step's own fault: its image does not exist, its build failed.
    #[error("{0}")]
    Failed(String),
    /// The worker's or engine's: the run ends as Error.
    #[error("{0}")]
    Infrastructure(String),
}

/// Runs single attempts of steps on some engine.
pub trait StepRunner: Send + Sync {
    /// Runs one attempt of `step` to its end, writing its output through `output`.
    /// Dropping the future abandons the attempt; `stop` then cleans up after it.
    fn attempt(
        &self,
        step: &Step,
        output: &StepOutput,
    ) -> impl Future<Output = Result<AttemptEnd, StepError>> + Send;

    /// Kills and removes what an abandoned attempt of `step` left running.
    fn stop(&self, step: &Step) -> impl Future<Output = ()> + Send;

    /// The network `step` runs on, for the log.
    fn network(&self, step: &Step) -> String;
}

/// Where a step's output goes: the run's log (prefixed by the step id when steps run side
/// by side), and a bounded tail that `retryOnErrors` is matched against.
pub struct StepOutput {
    log: LogSink,
    tail: Mutex<String>,
}

impl StepOutput {
    pub fn new(log: LogSink) -> StepOutput {
        StepOutput {
            log,
            tail: Mutex::new(String::new()),
        }
    }

    /// One line of the step's own output.
    pub fn line(&self, line: &str) {
        self.log.line(line);
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.push_str(line);
        tail.push('\n');
        if tail.len() > OUTPUT_KEPT {
            let mut cut = tail.len() - OUTPUT_KEPT;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }

    /// The log, for the runner's own messages (pulls, pushes).
    pub fn log(&self) -> &LogSink {
        &self.log
    }

    fn contains_any(&self, needles: &[String]) -> bool {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        needles.iter().any(|n| tail.contains(n.as_str()))
    }

    fn clear(&self) {
        self.tail.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
