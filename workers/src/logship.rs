//! Ships a run's log to the server while the build runs. Lines are batched while one upload
//! is in flight, so latency stays at one round trip without a request per line.

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::client::{ClientError, ServerClient};
use crate::protocol::RunId;

/// Upper bound on one upload, so a chatty build still streams in steady steps.
const MAX_BATCH: usize = 1024 * 1024;
const RETRIES: u32 = 5;

/// Where the worker writes a run's log. Cheap to clone; writing never blocks the build.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl LogSink {
    pub fn line(&self, line: impl AsRef<str>) {
        let mut buf = BytesMut::with_capacity(line.as_ref().len() + 1);
        buf.extend_from_slice(line.as_ref().as_bytes());
        buf.extend_from_slice(b"\n");
        // A closed shipper means the attempt is over; later lines have nowhere to go.
        let _ = self.tx.send(buf.freeze());
    }
}

/// Starts the shipper. It ends when every `LogSink` clone is dropped and all is uploaded.
pub fn start(
    client: ServerClient,
    run: RunId,
    attempt: u32,
    offset: u64,
) -> (LogSink, tokio::task::JoinHandle<Result<(), ClientError>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(ship(client, run, attempt, offset, rx));
    (LogSink { tx }, task)
}

async fn ship(
    client: ServerClient,
    run: RunId,
    attempt: u32,
    mut offset: u64,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) -> Result<(), ClientError> {
    while let Some(first) = rx.recv().await {
        let mut batch = BytesMut::from(first.as_ref());
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let batch = batch.freeze();
        let mut tries = 0;
        loop {
            // Offsets make a retry after a lost reply harmless: the server skips what it has.
            match client
                .append_logs(run, attempt, offset, batch.clone())
                .await
            {
                Ok(size) => {
                    offset = size;
                    break;
                }
                Err(e @ ClientError::Stale(_)) => return Err(e),
                Err(e) if tries >= RETRIES => return Err(e),
                Err(e) => {
                    tries += 1;
                    tracing::warn!(run.id = %run, error = %e, "log upload failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 << tries)).await;
                }
            }
        }
    }
    Ok(())
}
