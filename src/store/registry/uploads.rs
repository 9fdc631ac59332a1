//! Blob upload sessions.

use sqlx::Row;

use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub repository: String,
}

impl Store {
    pub async fn create_upload(
        &self,
        id: &str,
        repository: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO uploads (id, repository, size, started_at, updated_at) VALUES (?, ?, 0, ?, ?)")
            .bind(id)
            .bind(repository)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, StoreError> {
        let row = sqlx::query("SELECT repository FROM uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(UploadRow {
                repository: r.try_get("repository")?,
            })
        })
        .transpose()
    }

    /// Records progress; `updated_at` is what the collector's grace counts from.
    pub async fn set_upload_size(&self, id: &str, size: u64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?")
            .bind(size as i64)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
