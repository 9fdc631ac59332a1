//! The background collector: every `--gc-interval`, the registry's garbage collection and
//! run retention, each logged with what it freed. A failed pass is logged and the next one
//! tries again.

use std::sync::Arc;
use std::time::Duration;

use super::registry::RegistryService;
use super::retention::Retention;

pub async fn collect_forever(
    registry: Arc<RegistryService>,
    retention: Arc<Retention>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match registry.collect_scheduled().await {
            Ok(r) => tracing::info!(
                blobs_deleted = r.blobs_deleted,
                bytes_freed = r.bytes_freed,
                uploads_removed = r.uploads_removed,
                "registry garbage collected"
            ),
            Err(e) => tracing::error!(error = %e, "registry garbage collection failed"),
        }
        match retention.collect().await {
            Ok(r) if r == Default::default() => {}
            Ok(r) => tracing::info!(
                runs_deleted = r.runs_deleted,
                logs_deleted = r.logs_deleted,
                contexts_deleted = r.contexts_deleted,
                bytes_freed = r.context_bytes_freed,
                "runs past retention deleted"
            ),
            Err(e) => tracing::error!(error = %e, "run retention failed"),
        }
    }
}
