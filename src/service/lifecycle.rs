//! The queue across stops and starts: draining at shutdown, runs handed back by workers that
//! stop, and runs a stopped server process's embedded workers still held.

use std::sync::atomic::Ordering;

use kiln_worker::protocol::{ReturnRun, RunId, RunStatus};

use super::queue::Queue;
use super::ServiceError;
use crate::store::RunRow;

impl Queue {
    /// Counts `worker_id` as one of this process's embedded workers: its runs are settled by
    /// this process's shutdown, or by the next start.
    pub fn adopt_embedded(&self, worker_id: &str) {
        self.embedded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(worker_id.to_string());
    }

    /// Hands out no more runs. Queued runs stay queued for the next start. Lease requests
    /// are held until `release_lease_requests`.
    pub fn stop_leasing(&self) {
        self.draining.store(true, Ordering::Relaxed);
        // Waiting requests look again, and see the drain.
        self.runs.wakeups.all();
    }

    /// Answers the lease requests held since `stop_leasing`, so the API can stop without
    /// waiting for their long poll to end.
    pub fn release_lease_requests(&self) {
        self.closing.cancel();
    }

    /// A worker hands back a run it has not started building: it is queued again as it was,
    /// first in line by its age, and the log says why.
    pub async fn give_back(&self, id: RunId, returned: ReturnRun) -> Result<(), ServiceError> {
        if !self
            .runs
            .store
            .requeue(id, returned.attempt, self.runs.now_ms())
            .await?
        {
            return Err(super::queue::stale(id, returned.attempt));
        }
        let line = format!("Returned to the queue before building: {}", returned.reason);
        self.runs.logs.append_line(id, &line)?;
        tracing::info!(run.id = %id, reason = %returned.reason, "run returned to the queue");
        let run = self.runs.row(id).await?;
        self.runs.wakeups.queued(&run.platform);
        Ok(())
    }

    /// At start: ends at once the runs the embedded workers of a previous server process
    /// still held, instead of a lease time later as "worker lost". How far such a build got
    /// is unknown (it may have pushed some tags), so it is not run again on its own.
    pub async fn settle_previous_instances(&self) -> Result<usize, ServiceError> {
        let held = self
            .runs
            .store
            .runs_of_other_instances(&self.instance)
            .await?;
        self.end_all(held, |worker| {
            format!(
                "the server restarted while this run was building on its embedded worker \
                 '{worker}'; queue it again to build it"
            )
        })
        .await
    }

    /// At shutdown, once the embedded workers stopped: ends what they still held (a lease
    /// granted as they stopped, a result that could not be reported).
    pub async fn settle_own(&self) -> Result<usize, ServiceError> {
        let held = self.runs.store.runs_of_instance(&self.instance).await?;
        self.end_all(held, |worker| {
            format!(
                "the server shut down while this run was building on its embedded worker \
                 '{worker}'; queue it again to build it"
            )
        })
        .await
    }

    async fn end_all(
        &self,
        runs: Vec<RunRow>,
        message: impl Fn(&str) -> String,
    ) -> Result<usize, ServiceError> {
        let mut ended = 0;
        for run in runs {
            let text = message(run.worker_name.as_deref().unwrap_or("unknown"));
            let done = self
                .runs
                .finish(
                    run.id,
                    Some(run.attempt),
                    RunStatus::Error,
                    Some(&text),
                    &[],
                )
                .await?;
            if done.is_some() {
                tracing::warn!(run.id = %run.id, "{text}");
                ended += 1;
            }
        }
        Ok(ended)
    }
}
