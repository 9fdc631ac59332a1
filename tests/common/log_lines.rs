//! A child process's log, read line by line as it comes, and waits for a line.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// Forwards each line of `stream` (a child's stderr, say) to the returned channel.
pub fn log_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    let mut lines = BufReader::new(stream).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The first line that contains `text`; panics when the log ends or two minutes pass first.
pub async fn wait_for_line(log: &mut UnboundedReceiver<String>, text: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = log.recv().await {
            if line.contains(text) {
                return line;
            }
        }
        panic!("the log ended before '{text}'");
    });
    found
        .await
        .unwrap_or_else(|_| panic!("no '{text}' in the log"))
}
