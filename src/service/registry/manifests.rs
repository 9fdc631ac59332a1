//! Pushing, fetching and deleting manifests.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::access::{authorize, PUSH};
use super::digest::{Algorithm, Digest, Hasher};
use super::manifest::{self, config_platform, IMAGE_CONFIGS};
use super::{Reference, RegistryError, RegistryService, RepoName, MAX_MANIFEST_BYTES};
use crate::access::{Action, Principal};
use crate::service::locks::{delete_refusal, push_refusal, LockScope};
use crate::store::registry::{ManifestRow, NewManifest};

/// Image configs read for their platform are small; larger ones are left unread.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What a manifest push stored.
pub struct PushedManifest {
    pub digest: Digest,
    /// The subject's digest, for the `OCI-Subject` header.
    pub subject: Option<String>,
}

/// A manifest to serve; `body` is absent for HEAD.
pub struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub body: Option<Bytes>,
}

impl RegistryService {
    /// Verifies and stores a manifest under a tag or its digest. Everything it references
    /// must already be in the repository.
    pub async fn put_manifest(
        &self,
        who: &Principal,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: impl std::future::Future<Output = Result<Bytes, RegistryError>>,
    ) -> Result<PushedManifest, RegistryError> {
        authorize(who, repo, PUSH)?;
        // Read only once authorised: a refused client gets its answer without sending 4 MiB.
        let body = body.await?;
        let run_id = who.run_id();
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(RegistryError::ManifestTooLarge);
        }
        // Stored under sha256, unless pushed by a digest of another algorithm: then that one,
        // so that the digest the client named finds it.
        let algorithm = match reference {
            Reference::Digest(expected) => expected.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let mut hasher = Hasher::new(algorithm);
        hasher.update(&body);
        let digest = hasher.finish();
        if let Reference::Digest(expected) = reference {
            super::blobs::verify(expected, &digest)?;
        }
        let parsed = manifest::parse(&body, content_type)?;
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        if let Some(refusal) =
            push_refusal(&self.store, repo.as_str(), tag, digest.as_str()).await?
        {
            return Err(RegistryError::Locked(refusal));
        }
        if let Some(missing) = self
            .store
            .missing_reference(repo.as_str(), &parsed.references)
            .await?
        {
            return Err(RegistryError::ManifestBlobUnknown(missing));
        }
        let platforms = match &parsed.config {
            Some(config) => self.image_platform(config).await.into_iter().collect(),
            None => parsed.platforms.clone(),
        };
        let temp = self.disk.temp_file()?;
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(&body).await?;
        file.sync_data().await?;
        drop(file);
        let row = NewManifest {
            repository: repo.as_str(),
            digest: digest.as_str(),
            media_type: &parsed.media_type,
            size: body.len() as u64,
            artifact_type: parsed.artifact_type.as_deref(),
            subject: parsed.subject.as_deref(),
            annotations: parsed.annotations.as_ref().map(|a| a.to_string()),
            platforms: &platforms,
            references: &parsed.references,
            tag,
            run_id,
            now: self.clock.now_ms(),
        };
        {
            let _writing = self.sweep.read().await;
            self.disk.commit(&temp, &digest).await?;
            self.store
                .put_manifest(&row)
                .await?
                .map_err(RegistryError::ManifestBlobUnknown)?;
        }
        tracing::info!(repository = %repo, manifest.digest = %digest, reference = %reference, "manifest pushed");
        Ok(PushedManifest {
            digest,
            subject: parsed.subject,
        })
    }

    /// A manifest by tag or digest, with its bytes when `with_body`.
    pub async fn get_manifest(
        &self,
        who: &Principal,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> Result<StoredManifest, RegistryError> {
        authorize(who, repo, &[Action::Pull])?;
        let row = match reference {
            Reference::Tag(t) => {
                self.store
                    .manifest_by_tag(repo.as_str(), t.as_str())
                    .await?
            }
            Reference::Digest(d) => {
                self.store
                    .manifest_by_digest(repo.as_str(), d.as_str())
                    .await?
            }
        };
        let ManifestRow {
            digest,
            media_type,
            size,
        } = row.ok_or_else(|| RegistryError::ManifestUnknown(reference.to_string()))?;
        let body = if with_body {
            let parsed: Digest = digest
                .parse()
                .map_err(|e| std::io::Error::other(format!("stored manifest digest: {e}")))?;
            Some(Bytes::from(
                tokio::fs::read(self.disk.blob_path(&parsed)).await?,
            ))
        } else {
            None
        };
        Ok(StoredManifest {
            digest,
            media_type,
            size,
            body,
        })
    }

    /// By tag: removes just the tag. By digest: removes the manifest and its tags.
    pub async fn delete_manifest(
        &self,
        who: &Principal,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(), RegistryError> {
        authorize(who, repo, &[Action::Delete])?;
        let scope = match reference {
            Reference::Tag(t) => LockScope::Tag(t.as_str()),
            Reference::Digest(d) => LockScope::Manifest(d.as_str()),
        };
        if let Some(refusal) = delete_refusal(&self.store, repo.as_str(), scope).await? {
            return Err(RegistryError::Locked(refusal));
        }
        let deleted = match reference {
            Reference::Tag(t) => self.store.delete_tag(repo.as_str(), t.as_str()).await?,
            Reference::Digest(d) => {
                self.store
                    .delete_manifest(repo.as_str(), d.as_str())
                    .await?
            }
        };
        if deleted {
            Ok(())
        } else {
            Err(RegistryError::ManifestUnknown(reference.to_string()))
        }
    }

    /// An image manifest's platform, from its config's os, architecture and variant. A config
    /// that is not an image config (an artifact's) names no platform.
    async fn image_platform(&self, config: &manifest::Descriptor) -> Option<String> {
        let is_image = config
            .media_type
            .as_deref()
            .is_some_and(|m| IMAGE_CONFIGS.contains(&m));
        if !is_image || config.size < 0 || config.size as u64 > MAX_CONFIG_BYTES {
            return None;
        }
        let digest: Digest = config.digest.parse().ok()?;
        let mut bytes = Vec::with_capacity(config.size as usize);
        let file = self.disk.open(&digest).await.ok()?;
        file.take(MAX_CONFIG_BYTES)
            .read_to_end(&mut bytes)
            .await
            .ok()?;
        config_platform(&bytes)
    }
}
