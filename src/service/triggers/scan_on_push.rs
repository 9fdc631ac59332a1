//! Scan-on-push: a manifest pushed by tag to Kiln's registry queues a scan run of its digest
//! (an index: one run, every platform), when the repository says so, else when the server
//! does (`kiln serve --scan-on-push`). Pushes arrive through the events outbox, so a push
//! never waits for its scan and a restart picks up where the consumer was. Manifests pushed
//! by digest only (an index's children, referrers, attestations) are not scanned by
//! themselves: the index that names them is.

use std::sync::Arc;

use super::super::runs::RunService;
use super::super::ServiceError;
use crate::store::{Event, EventRow, Store};

/// The consumer name of the trigger's cursor in `event_cursors`.
pub const CONSUMER: &str = "scan-on-push";

pub struct ScanOnPush {
    store: Store,
    runs: Arc<RunService>,
    /// `--scan-on-push`: for repositories without their own setting.
    by_default: bool,
}

impl ScanOnPush {
    pub fn new(store: Store, runs: Arc<RunService>, by_default: bool) -> ScanOnPush {
        ScanOnPush {
            store,
            runs,
            by_default,
        }
    }

    /// Reads the events outbox forever, queueing a scan for each push that asks for one.
    pub async fn consume_forever(self: Arc<Self>) {
        let store = self.store.clone();
        super::super::events::consume(store, CONSUMER, |row| {
            let this = self.clone();
            async move { this.on_event(row).await }
        })
        .await;
    }

    async fn on_event(&self, row: EventRow) -> Result<(), ServiceError> {
        let Event::Push {
            repository,
            tag: Some(tag),
            digest,
            ..
        } = row.event
        else {
            return Ok(());
        };
        let wanted = self
            .store
            .scan_on_push(&repository)
            .await?
            .unwrap_or(self.by_default);
        if !wanted {
            return Ok(());
        }
        match self.runs.queue_push_scan(&repository, &tag, &digest).await {
            Ok(run) => {
                tracing::info!(run.id = %run.id, %repository, %digest, "queued a scan of a push");
                Ok(())
            }
            // A refusal (a queue limit, say) is not worth retrying forever: say so and go on.
            Err(ServiceError::Invalid(reason)) => {
                tracing::warn!(%repository, %digest, %reason, "a scan of a push was refused");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
