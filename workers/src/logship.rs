//! Ships a run's log to the server while the build runs. Lines are batched while one upload
//! is in flight, so latency stays at one round trip without a request per line.
//!
//! Every upload names the offset it starts at, so the server can skip bytes it already has
//! (a retry after a lost reply) and refuse bytes that would leave a hole (`LOG_GAP`, with the
//! offset its log really ends at). The shipper keeps the last `RETAIN` bytes it shipped, so on
//! a gap it resends from the server's offset and no line is lost; only a stale attempt ends
//! shipping.

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::client::{ClientError, ServerClient};
use crate::protocol::RunId;

/// Upper bound on one upload, so a chatty build still streams in steady steps.
const MAX_BATCH: usize = 1024 * 1024;
/// Bytes kept after the server acknowledged them, to fill a gap the server reports later
/// (e.g. a server that restarted and lost the unsynced tail of a log file).
const RETAIN: usize = 8 * 1024 * 1024;
/// Failed uploads in a row (errors or gaps) before shipping gives up.
const RETRIES: u32 = 5;

/// Where the shipper sends a run's log: the server's log endpoint, or a test's stand-in.
pub trait LogUpload: Send + Sync + 'static {
    /// Appends `data` at `offset` of the log; returns the log's new size.
    fn append(
        &self,
        offset: u64,
        data: Bytes,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send;
}

impl<U: LogUpload> LogUpload for std::sync::Arc<U> {
    fn append(
        &self,
        offset: u64,
        data: Bytes,
    ) -> impl Future<Output = Result<u64, ClientError>> + Send {
        (**self).append(offset, data)
    }
}

/// One attempt's log on the server.
struct AttemptLog {
    client: ServerClient,
    run: RunId,
    attempt: u32,
}

impl LogUpload for AttemptLog {
    async fn append(&self, offset: u64, data: Bytes) -> Result<u64, ClientError> {
        self.client
            .append_logs(self.run, self.attempt, offset, data)
            .await
    }
}

/// Where the worker writes a run's log. Cheap to clone; writing never blocks the build.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Values replaced by `***` in every line, longest first.
    masked: Arc<Vec<String>>,
    /// Put before every line (`[test] ` for a step running beside others).
    prefix: Option<Arc<str>>,
}

impl LogSink {
    /// A sink that writes to `tx`: for tests that read the lines themselves.
    pub fn to_channel(tx: mpsc::UnboundedSender<Bytes>) -> LogSink {
        LogSink {
            tx,
            masked: Arc::default(),
            prefix: None,
        }
    }

    /// The same log, with every one of `values` replaced by `***`. Masking works on whole
    /// lines, which is why output is split into lines before it is logged: a value can never
    /// straddle two writes.
    pub fn masking(self, values: impl IntoIterator<Item = String>) -> LogSink {
        let mut masked: Vec<String> = self.masked.iter().cloned().chain(values).collect();
        masked.retain(|v| !v.is_empty());
        // Longest first, so a value containing another is masked whole.
        masked.sort_by_key(|v| std::cmp::Reverse(v.len()));
        masked.dedup();
        LogSink {
            masked: Arc::new(masked),
            ..self
        }
    }

    /// The same log, with `prefix` before every line.
    pub fn prefixed(&self, prefix: &str) -> LogSink {
        LogSink {
            prefix: Some(Arc::from(prefix)),
            ..self.clone()
        }
    }

    pub fn line(&self, line: impl AsRef<str>) {
        let mut text = std::borrow::Cow::Borrowed(line.as_ref());
        for value in self.masked.iter() {
            if text.contains(value.as_str()) {
                text = std::borrow::Cow::Owned(text.replace(value.as_str(), "***"));
            }
        }
        let prefix = self.prefix.as_deref().unwrap_or("");
        let mut buf = BytesMut::with_capacity(prefix.len() + text.len() + 1);
        buf.extend_from_slice(prefix.as_bytes());
        buf.extend_from_slice(text.as_bytes());
        buf.extend_from_slice(b"\n");
        // A closed shipper means the attempt is over; later lines have nowhere to go.
        let _ = self.tx.send(buf.freeze());
    }
}

/// Starts shipping an attempt's log, whose server copy ends at `offset`. The task ends when
/// every `LogSink` clone is dropped and all is uploaded.
pub fn start(
    client: ServerClient,
    run: RunId,
    attempt: u32,
    offset: u64,
) -> (LogSink, tokio::task::JoinHandle<Result<(), ClientError>>) {
    let log = AttemptLog {
        client,
        run,
        attempt,
    };
    let span = tracing::info_span!("logship", run.id = %run, attempt);
    start_with(log, offset, span)
}

/// `start` with any destination; `span` names the log in the shipper's warnings.
pub fn start_with(
    upload: impl LogUpload,
    offset: u64,
    span: tracing::Span,
) -> (LogSink, tokio::task::JoinHandle<Result<(), ClientError>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(ship(upload, Window::new(offset), rx).instrument(span));
    (LogSink::to_channel(tx), task)
}

/// The tail of the log this shipper wrote: `held` starts at `base` in the server's log, and
/// the server has acknowledged everything before `acked`.
struct Window {
    base: u64,
    held: BytesMut,
    acked: u64,
}

impl Window {
    fn new(offset: u64) -> Window {
        Window {
            base: offset,
            held: BytesMut::new(),
            acked: offset,
        }
    }

    fn end(&self) -> u64 {
        self.base + self.held.len() as u64
    }

    fn unsent(&self) -> usize {
        (self.end() - self.acked) as usize
    }

    /// The next upload: from the first unacknowledged byte, at most `MAX_BATCH`.
    fn next_batch(&self) -> Bytes {
        let from = (self.acked - self.base) as usize;
        let to = self.held.len().min(from + MAX_BATCH);
        Bytes::copy_from_slice(&self.held[from..to])
    }

    /// The server's log now ends at `size`.
    fn acknowledged(&mut self, size: u64) {
        if size > self.end() {
            // The server has lines of its own after ours: go on from its end.
            self.base = size;
            self.held.clear();
        }
        self.acked = size.max(self.base);
        let behind = (self.acked - self.base) as usize;
        if behind > RETAIN {
            self.held.advance(behind - RETAIN);
            self.base += (behind - RETAIN) as u64;
        }
    }

    /// The server's log ends at `offset`, before what it acknowledged: resend from there if
    /// this shipper still holds those bytes.
    fn rewind(&mut self, offset: u64) -> bool {
        if offset < self.base || offset > self.end() {
            return false;
        }
        self.acked = offset;
        true
    }
}

async fn ship(
    upload: impl LogUpload,
    mut window: Window,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) -> Result<(), ClientError> {
    let mut tries = 0;
    loop {
        if window.unsent() == 0 {
            match rx.recv().await {
                Some(line) => window.held.extend_from_slice(&line),
                None => return Ok(()),
            }
        }
        while window.unsent() < MAX_BATCH {
            match rx.try_recv() {
                Ok(line) => window.held.extend_from_slice(&line),
                Err(_) => break,
            }
        }
        let offset = window.acked;
        // Offsets make a retry after a lost reply harmless: the server skips what it has.
        match upload.append(offset, window.next_batch()).await {
            Ok(size) => {
                tries = 0;
                window.acknowledged(size);
            }
            Err(e @ ClientError::Stale(_)) => return Err(e),
            Err(e) if tries >= RETRIES => return Err(e),
            Err(ClientError::LogGap {
                offset: at,
                message,
            }) => {
                tries += 1;
                if !window.rewind(at) {
                    return Err(ClientError::LogGap {
                        offset: at,
                        message: format!("{message}; the bytes from there are no longer held"),
                    });
                }
                tracing::warn!(
                    from = offset,
                    resend_from = at,
                    "the server's log has a gap; resending from its end"
                );
            }
            Err(e) => {
                tries += 1;
                tracing::warn!(error = %e, "log upload failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 << tries)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
