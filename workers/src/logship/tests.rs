//! The shipper against a stand-in for the server's log that keeps the server's rules (skip
//! what it has, refuse a gap) and can lose or refuse uploads on demand.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;

/// What the stand-in does with an upload.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Acknowledges it without keeping it, as a server that crashed before its write
    /// reached the disk would look after a restart.
    Lose,
    /// Answers that the attempt is no longer current.
    Stale,
}

#[derive(Clone, Default)]
struct FakeLog {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    log: Vec<u8>,
    /// Faults for the next uploads, in order; `None` serves the upload normally.
    script: VecDeque<Option<Fault>>,
    uploads: usize,
    gaps: usize,
}

impl FakeLog {
    fn with_script(script: &[Option<Fault>]) -> FakeLog {
        let log = FakeLog::default();
        log.inner.lock().unwrap().script = script.iter().copied().collect();
        log
    }

    fn text(&self) -> String {
        String::from_utf8(self.inner.lock().unwrap().log.clone()).unwrap()
    }
}

impl LogUpload for FakeLog {
    async fn append(&self, offset: u64, data: Bytes) -> Result<u64, ClientError> {
        let mut s = self.inner.lock().unwrap();
        s.uploads += 1;
        let size = s.log.len() as u64;
        match s.script.pop_front().flatten() {
            Some(Fault::Lose) => return Ok(offset + data.len() as u64),
            Some(Fault::Stale) => return Err(ClientError::Stale("superseded".into())),
            None => {}
        }
        if offset > size {
            s.gaps += 1;
            return Err(ClientError::LogGap {
                offset: size,
                message: format!("gap at {offset}"),
            });
        }
        let skip = ((size - offset) as usize).min(data.len());
        s.log.extend_from_slice(&data[skip..]);
        Ok(s.log.len() as u64)
    }
}

fn lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("line {i}")).collect()
}

fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Writes `lines` in bursts, so uploads happen between them, then waits for the shipper.
async fn ship_lines(log: &FakeLog, lines: &[String]) -> Result<(), ClientError> {
    let (sink, task) = start_with(log.clone(), 0, tracing::Span::none());
    for burst in lines.chunks(3) {
        for line in burst {
            sink.line(line);
        }
        // Let the shipper upload this burst before the next one comes.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    drop(sink);
    task.await.unwrap()
}

#[tokio::test]
async fn a_lost_upload_is_resent_from_the_servers_offset() {
    let log = FakeLog::with_script(&[None, Some(Fault::Lose), None, Some(Fault::Lose)]);
    let all = lines(60);
    ship_lines(&log, &all).await.unwrap();
    // Every line exactly once, in order, though two uploads never reached the log.
    assert_eq!(log.text(), joined(&all));
    assert!(log.inner.lock().unwrap().gaps >= 1, "the test made no gap");
}

#[tokio::test]
async fn a_stale_attempt_stops_shipping() {
    let log = FakeLog::with_script(&[None, Some(Fault::Stale)]);
    let all = lines(30);
    let result = ship_lines(&log, &all).await;
    assert!(matches!(result, Err(ClientError::Stale(_))), "{result:?}");
    let uploads = log.inner.lock().unwrap().uploads;
    assert_eq!(uploads, 2, "uploads went on after the stale answer");
}

#[test]
fn a_gap_before_the_held_bytes_cannot_be_filled() {
    let mut window = Window::new(100);
    window.held.extend_from_slice(b"abc\n");
    window.acknowledged(104);
    assert!(window.rewind(100));
    assert_eq!(&window.next_batch()[..], b"abc\n");
    assert!(
        !window.rewind(99),
        "bytes before the window were never held"
    );
}

#[test]
fn acknowledged_bytes_are_kept_only_up_to_the_retention_limit() {
    let mut window = Window::new(0);
    window.held.extend_from_slice(&vec![b'x'; RETAIN + 10]);
    window.acknowledged((RETAIN + 10) as u64);
    // The server has it all: nothing to resend, the last RETAIN bytes held.
    assert_eq!(window.unsent(), 0);
    assert_eq!(window.held.len(), RETAIN);
    window.held.extend_from_slice(&vec![b'y'; RETAIN + 10]);
    window.acknowledged((2 * RETAIN + 15) as u64);
    assert_eq!(window.held.len(), RETAIN + 5);
    assert_eq!(window.base, (RETAIN + 15) as u64);
}
