//! Lingering close, as nginx does it. When the server answers before it has read the whole
//! request (a 413 for a body over the limit, a 401 before an upload), closing the socket with
//! unread bytes in it makes the kernel send a reset, and a client still writing its body sees
//! "broken pipe" instead of the answer. So the server first shuts down its sending side, which
//! tells the client the answer is complete, and then reads and discards what the client is
//! still sending, for a bounded time, before it closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The longest the server keeps discarding a client's bytes after it has answered.
const LINGER_TIME: Duration = Duration::from_secs(10);
/// How long the server waits for the client's next bytes before it closes anyway.
const LINGER_IDLE: Duration = Duration::from_secs(2);

/// Closes a connection whose answer has been sent, without resetting it under the client.
pub(super) async fn close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut discard = vec![0u8; 64 * 1024];
    loop {
        let until = deadline.min(Instant::now() + LINGER_IDLE);
        match tokio::time::timeout_at(until, stream.read(&mut discard)).await {
            Ok(Ok(n)) if n > 0 => continue,
            // The client closed, failed, or went quiet, or the time is up.
            _ => return,
        }
    }
}
