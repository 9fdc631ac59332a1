//! Tags and the repository catalog.

use crate::store::events::Event;
use crate::store::{Store, StoreError};

impl Store {
    /// Up to `limit` tags of `repository` after `last`, in lexical order; `None` when the
    /// repository does not exist.
    pub async fn list_tags(
        &self,
        repository: &str,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
        )
        .bind(id)
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(tags))
    }

    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, StoreError> {
        let event = Event::Delete {
            repository: repository.to_string(),
            tag: Some(tag.to_string()),
            digest: None,
        };
        self.delete_recorded("tags", "name", repository, tag, &event)
            .await
    }

    /// Up to `limit` repository names after `last`, in lexical order.
    pub async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let names = sqlx::query_scalar(
            "SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(names)
    }
}
