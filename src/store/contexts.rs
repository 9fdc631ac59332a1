//! Who may read an uploaded build context: the `context_uploads` table and the runs that
//! build one (`runs.context_digest`). The archives themselves are files, not rows.

use super::runs::{from_row, RunRow};
use super::{Store, StoreError};

impl Store {
    /// Records that the token uploaded the context; uploading it again changes nothing.
    pub async fn record_context_upload(
        &self,
        digest: &str,
        token_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO context_uploads (digest, token_id, uploaded_at) VALUES (?, ?, ?)
             ON CONFLICT (digest, token_id) DO NOTHING",
        )
        .bind(digest)
        .bind(token_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the token uploaded the context.
    pub async fn context_uploaded_by(
        &self,
        digest: &str,
        token_id: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM context_uploads WHERE digest = ? AND token_id = ?")
                .bind(digest)
                .bind(token_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// The runs that build the uploaded context, newest first.
    pub async fn runs_with_context(&self, digest: &str) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM runs WHERE context_digest = ? ORDER BY seq DESC")
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| from_row(r, &self.sealer)).collect()
    }
}
