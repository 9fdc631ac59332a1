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

    /// The size of a blob visible in `repository`, bumping its `touched_at` to `now` if it is
    /// older than `stale_before`: a client that checked a blob exists relies on it staying, so
    /// the collector's grace restarts, but a blob checked recently keeps most of its grace
    /// without a write. Only a stale blob takes SQLite's write lock, in one statement that
    /// re-checks visibility, so the collector cannot delete the row between the check and the
    /// bump.
    pub async fn touch_repository_blob(
        &self,
        repository: &str,
        digest: &str,
        now: i64,
        stale_before: i64,
    ) -> Result<Option<u64>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT b.size, b.touched_at FROM blobs b
             JOIN repository_blobs rb ON rb.digest = b.digest
             JOIN repositories r ON r.id = rb.repository_id
             WHERE r.name = ? AND b.digest = ?",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => return Ok(None),
            Some((size, touched_at)) if touched_at >= stale_before => return Ok(Some(size as u64)),
            Some(_) => {}
        }
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

    /// The repositories that hold a blob, in name order.
    pub async fn repositories_with_blob(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id
             WHERE rb.digest = ? ORDER BY r.name",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }

    /// Removes a blob from a repository; the bytes stay until the collector finds them unused.
    pub async fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool, StoreError> {
        self.delete_in_repository("repository_blobs", "digest", repository, digest)
            .await
    }
}
