//! Pages of a repository's tags and manifests with everything ACR's `/acr/v1/` metadata API
//! shows, keyset-paginated so that listing 10,000 tags costs one indexed query per page
//! rather than a sort of them all per page.

use super::repositories::{
    manifest_row, tag_row, ManifestRow, TagRow, MANIFEST_COLUMNS, TAG_COLUMNS,
};
use super::{Store, StoreError, TagSort};

/// One page of tags, or why there is none.
#[derive(Debug)]
pub enum TagPage {
    /// No such repository.
    NoRepository,
    /// In a time order, `last` must still be a tag: its update time says where the page
    /// starts.
    LastUnknown,
    Tags(Vec<TagRow>),
}

impl Store {
    async fn repository_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let id = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id)
    }

    /// Up to `limit` tags of `repository` after the tag `last`, by name or by last update
    /// (ties by name, in the same direction, so that the index gives the order).
    pub async fn tag_page(
        &self,
        repository: &str,
        sort: TagSort,
        last: Option<&str>,
        limit: u32,
    ) -> Result<TagPage, StoreError> {
        let Some(id) = self.repository_id(repository).await? else {
            return Ok(TagPage::NoRepository);
        };
        let (after, order) = match sort {
            TagSort::Name => ("t.name > ?3", "t.name"),
            TagSort::NewestFirst => (
                "(t.updated_at, t.name) < (?2, ?3)",
                "t.updated_at DESC, t.name DESC",
            ),
            TagSort::OldestFirst => ("(t.updated_at, t.name) > (?2, ?3)", "t.updated_at, t.name"),
        };
        let start = match (sort, last) {
            (TagSort::Name, _) => 0,
            (TagSort::NewestFirst, None) => i64::MAX,
            (TagSort::OldestFirst, None) => i64::MIN,
            (_, Some(last)) => {
                let time = sqlx::query_scalar(
                    "SELECT updated_at FROM tags WHERE repository_id = ? AND name = ?",
                )
                .bind(id)
                .bind(last)
                .fetch_optional(&self.pool)
                .await?;
                match time {
                    Some(time) => time,
                    None => return Ok(TagPage::LastUnknown),
                }
            }
        };
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags t WHERE t.repository_id = ?1 AND {after}
             ORDER BY {order} LIMIT ?4"
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(start)
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(TagPage::Tags(
            rows.iter()
                .map(tag_row)
                .collect::<Result<Vec<_>, StoreError>>()?,
        ))
    }

    /// Up to `limit` manifests of `repository` after the digest `last`, by digest; `None`
    /// when there is no such repository.
    pub async fn manifest_page(
        &self,
        repository: &str,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Option<Vec<ManifestRow>>, StoreError> {
        let Some(id) = self.repository_id(repository).await? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {MANIFEST_COLUMNS} FROM manifests m WHERE m.repository_id = ? AND m.digest > ?
             ORDER BY m.digest LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(manifest_row)
            .collect::<Result<_, _>>()
            .map(Some)
    }
}
