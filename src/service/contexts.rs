//! Build contexts uploaded by clients: verified while they stream in, stored by sha256 digest
//! under `<data>/contexts/sha256/`, so an identical upload is stored once.

use std::io::{self, Read};
use std::path::PathBuf;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use kiln_worker::protocol::{ContextLimits, ContextStats, Digest};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::context::verify::{verify_archive, ArchiveSummary, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context is larger than the server's limit of {}", kiln_worker::protocol::human_size(*limit))]
    TooLarge { limit: u64 },
    #[error("build context rejected: {0}")]
    Invalid(#[from] VerifyError),
    /// Over the unpacked size or expansion limit: too large, though only once unpacked.
    #[error("build context rejected: {0}")]
    TooLargeUnpacked(VerifyError),
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    #[error("context storage failed: {0}")]
    Io(#[from] io::Error),
}

/// What the server stored for an upload.
#[derive(Debug, Clone)]
pub struct StoredContext {
    pub digest: Digest,
    pub size: u64,
    pub files: u64,
}

pub struct ContextStore {
    root: PathBuf,
    /// Uploads are held to these, and workers to the same for remote tarballs.
    pub limits: ContextLimits,
}

/// Feeds the verifier thread from the upload as it arrives, so checking costs no extra pass.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl ContextStore {
    pub fn new(root: PathBuf, limits: ContextLimits) -> io::Result<ContextStore> {
        std::fs::create_dir_all(root.join("sha256"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("stats"))?;
        Ok(ContextStore { root, limits })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }

    fn stats_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("stats")
            .join(format!("{}.json", digest.hex()))
    }

    /// What was measured when the context was first uploaded.
    pub fn stats(&self, digest: &Digest) -> Option<ContextStats> {
        let text = std::fs::read_to_string(self.stats_path(digest)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores an upload. Nothing is kept unless the whole archive arrived, fits the limits
    /// (packed and unpacked) and passes the safety checks.
    pub async fn put<S, E>(&self, mut body: S) -> Result<StoredContext, ContextError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let started = std::time::Instant::now();
        let tmp = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?;
        let (tmp_file, tmp_path) = tmp.into_parts();
        let mut file = tokio::fs::File::from_std(tmp_file);
        // A small bound keeps memory flat: the upload waits when the verifier falls behind.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let limits = self.limits;
        let verifier = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            let result = verify_archive(&mut reader, &limits);
            // Drain whatever follows so the uploader never blocks on a verifier that stopped.
            let _ = io::copy(&mut reader, &mut io::sink());
            result
        });
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let received: Result<(), ContextError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| ContextError::Interrupted(e.to_string()))?;
                size += chunk.len() as u64;
                if size > self.limits.max_size {
                    return Err(ContextError::TooLarge {
                        limit: self.limits.max_size,
                    });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
                // The verifier drains to the end even after a bad entry; its verdict comes below.
                let _ = tx.send(chunk).await;
            }
            file.flush().await?;
            Ok(())
        }
        .await;
        drop(tx);
        let verdict = verifier
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        received?;
        let summary: ArchiveSummary = verdict.map_err(|e| match e {
            e if e.is_too_large() => ContextError::TooLargeUnpacked(e),
            e => ContextError::Invalid(e),
        })?;
        let digest = Digest::from_sha256(&hasher.finalize());
        let target = self.path(&digest);
        file.sync_all().await?;
        drop(file);
        let stats = ContextStats {
            size,
            files: summary.entries,
            upload_ms: started.elapsed().as_millis() as u64,
        };
        // Kept from the first upload: a repeat says nothing about how long the data took.
        if !target.exists() {
            let json = serde_json::to_vec(&stats).map_err(io::Error::other)?;
            tokio::fs::write(self.stats_path(&digest), json).await?;
        }
        // Rename is atomic: a reader sees the whole archive or none.
        tmp_path
            .persist(&target)
            .map_err(|e| ContextError::Io(e.error))?;
        Ok(StoredContext {
            digest,
            size,
            files: summary.entries,
        })
    }

    /// The text of the file at `path` in a stored context (a task file in an uploaded
    /// folder): `Ok(None)` when the archive holds no such regular file or it is over `max`
    /// bytes. Archives were verified on upload; this only looks for one entry.
    pub async fn read_file(
        &self,
        digest: &Digest,
        path: &str,
        max: u64,
    ) -> io::Result<Option<Vec<u8>>> {
        let archive = self.path(digest);
        let wanted = normalised(path);
        tokio::task::spawn_blocking(move || {
            let mut file = io::BufReader::new(std::fs::File::open(archive)?);
            let gzip = io::BufRead::fill_buf(&mut file)?.starts_with(&[0x1f, 0x8b]);
            let reader: Box<dyn Read> = match gzip {
                true => Box::new(flate2::read::MultiGzDecoder::new(file)),
                false => Box::new(file),
            };
            let mut tar = tar::Archive::new(reader);
            for entry in tar.entries()? {
                let entry = entry?;
                let name = entry.path()?.to_string_lossy().into_owned();
                if normalised(&name) != wanted || !entry.header().entry_type().is_file() {
                    continue;
                }
                if entry.size() > max {
                    return Ok(None);
                }
                let mut text = Vec::new();
                entry.take(max).read_to_end(&mut text)?;
                return Ok(Some(text));
            }
            Ok(None)
        })
        .await
        .map_err(io::Error::other)?
    }

    pub async fn open(&self, digest: &Digest) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.path(digest)).await
    }

    /// Removes what a crash left in `tmp/`: partial uploads. Call before serving, when no
    /// upload can be in progress. Returns how many entries went.
    pub fn clean_tmp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let path = entry?.path();
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Every stored context with its size and when it was stored.
    pub fn stored(&self) -> io::Result<Vec<(Digest, u64, std::time::SystemTime)>> {
        let mut stored = Vec::new();
        for entry in std::fs::read_dir(self.root.join("sha256"))? {
            let entry = entry?;
            let Ok(digest) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse()
            else {
                continue;
            };
            // Gone meanwhile: removed by a concurrent collection.
            let Ok(meta) = entry.metadata() else { continue };
            stored.push((digest, meta.len(), meta.modified()?));
        }
        Ok(stored)
    }

    /// Deletes a stored context and what was measured of it (retention).
    pub fn remove(&self, digest: &Digest) -> io::Result<()> {
        for path in [self.path(digest), self.stats_path(digest)] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// `./ci//acb.yaml` and `ci/acb.yaml` name one entry.
fn normalised(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}
