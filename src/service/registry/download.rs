//! Streaming a blob file to a client. Each chunk is read straight into the buffer that is
//! sent (one copy from the page cache, no intermediate buffer), on the blocking pool only for
//! the read itself, and the next chunk is read while the previous one is being sent, so the
//! disk and the socket work at the same time.

use std::io::{self, Read};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc::Sender;

/// Bytes per read and per body frame: large enough that a 1 GiB pull is about a thousand
/// frames, small enough that read-ahead costs little memory per download.
const CHUNK: usize = 1 << 20;

/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 2;

/// The next `length` bytes of `file` as a stream of chunks. A read error ends the stream with
/// that error (the connection is then cut short, so the client sees an incomplete body); the
/// reading stops when the stream is dropped (the client went away).
pub fn stream_file(file: std::fs::File, length: u64) -> impl Stream<Item = io::Result<Bytes>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        if let Err(e) = pump(file, length, &tx).await {
            tracing::warn!(error = %e, "reading a blob failed mid-download");
            let _ = tx.send(Err(e)).await;
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn pump(
    mut file: std::fs::File,
    mut remaining: u64,
    tx: &Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64) as usize;
        let (back, chunk) = tokio::task::spawn_blocking(move || {
            let mut chunk = Vec::with_capacity(want);
            let read = (&mut file).take(want as u64).read_to_end(&mut chunk);
            (file, read.map(|_| chunk))
        })
        .await
        .map_err(io::Error::other)?;
        let chunk = chunk?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file is shorter than its recorded size",
            ));
        }
        file = back;
        remaining -= chunk.len() as u64;
        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
