//! The background collector: every `--gc-interval`, the registry's garbage collection and
//! run retention, each logged with what it freed. A failed pass is logged and the next one
//! tries again. Passes are timed on the server's clock, so a test that moves the clock by
//! the interval gets a pass without waiting.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::registry::RegistryService;
use super::retention::Retention;
use crate::clock::SharedClock;

/// Collects every `every` on `clock`, the first time `every` from now. The first deadline is
/// taken before the future is first polled, so a clock moved right after the spawn counts.
pub fn collect_forever(
    registry: Arc<RegistryService>,
    retention: Arc<Retention>,
    every: Duration,
    clock: SharedClock,
) -> impl Future<Output = ()> {
    let mut next = clock.now() + every;
    async move {
        loop {
            clock.sleep_until(next).await;
            collect_once(&registry, &retention).await;
            // Counted from the end of the pass, so a long pass is not followed by another at once.
            next = clock.now() + every;
        }
    }
}

/// One pass: the registry's garbage collection, then run retention.
async fn collect_once(registry: &RegistryService, retention: &Retention) {
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
