//! Blobs of a repository: existence checks, downloads (whole or ranged), monolithic uploads,
//! cross-repository mounts and unlinking.

use std::io::SeekFrom;
use std::path::Path;

use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncSeekExt;

use super::access::{authorize, scope, PUSH};
use super::digest::{Digest, Hasher};
use super::disk::HashingWriter;
use super::download::stream_file;
use super::ranges::{parse_range, ByteRange};
use super::{RegistryError, RegistryService, RepoName};
use crate::access::{AccessError, Action, Principal};

/// A blob download: the file positioned at the start of what to send.
pub struct BlobRead {
    file: std::fs::File,
    /// The whole blob's size.
    pub size: u64,
    /// The part asked for, if not the whole.
    pub range: Option<ByteRange>,
}

impl BlobRead {
    /// The bytes to send: the range asked for, else the whole blob.
    pub fn length(&self) -> u64 {
        self.range.map_or(self.size, |r| r.length())
    }

    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> {
        let length = self.length();
        stream_file(self.file, length)
    }
}

impl RegistryService {
    /// The blob's size. Counts as use: a client that checked for a blob before pushing a
    /// manifest relies on it staying, so the collector's grace starts again, unless the blob
    /// was used within the last half of the grace period. That keeps every check free of
    /// database writes but the first in a while, and still leaves a checked blob at least half
    /// the grace period before it may be collected.
    pub async fn stat_blob(
        &self,
        who: &Principal,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<u64, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let now = self.clock.now_ms();
        let half_grace = i64::try_from(self.gc_grace.as_millis() / 2).unwrap_or(i64::MAX);
        self.store
            .touch_repository_blob(repo.as_str(), digest.as_str(), now, now - half_grace)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    pub async fn read_blob(
        &self,
        who: &Principal,
        repo: &RepoName,
        digest: &Digest,
        range: Option<&str>,
    ) -> Result<BlobRead, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let size = self
            .store
            .repository_blob(repo.as_str(), digest.as_str())
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        let range = parse_range(range, size)?;
        let mut file = self.disk.open(digest).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                tracing::warn!(blob.digest = %digest, "blob recorded but its file is missing");
                RegistryError::BlobUnknown(digest.clone())
            } else {
                e.into()
            }
        })?;
        if let Some(r) = range {
            file.seek(SeekFrom::Start(r.start)).await?;
        }
        Ok(BlobRead {
            file: file.into_std().await,
            size,
            range,
        })
    }

    /// Removes the blob from the repository; the bytes go when the collector finds them unused.
    pub async fn delete_blob(
        &self,
        who: &Principal,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        authorize(who, repo, &[Action::Delete])?;
        if self
            .store
            .unlink_blob(repo.as_str(), digest.as_str())
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// A blob sent whole in one request, verified against `digest`.
    pub async fn put_blob<S, E>(
        &self,
        who: &Principal,
        repo: &RepoName,
        digest: &Digest,
        body: S,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        authorize(who, repo, PUSH)?;
        let temp = self.disk.temp_file()?;
        let hasher = Hasher::new(digest.algorithm());
        let mut writer = HashingWriter::append_to(&temp, hasher, 0).await?;
        writer.write_stream(body).await?;
        let (actual, size) = writer.sync().await?;
        verify(digest, &actual)?;
        self.commit_blob(repo, &temp, digest, size).await
    }

    /// Makes `from`'s blob visible in `to`. A mount needs pull on `from` as well, so a refusal
    /// challenges for both scopes, as the distribution registry does: a client that takes its
    /// scopes from the challenge then asks for a token that lets the mount succeed. `false`
    /// when `from` does not hold the blob or `who` may never read it: the client then gets an
    /// upload session and pushes the bytes itself, and learns nothing about `from`.
    pub async fn mount_blob(
        &self,
        who: &Principal,
        from: &RepoName,
        to: &RepoName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let both = || {
            let source = scope(from, &[Action::Pull]);
            format!("{} {source}", scope(to, PUSH))
        };
        authorize(who, to, PUSH).map_err(|e| match e {
            RegistryError::Access { error, .. } => RegistryError::Access {
                error,
                scope: both(),
            },
            e => e,
        })?;
        match who.authorize(from.as_str(), Action::Pull) {
            Ok(()) => {}
            Err(error @ AccessError::InsufficientScope) => {
                return Err(RegistryError::Access {
                    error,
                    scope: both(),
                })
            }
            Err(_) => return Ok(false),
        }
        let mounted = self
            .store
            .mount_blob(
                from.as_str(),
                to.as_str(),
                digest.as_str(),
                self.clock.now_ms(),
            )
            .await?;
        Ok(mounted.is_some())
    }

    /// A mount without a source (OCI 1.1): makes the blob visible in `to` if a repository the
    /// caller's token holder may pull has it. The holder's rights count, not a registry
    /// token's scopes: the holder could name that source and get a token for it anyway, so
    /// this reveals nothing it could not read. `false` (an upload session) otherwise.
    pub async fn mount_blob_from_anywhere(
        &self,
        who: &Principal,
        to: &RepoName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        authorize(who, to, PUSH)?;
        let Some(holder) = who.subject() else {
            return Ok(false);
        };
        let sources = self.store.repositories_with_blob(digest.as_str()).await?;
        let Some(from) = sources
            .iter()
            .find(|name| holder.permits(name, Action::Pull))
        else {
            return Ok(false);
        };
        let mounted = self
            .store
            .mount_blob(from, to.as_str(), digest.as_str(), self.clock.now_ms())
            .await?;
        Ok(mounted.is_some())
    }

    /// Renames a verified, synced file into place and records it, shut out from the
    /// collector's deletes so it cannot remove the file between the two.
    pub(super) async fn commit_blob(
        &self,
        repo: &RepoName,
        file: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<(), RegistryError> {
        let _writing = self.sweep.read().await;
        self.disk.commit(file, digest).await?;
        self.store
            .record_blob(repo.as_str(), digest.as_str(), size, self.clock.now_ms())
            .await?;
        tracing::debug!(repository = %repo, blob.digest = %digest, size_bytes = size, "blob stored");
        Ok(())
    }
}

/// Content whose hash is not the digest the client announced is refused.
pub(super) fn verify(expected: &Digest, actual: &Digest) -> Result<(), RegistryError> {
    if expected == actual {
        Ok(())
    } else {
        Err(RegistryError::DigestInvalid(format!(
            "content hashes to {actual}, not {expected}"
        )))
    }
}
