//! Following a run's log: prints bytes as they come and reconnects at the last offset when
//! the stream breaks, so a long silent step or a proxy hiccup never cuts the log short. When
//! the server goes away, it says so at once, keeps trying with backoff, and gives up with
//! [`CliError::LostServer`] after the reconnect timeout.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kiln_worker::protocol::RunId;

use super::client::KilnClient;
use super::CliError;

/// The longest pause between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Writes the log from the start to `out` until the run ends (with `follow`) or the log as it
/// is now (without). A server out of reach for `reconnect_timeout` ends it with
/// [`CliError::LostServer`].
pub async fn print_log(
    client: &KilnClient,
    id: RunId,
    follow: bool,
    reconnect_timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let mut offset = 0u64;
    // Since when the server has been out of reach, and how many attempts failed since.
    let mut lost: Option<(Instant, u32)> = None;
    loop {
        let broke = match stream_once(client, id, follow, &mut offset, &mut lost, out).await {
            Ok(()) if !follow => return Ok(()),
            // A follow stream also ends cleanly when the server shuts down: only a finished
            // run means the log is complete.
            Ok(()) => match client.run(&id.to_string()).await {
                Ok(run) if run.status.is_finished() => return Ok(()),
                Ok(_) => CliError::Server("the log stream ended before the run did".into()),
                Err(e) => e,
            },
            Err(Broke::Fatal(e)) => return Err(e),
            Err(Broke::Stream(e)) => e,
        };
        // The server said no (unknown run): retrying will not help.
        if let CliError::Rejected(_) = broke {
            return Err(broke);
        }
        let (since, attempts) = lost.get_or_insert_with(|| {
            eprintln!("Lost the server, reconnecting…");
            (Instant::now(), 0)
        });
        tracing::debug!(error = %broke, offset, "log stream broke; reconnecting");
        let left = reconnect_timeout.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(CliError::LostServer(format!(
                "lost the server at {}: no answer for {}s ({broke}). Run {id} goes on there if \
                 the server does; follow it again with 'kiln run logs {id} --follow'",
                client.server(),
                reconnect_timeout.as_secs()
            )));
        }
        *attempts += 1;
        let backoff = Duration::from_millis(250 << (*attempts).min(5)).min(MAX_BACKOFF);
        tokio::time::sleep(backoff.min(left)).await;
    }
}

/// Why one stream ended early: the connection (worth another try) or the output.
enum Broke {
    Stream(CliError),
    Fatal(CliError),
}

async fn stream_once(
    client: &KilnClient,
    id: RunId,
    follow: bool,
    offset: &mut u64,
    lost: &mut Option<(Instant, u32)>,
    out: &mut (dyn Write + Send),
) -> Result<(), Broke> {
    let stream = client
        .logs(id, *offset, follow)
        .await
        .map_err(Broke::Stream)?;
    if lost.take().is_some() {
        eprintln!("Reconnected to the server.");
    }
    let mut stream = Box::pin(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Broke::Stream)?;
        *offset += chunk.len() as u64;
        out.write_all(&chunk)
            .and_then(|()| out.flush())
            .map_err(|e| Broke::Fatal(CliError::Server(format!("cannot write the log: {e}"))))?;
    }
    Ok(())
}
