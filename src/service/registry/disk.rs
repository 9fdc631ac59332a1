//! Blob files on disk: streamed in with a running hash, renamed into their content address.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::digest::{Algorithm, Digest, Hasher};
use super::RegistryError;

/// Bytes gathered before each write: large writes keep a 1 GiB push to a few hundred
/// syscalls, and tokio's file does at most 2 MiB per blocking operation.
const WRITE_BUFFER: usize = 2 << 20;

pub struct Disk {
    root: PathBuf,
}

impl Disk {
    pub fn new(root: PathBuf) -> io::Result<Disk> {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            std::fs::create_dir_all(root.join("blobs").join(algorithm.as_str()))?;
        }
        std::fs::create_dir_all(root.join("uploads"))?;
        Ok(Disk { root })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// Session IDs are UUIDs checked by the route, so they are safe as file names.
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.uploads_dir().join(id)
    }

    /// A temporary file beside the sessions, deleted on drop unless committed.
    pub fn temp_file(&self) -> io::Result<tempfile::TempPath> {
        Ok(tempfile::NamedTempFile::new_in(self.uploads_dir())?.into_temp_path())
    }

    /// Moves a complete, synced file to its content address. Rename is atomic, so a reader
    /// sees the whole blob or none; a blob already there has the same bytes and is replaced.
    /// The folder is synced too, so the database never records a blob a crash could lose.
    pub async fn commit(&self, from: &Path, digest: &Digest) -> io::Result<()> {
        let target = self.blob_path(digest);
        let dir = target
            .parent()
            .expect("blob paths have a folder")
            .to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(from, &target).await?;
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(io::Error::other)?
    }

    pub async fn open(&self, digest: &Digest) -> io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.blob_path(digest)).await
    }

    pub async fn remove(&self, digest: &Digest) -> io::Result<()> {
        match tokio::fs::remove_file(self.blob_path(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Appends to a file while hashing what it writes.
pub struct HashingWriter {
    file: BufWriter<tokio::fs::File>,
    pub hasher: Hasher,
    pub size: u64,
}

impl HashingWriter {
    /// Continues a file of `size` bytes whose content so far hashed to `hasher`.
    pub async fn append_to(path: &Path, hasher: Hasher, size: u64) -> io::Result<HashingWriter> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(HashingWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            hasher,
            size,
        })
    }

    /// Writes the whole body. On error the file may hold part of it: callers that keep the
    /// file must then trust its length, not `size`.
    pub async fn write_stream<S, E>(&mut self, mut body: S) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Interrupted(e.to_string()))?;
            self.hasher.update(&chunk);
            self.file.write_all(&chunk).await?;
            self.size += chunk.len() as u64;
        }
        self.file.flush().await?;
        Ok(())
    }

    /// Flushes the file to the disk before it is renamed into place. We pay for the fsync:
    /// the database records the blob as present once it is renamed, and after a power cut a
    /// renamed file whose data never reached the disk would serve wrong bytes under a digest,
    /// which no client could tell from a good blob until it verified the download.
    pub async fn sync(mut self) -> io::Result<(Digest, u64)> {
        self.file.flush().await?;
        self.file.get_ref().sync_data().await?;
        Ok((self.hasher.finish(), self.size))
    }

    /// The state to resume from in the next request of the same session.
    pub async fn pause(mut self) -> io::Result<(Hasher, u64)> {
        self.file.flush().await?;
        Ok((self.hasher, self.size))
    }
}

/// Hashes a file from the start with `algorithm`: for sessions whose running hash was lost or
/// is of another algorithm than the digest the client finally names.
pub async fn hash_file(path: &Path, algorithm: Algorithm) -> io::Result<(Hasher, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Hasher::new(algorithm);
        let size = io::copy(&mut file, &mut hasher)?;
        Ok((hasher, size))
    })
    .await
    .map_err(io::Error::other)?
}
