//! A purge that deleted manifests in Kiln's registry asks for a garbage collection pass
//! after it, so the blobs only those manifests used go without waiting for `--gc-interval`.

use kiln_worker::protocol::StepState;

use super::queue::Queue;
use crate::store::RunRow;

impl Queue {
    /// Starts a collection in the background when `steps` (a finished run's final states)
    /// say one of its purges of Kiln's registry deleted manifests. Blobs stay for the grace
    /// period after their last use, as in every pass.
    pub(super) fn collect_after_purge(&self, run: &RunRow, steps: &[StepState]) {
        let Some(registry) = &self.gc else {
            return;
        };
        let deleted = manifests_purged_here(run, steps);
        if deleted == 0 {
            return;
        }
        let registry = registry.clone();
        let id = run.id;
        tokio::spawn(async move {
            match registry.collect_scheduled().await {
                Ok(r) => tracing::info!(
                    run.id = %id,
                    manifests_deleted = deleted,
                    blobs_deleted = r.blobs_deleted,
                    bytes_freed = r.bytes_freed,
                    "registry garbage collected after a purge"
                ),
                Err(e) => {
                    tracing::error!(run.id = %id, error = %e, "registry garbage collection after a purge failed")
                }
            }
        });
    }
}

/// The manifests the run's purges of Kiln's own registry deleted, by its steps' reports.
fn manifests_purged_here(run: &RunRow, steps: &[StepState]) -> u64 {
    let purges = run.job.purges();
    steps
        .iter()
        .filter(|s| purges.iter().any(|(id, p)| *id == s.id && p.kiln))
        .filter_map(|s| s.purged)
        .map(|p| p.deleted_manifests)
        .sum()
}
