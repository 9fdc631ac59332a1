//! Streaming the archive from a dedicated packing thread through a bounded channel.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::{write_tar_gz, PackError, PackPlan, PackProgress};

/// Size of the chunks [`stream_tar_gz`] yields.
pub(super) const STREAM_CHUNK_SIZE: usize = 256 * 1024;
/// Chunks [`stream_tar_gz`] may produce ahead of the consumer.
const STREAM_CHANNEL_DEPTH: usize = 4;

/// Runs [`write_tar_gz`] on a dedicated blocking thread and yields the gzip bytes as ~256 KiB
/// chunks through a bounded channel, so a slow upload applies backpressure to the packer.
/// Suitable for an HTTP request body. A packing failure arrives as the stream's last item (an
/// `io::Error` wrapping the [`PackError`]); dropping the stream stops the packer. `progress`
/// runs on the packing thread.
pub fn stream_tar_gz(
    plan: PackPlan,
    progress: impl Fn(PackProgress) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static {
    let (tx, mut rx) = mpsc::channel(STREAM_CHANNEL_DEPTH);
    // Kept so a failure to start the thread can still be reported; dropped right after so the
    // stream ends when the packer does.
    let spawn_failure_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("kiln-pack".to_owned())
        .spawn(move || produce(&plan, &progress, tx));
    if let Err(error) = spawned {
        // The channel is fresh and has room, and the receiver is still held here.
        let _ = spawn_failure_tx.try_send(Err(error));
    }
    drop(spawn_failure_tx);
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The body of the [`stream_tar_gz`] thread.
fn produce(plan: &PackPlan, progress: &dyn Fn(PackProgress), tx: mpsc::Sender<io::Result<Bytes>>) {
    let sink = ChunkSender::new(tx.clone());
    // A panic (in the caller's progress callback, say) must not end the stream as if the
    // archive were complete.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        write_tar_gz(plan, sink, progress)
            .and_then(|sink| sink.send_rest().map_err(PackError::Write))
    }));
    let error = match result {
        Ok(Ok(())) => return,
        Ok(Err(error)) => io::Error::other(error),
        Err(_) => io::Error::other("packing the build context panicked"),
    };
    // If the receiver is gone nobody is left to tell, which is fine.
    let _ = tx.blocking_send(Err(error));
}

/// A `Write` that hands full chunks to the stream's channel, blocking while it is full.
struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    chunk: Vec<u8>,
}

impl ChunkSender {
    fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            tx,
            chunk: Vec::with_capacity(STREAM_CHUNK_SIZE),
        }
    }

    fn send_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(STREAM_CHUNK_SIZE));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stream was dropped"))
    }

    /// Sends whatever is left once the archive is complete.
    fn send_rest(mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.send_chunk()
    }
}

impl Write for ChunkSender {
    /// Takes at most what fits the current chunk: the compressor writes whole blocks at once,
    /// and a chunk must not grow past [`STREAM_CHUNK_SIZE`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(STREAM_CHUNK_SIZE - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..taken]);
        if self.chunk.len() >= STREAM_CHUNK_SIZE {
            self.send_chunk()?;
        }
        Ok(taken)
    }

    /// Chunks only leave when full or at the end, so flushes from inner layers do not
    /// fragment the body.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
