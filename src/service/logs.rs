//! Run logs: one append-only file per run under `<data>/logs/`, plus in-memory signals so
//! any number of followers see new bytes as soon as they are written.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;
use kiln_worker::protocol::RunId;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Followers read at most this much per chunk they send on.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The upload starts past the end of the log: bytes in between were lost.
    #[error("log upload at offset {offset} leaves a gap: the log has {size} bytes")]
    Gap { offset: u64, size: u64 },
    #[error("run log I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// The live state of one run's log. `size` changes on every append; `closed` once the run ended.
struct LiveLog {
    tx: watch::Sender<LogState>,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct LogState {
    size: u64,
    closed: bool,
}

pub struct LogHub {
    dir: PathBuf,
    live: Mutex<HashMap<RunId, Arc<LiveLog>>>,
    /// Fires at shutdown: followers are cut off, so they do not hold the server up.
    stopping: CancellationToken,
}

impl LogHub {
    pub fn new(dir: PathBuf) -> io::Result<LogHub> {
        std::fs::create_dir_all(&dir)?;
        Ok(LogHub {
            dir,
            live: Mutex::new(HashMap::new()),
            stopping: CancellationToken::new(),
        })
    }

    fn path(&self, id: RunId) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    fn live(&self, id: RunId) -> Arc<LiveLog> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.entry(id)
            .or_insert_with(|| {
                let size = file_size(&self.path(id));
                Arc::new(LiveLog {
                    tx: watch::channel(LogState {
                        size,
                        closed: false,
                    })
                    .0,
                })
            })
            .clone()
    }

    /// Appends `data`, which the writer says starts at `offset`. Bytes the log already holds
    /// are skipped, so a retried upload is harmless. Returns the log's new size.
    pub fn append_at(&self, id: RunId, offset: u64, data: &[u8]) -> Result<u64, LogError> {
        let live = self.live(id);
        let mut result = Ok(0);
        live.tx.send_if_modified(|state| {
            if offset > state.size {
                result = Err(LogError::Gap {
                    offset,
                    size: state.size,
                });
                return false;
            }
            let skip = (state.size - offset).min(data.len() as u64) as usize;
            let fresh = &data[skip..];
            if fresh.is_empty() {
                result = Ok(state.size);
                return false;
            }
            result = self.write_end(id, state, fresh);
            result.is_ok()
        });
        result
    }

    /// Appends a line written by the server itself (queue and final status messages).
    /// Goes at the end under the same lock as uploads, so no upload can land in between.
    pub fn append_line(&self, id: RunId, line: &str) -> Result<u64, LogError> {
        let data = format!("{line}\n");
        let mut result = Ok(0);
        self.live(id).tx.send_if_modified(|state| {
            result = self.write_end(id, state, data.as_bytes());
            result.is_ok()
        });
        result
    }

    /// Writes `data` at the end of the log; called with the log's state locked.
    fn write_end(&self, id: RunId, state: &mut LogState, data: &[u8]) -> Result<u64, LogError> {
        append_file(&self.path(id), data)?;
        state.size += data.len() as u64;
        Ok(state.size)
    }

    /// Breaks every follow stream (not a clean end: the run goes on), so the server can stop
    /// without waiting for runs that outlive it; `kiln` followers reconnect after a restart.
    pub fn stop_following(&self) {
        self.stopping.cancel();
    }

    /// Deletes an ended run's log (retention). `false` when there was none.
    pub fn remove(&self, id: RunId) -> io::Result<bool> {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wakes the run's followers for the last time: the log is complete.
    pub fn close(&self, id: RunId) {
        let live = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(live) = live {
            live.tx.send_modify(|s| s.closed = true);
        }
    }

    /// Streams the log from `offset`. With `follow`, the stream goes on until the log is closed;
    /// `is_finished` is asked only after subscribing, so a close in between is never missed.
    pub async fn read(
        self: &Arc<Self>,
        id: RunId,
        offset: u64,
        follow: bool,
        is_finished: impl std::future::Future<Output = bool>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let rx = follow.then(|| self.live(id).tx.subscribe());
        let rx = if is_finished.await { None } else { rx };
        let path = self.path(id);
        futures::stream::unfold(
            Reader {
                path,
                offset,
                rx,
                file: None,
                stopping: self.stopping.clone(),
            },
            |mut r| async move {
                match r.next_chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), r)),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), r.done())),
                }
            },
        )
    }

    pub fn size(&self, id: RunId) -> u64 {
        file_size(&self.path(id))
    }
}

struct Reader {
    path: PathBuf,
    offset: u64,
    /// `None`: read what is there and stop.
    rx: Option<watch::Receiver<LogState>>,
    file: Option<tokio::fs::File>,
    stopping: CancellationToken,
}

impl Reader {
    fn done(mut self) -> Self {
        self.rx = None;
        self.offset = u64::MAX;
        self
    }

    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if let Some(chunk) = self.read_available().await? {
                return Ok(Some(chunk));
            }
            let Some(rx) = self.rx.as_mut() else {
                return Ok(None);
            };
            let state = *rx.borrow_and_update();
            if state.closed {
                // Everything written before the close is on disk: one last read, then stop.
                self.rx = None;
                continue;
            }
            if state.size > self.offset {
                continue;
            }
            let changed = tokio::select! {
                changed = rx.changed() => changed,
                () = self.stopping.cancelled() => {
                    return Err(io::Error::other("the server is shutting down"));
                }
            };
            if changed.is_err() {
                // The hub dropped this log: it was closed and removed.
                self.rx = None;
            }
        }
    }

    async fn read_available(&mut self) -> io::Result<Option<Bytes>> {
        if self.offset == u64::MAX {
            return Ok(None);
        }
        if self.file.is_none() {
            match tokio::fs::File::open(&self.path).await {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(None);
        };
        file.seek(io::SeekFrom::Start(self.offset)).await?;
        let mut buf = vec![0; READ_CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        self.offset += n as u64;
        Ok(Some(Bytes::from(buf)))
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn append_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn collect(s: impl Stream<Item = io::Result<Bytes>>) -> String {
        let parts: Vec<Bytes> = s.map(|c| c.unwrap()).collect().await;
        String::from_utf8(parts.concat()).unwrap()
    }

    #[tokio::test]
    async fn appends_are_idempotent_and_gaps_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hub = LogHub::new(dir.path().to_path_buf()).unwrap();
        let id = RunId::from_seq(1);
        assert_eq!(hub.append_at(id, 0, b"hello ").unwrap(), 6);
        assert_eq!(hub.append_at(id, 0, b"hello ").unwrap(), 6);
        assert_eq!(hub.append_at(id, 3, b"lo world").unwrap(), 11);
        assert!(matches!(
            hub.append_at(id, 20, b"x"),
            Err(LogError::Gap { size: 11, .. })
        ));
        let hub = Arc::new(hub);
        assert_eq!(
            collect(hub.read(id, 6, false, async { true }).await).await,
            "world"
        );
    }

    #[tokio::test]
    async fn followers_see_appends_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(LogHub::new(dir.path().to_path_buf()).unwrap());
        let id = RunId::from_seq(2);
        hub.append_line(id, "one").unwrap();
        let follower = tokio::spawn(collect(hub.read(id, 0, true, async { false }).await));
        tokio::task::yield_now().await;
        hub.append_line(id, "two").unwrap();
        hub.append_line(id, "three").unwrap();
        hub.close(id);
        assert_eq!(follower.await.unwrap(), "one\ntwo\nthree\n");
    }
}
