//! Following a run's log: prints bytes as they come and reconnects at the last offset when
//! the stream breaks, so a long silent step or a proxy hiccup never cuts the log short.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use kiln_worker::protocol::RunId;

use super::client::KilnClient;
use super::CliError;

/// Consecutive reconnects without progress before giving up.
const MAX_RECONNECTS: u32 = 8;

/// Writes the log from the start to `out` until the run ends (with `follow`) or the log as it
/// is now (without).
pub async fn print_log(
    client: &KilnClient,
    id: RunId,
    follow: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let mut offset = 0u64;
    let mut failures = 0u32;
    loop {
        let before = offset;
        let result = stream_once(client, id, follow, &mut offset, out).await;
        if offset > before {
            // Progress: only consecutive failures count against the budget.
            failures = 0;
        }
        match result {
            Ok(()) => return Ok(()),
            // The server said no (unknown run): retrying will not help.
            Err(e @ CliError::Rejected(_)) => return Err(e),
            Err(e) if failures >= MAX_RECONNECTS => return Err(e),
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, offset, "log stream broke; reconnecting");
                tokio::time::sleep(Duration::from_millis(250 << failures.min(5))).await;
            }
        }
    }
}

async fn stream_once(
    client: &KilnClient,
    id: RunId,
    follow: bool,
    offset: &mut u64,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let mut stream = Box::pin(client.logs(id, *offset, follow).await?);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        *offset += chunk.len() as u64;
        out.write_all(&chunk)
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Server(format!("cannot write the log: {e}")))?;
    }
    Ok(())
}
