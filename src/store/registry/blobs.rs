//! Blobs and their visibility in repositories.

use super::{ensure_repository, link_blob, REPOSITORY_BLOB_SIZE};
use crate::store::{Store, StoreError};

impl Store {
    /// Records an uploaded blob in `repository`, creating the repository on first push.
    pub async fn record_blob(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let repository_id = ensure_repository(&mut tx, repository, now).await?;
        link_blob(&mut tx, repository_id, digest, size, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The size of a blob visible in `repository`, bumping its `touched_at`: a client that
    /// checked a blob exists relies on it staying, so the collector's grace restarts. One
    /// statement, so the collector cannot delete the row between the check and the bump.
    pub async fn touch_repository_blob(
        &self,
        repository: &str,
        digest: &str,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(
            "UPDATE blobs SET touched_at = ?
             WHERE digest = ? AND EXISTS (
                 SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
                 WHERE r.name = ? AND rb.digest = blobs.digest)
             RETURNING size",
        )
        .bind(now)
        .bind(digest)
        .bind(repository)
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    /// The size of a blob visible in `repository`, without bumping it (plain downloads).
    pub async fn repository_blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar(REPOSITORY_BLOB_SIZE)
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    /// Makes a blob of `from` visible in `to` as well. `None` when `from` does not have it.
    pub async fn mount_blob(
        &self,
        from: &str,
        to: &str,
        digest: &str,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let size: Option<i64> = sqlx::query_scalar(REPOSITORY_BLOB_SIZE)
            .bind(from)
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(size) = size else {
            return Ok(None);
        };
        let repository_id = ensure_repository(&mut tx, to, now).await?;
        link_blob(&mut tx, repository_id, digest, size as u64, now).await?;
        tx.commit().await?;
        Ok(Some(size as u64))
    }

    /// Removes a blob from a repository; the bytes stay until the collector finds them unused.
    pub async fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool, StoreError> {
        self.delete_in_repository("repository_blobs", "digest", repository, digest)
            .await
    }
}
