//! Chunked upload sessions: the bytes so far are in `<data>/registry/uploads/<id>`, their
//! running hash in memory, so completing a session never reads the file again (unless the
//! server restarted meanwhile, or the session ends with a digest of another algorithm).
//!
//! A session hashes with sha256 until it learns otherwise, since the digest only comes with
//! the last request: one whose bytes all come with that request is hashed with the digest's
//! algorithm, and one that sent chunks before a sha512 digest is read once more to hash it.

use std::sync::Arc;

use super::access::{authorize, PUSH};
use super::blobs::verify;
use super::digest::{Algorithm, Digest, Hasher};
use super::disk::{hash_file, HashingWriter};
use super::ranges::ByteRange;
use super::{RegistryError, RegistryService, RepoName, SessionState};
use crate::access::Principal;
use bytes::Bytes;
use futures::Stream;

/// A session's running hash and length.
pub struct Progress {
    hasher: Hasher,
    size: u64,
}

/// Where a session stands, for the `Location`, `Range` and `Docker-Upload-UUID` headers.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    pub id: String,
    /// Bytes received so far.
    pub size: u64,
}

impl RegistryService {
    pub async fn start_upload(
        &self,
        who: &Principal,
        repo: &RepoName,
    ) -> Result<UploadStatus, RegistryError> {
        authorize(who, repo, PUSH)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.store
            .create_upload(&id, repo.as_str(), self.clock.now_ms())
            .await?;
        tokio::fs::File::create(self.disk.upload_path(&id)).await?;
        self.sessions.lock().expect("sessions lock").insert(
            id.clone(),
            Arc::new(tokio::sync::Mutex::new(Some(Progress {
                hasher: Hasher::new(Algorithm::Sha256),
                size: 0,
            }))),
        );
        Ok(UploadStatus { id, size: 0 })
    }

    pub async fn upload_status(
        &self,
        who: &Principal,
        repo: &RepoName,
        id: &str,
    ) -> Result<UploadStatus, RegistryError> {
        authorize(who, repo, PUSH)?;
        let session = self.session(repo, id).await?;
        let mut progress = session.lock().await;
        let size = self.progress(id, &mut progress).await?.size;
        Ok(UploadStatus {
            id: id.to_string(),
            size,
        })
    }

    /// Appends a chunk. With a `Content-Range` it must start where the upload stands.
    pub async fn append_upload<S, E>(
        &self,
        who: &Principal,
        repo: &RepoName,
        id: &str,
        range: Option<ByteRange>,
        body: S,
    ) -> Result<UploadStatus, RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        authorize(who, repo, PUSH)?;
        let session = self.session(repo, id).await?;
        // One request at a time per session: chunks append in order.
        let mut state = session.lock().await;
        let size = self.write_chunk(id, &mut state, range, body).await?;
        Ok(UploadStatus {
            id: id.to_string(),
            size,
        })
    }

    /// Completes a session, with an optional last chunk, verifying the whole against `digest`.
    /// On a mismatch the session and its bytes are dropped.
    pub async fn finish_upload<S, E>(
        &self,
        who: &Principal,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        range: Option<ByteRange>,
        body: S,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        authorize(who, repo, PUSH)?;
        let session = self.session(repo, id).await?;
        let mut state = session.lock().await;
        let progress = self.progress(id, &mut state).await?;
        if progress.size == 0 {
            progress.hasher = Hasher::new(digest.algorithm());
        }
        self.write_chunk(id, &mut state, range, body).await?;
        let progress = state.take().expect("write_chunk leaves progress");
        let path = self.disk.upload_path(id);
        let writer = HashingWriter::append_to(&path, progress.hasher, progress.size).await?;
        let (mut actual, size) = writer.sync().await?;
        if actual.algorithm() != digest.algorithm() {
            actual = hash_file(&path, digest.algorithm()).await?.0.finish();
        }
        let verified = verify(digest, &actual);
        if verified.is_ok() {
            self.commit_blob(repo, &path, digest, size).await?;
        }
        self.forget_upload(id).await?;
        verified
    }

    pub async fn cancel_upload(
        &self,
        who: &Principal,
        repo: &RepoName,
        id: &str,
    ) -> Result<(), RegistryError> {
        authorize(who, repo, PUSH)?;
        let session = self.session(repo, id).await?;
        let _held = session.lock().await;
        self.forget_upload(id).await
    }

    /// Drops a session's row, file and memory.
    pub(super) async fn forget_upload(&self, id: &str) -> Result<(), RegistryError> {
        self.store.delete_upload(id).await?;
        self.sessions.lock().expect("sessions lock").remove(id);
        match tokio::fs::remove_file(self.disk.upload_path(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The session's in-memory state, after checking it exists and belongs to `repo`.
    ///
    /// The entry is taken before the check: a session forgotten in between then fails the
    /// check and its entry is dropped here, and one forgotten after it loses the entry to
    /// `forget_upload`, so no entry outlives its session.
    async fn session(&self, repo: &RepoName, id: &str) -> Result<SessionState, RegistryError> {
        let state = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.entry(id.to_string()).or_default().clone()
        };
        match self.store.upload(id).await? {
            Some(row) if row.repository == repo.as_str() => Ok(state),
            Some(_) => Err(RegistryError::UploadUnknown),
            None => {
                self.sessions.lock().expect("sessions lock").remove(id);
                Err(RegistryError::UploadUnknown)
            }
        }
    }

    /// The session's progress, re-hashing its file if the running hash was lost.
    async fn progress<'a>(
        &self,
        id: &str,
        state: &'a mut Option<Progress>,
    ) -> Result<&'a mut Progress, RegistryError> {
        if state.is_none() {
            let path = self.disk.upload_path(id);
            let (hasher, size) = hash_file(&path, Algorithm::Sha256).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    RegistryError::UploadUnknown
                } else {
                    e.into()
                }
            })?;
            *state = Some(Progress { hasher, size });
        }
        Ok(state.as_mut().expect("set above"))
    }

    /// Appends a body to the session and records the progress. A failed write leaves the
    /// state empty, so the next request re-hashes whatever reached the file.
    async fn write_chunk<S, E>(
        &self,
        id: &str,
        state: &mut Option<Progress>,
        range: Option<ByteRange>,
        body: S,
    ) -> Result<u64, RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let at = self.progress(id, state).await?.size;
        if range.is_some_and(|r| r.start != at) {
            return Err(RegistryError::ChunkOutOfOrder { size: at });
        }
        // Marks the session active, so the collector's grace counts from now.
        self.store
            .set_upload_size(id, at, self.clock.now_ms())
            .await?;
        let Progress { hasher, size } = state.take().expect("progress is set");
        let mut writer = HashingWriter::append_to(&self.disk.upload_path(id), hasher, size).await?;
        writer.write_stream(body).await?;
        let (hasher, size) = writer.pause().await?;
        *state = Some(Progress { hasher, size });
        self.store
            .set_upload_size(id, size, self.clock.now_ms())
            .await?;
        if range.is_some_and(|r| r.end + 1 != size) {
            // Keep what arrived: the client resumes from the `Range` a GET reports.
            return Err(RegistryError::UploadInvalid(
                "chunk length does not match its Content-Range".into(),
            ));
        }
        Ok(size)
    }
}
