//! The garbage collector's queries. Each deletion re-checks its condition in the statement
//! itself, so a blob referenced or touched after it was listed survives.

use sqlx::Row;

use crate::store::{Store, StoreError};

/// A blob no manifest references.
#[derive(Debug, Clone)]
pub struct Unreferenced {
    pub digest: String,
    pub size: u64,
}

/// The condition that the blob whose digest is the SQL expression `digest` is unreferenced and
/// untouched since the cutoff, bound as `?1`. Listing and deleting share it, so what is listed
/// is what may be deleted.
fn sweepable(digest: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM blobs b WHERE b.digest = {digest} AND b.touched_at < ?1)
         AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = {digest})
         AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.child_digest = {digest})"
    )
}

impl Store {
    /// Blobs no manifest references (a manifest's own bytes count as referenced while it
    /// exists) and untouched since `cutoff`.
    pub async fn unreferenced_blobs(&self, cutoff: i64) -> Result<Vec<Unreferenced>, StoreError> {
        let sql = format!(
            "SELECT digest, size FROM blobs WHERE {} ORDER BY digest",
            sweepable("blobs.digest")
        );
        let rows = sqlx::query(&sql).bind(cutoff).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Unreferenced {
                    digest: r.try_get("digest")?,
                    size: r.try_get::<i64, _>("size")? as u64,
                })
            })
            .collect()
    }

    /// Forgets a blob if it is still sweepable; `true` when it was, and its file may go.
    pub async fn delete_unreferenced_blob(
        &self,
        digest: &str,
        cutoff: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The first write takes SQLite's write lock, so both conditions are judged on the
        // same state and no other writer can slip in between them.
        sqlx::query(&format!(
            "DELETE FROM repository_blobs WHERE digest = ?2 AND {}",
            sweepable("?2")
        ))
        .bind(cutoff)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(&format!(
            "DELETE FROM blobs WHERE digest = ?2 AND {}
             AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = ?2)",
            sweepable("?2")
        ))
        .bind(cutoff)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Upload sessions without progress since `cutoff`.
    pub async fn stale_uploads(&self, cutoff: i64) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ? ORDER BY id")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// Removes a session only if it is still stale, so one resumed meanwhile survives.
    pub async fn delete_stale_upload(&self, id: &str, cutoff: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ? AND updated_at < ?")
            .bind(id)
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Blobs no manifest references that were touched at or after `cutoff`, which the grace
    /// period keeps: how many, and when the last of them was touched.
    pub async fn young_unreferenced_blobs(
        &self,
        cutoff: i64,
    ) -> Result<(u64, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(touched_at) AS newest FROM blobs
             WHERE touched_at >= ?1
             AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = blobs.digest)
             AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.child_digest = blobs.digest)",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get::<i64, _>("n")? as u64, row.try_get("newest")?))
    }
}
