//! A worker leases only while its engine answers: one whose engine is down would take runs
//! and fail each at once, starving healthy workers beside it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::ServerClient;
use crate::engine::Engine;
use crate::protocol::LeaseRequest;

/// How long one ping may take before the engine counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest pause between pings of an unreachable engine. The longest stays well
/// under the time after which the server forgets a silent worker, so it keeps showing as
/// unhealthy rather than gone.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(16);

/// Returns once the engine answers (`true`), or when `shutdown` fires first (`false`).
/// While it does not, the worker tells the server it is unhealthy (a lease request with
/// `engine_error` set and no wait, which is never given a run) and pings again with
/// backoff. The worker's log says "engine unreachable" once per outage, and when it is back.
pub async fn wait_for_engine<E: Engine>(
    engine: &E,
    client: &ServerClient,
    req: &mut LeaseRequest,
    shutdown: &CancellationToken,
) -> bool {
    let mut pause = FIRST_PAUSE;
    loop {
        let error = match tokio::time::timeout(PING_TIMEOUT, engine.ping()).await {
            Ok(Ok(())) => {
                if req.worker.engine_error.take().is_some() {
                    tracing::info!(worker = %req.worker.name, "engine reachable again: leasing runs");
                }
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer to a ping within {}s", PING_TIMEOUT.as_secs()),
        };
        if req.worker.engine_error.is_none() {
            tracing::warn!(
                worker = %req.worker.name,
                "engine unreachable: {error}; leasing no runs until it answers"
            );
        }
        req.worker.engine_error = Some(error);
        let report = LeaseRequest {
            worker: req.worker.clone(),
            wait_ms: 0,
        };
        if let Err(e) = client.lease(&report).await {
            tracing::debug!(worker = %req.worker.name, error = %e, "reporting the engine's health failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}
