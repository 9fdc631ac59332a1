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
        let rows = sqlx::query(&tag_page_sql(sort))
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

/// The page after (`?2` update time, `?3` name) in repository `?1`, `?4` tags at most: a
/// range of the primary key or of `tags_by_update`, read in index order.
fn tag_page_sql(sort: TagSort) -> String {
    let (after, order) = match sort {
        TagSort::Name => ("t.name > ?3", "t.name"),
        TagSort::NewestFirst => (
            "(t.updated_at, t.name) < (?2, ?3)",
            "t.updated_at DESC, t.name DESC",
        ),
        TagSort::OldestFirst => ("(t.updated_at, t.name) > (?2, ?3)", "t.updated_at, t.name"),
    };
    format!(
        "SELECT {TAG_COLUMNS} FROM tags t WHERE t.repository_id = ?1 AND {after}
         ORDER BY {order} LIMIT ?4"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::registry::NewManifest;

    /// `tags` tags on one manifest, in one transaction, updated in name order two at a time.
    async fn seed(store: &Store, tags: usize) {
        let manifest = NewManifest {
            repository: "app/web",
            digest: "sha256:aa",
            media_type: "application/vnd.oci.image.manifest.v1+json",
            size: 2,
            artifact_type: None,
            subject: None,
            annotations: None,
            platforms: &[],
            references: &[],
            tag: None,
            run_id: None,
            now: 0,
        };
        store.put_manifest(&manifest).await.unwrap().unwrap();
        let mut tx = store.pool.begin().await.unwrap();
        for i in 0..tags {
            // Pairs share a time, so ties are broken by name.
            let time = (i / 2 * 2) as i64;
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, created_at, updated_at)
                 VALUES (1, ?, 'sha256:aa', ?, ?)",
            )
            .bind(format!("t{i:05}"))
            .bind(time)
            .bind(time)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    async fn every_page(store: &Store, sort: TagSort, n: u32) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            let last = names.last().cloned();
            let TagPage::Tags(rows) = store
                .tag_page("app/web", sort, last.as_deref(), n)
                .await
                .unwrap()
            else {
                panic!("no page after {last:?}");
            };
            let done = rows.len() < n as usize;
            names.extend(rows.into_iter().map(|r| r.name));
            if done {
                return names;
            }
        }
    }

    #[tokio::test]
    async fn pages_of_ten_thousand_tags_are_index_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        seed(&store, 10_000).await;
        for sort in [TagSort::Name, TagSort::NewestFirst, TagSort::OldestFirst] {
            let sql = format!("EXPLAIN QUERY PLAN {}", tag_page_sql(sort));
            let explain = sqlx::query(&sql)
                .bind(1_i64)
                .bind(0_i64)
                .bind("")
                .bind(100_i64);
            let plan = crate::store::query_plan(&store, explain).await;
            assert!(
                plan.iter()
                    .all(|d| d.starts_with("SEARCH") && !d.contains("TEMP B-TREE")),
                "{sort:?}: {plan:?}"
            );
        }
        let started = Instant::now();
        let newest = every_page(&store, TagSort::NewestFirst, 1000).await;
        let elapsed = started.elapsed();
        let mut expected: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
        expected.reverse();
        assert_eq!(newest, expected);
        let oldest = every_page(&store, TagSort::OldestFirst, 999).await;
        expected.reverse();
        assert_eq!(oldest, expected);
        assert_eq!(every_page(&store, TagSort::Name, 1000).await, expected);
        eprintln!("10,000 tags newest first in pages of 1000: {elapsed:?}");
        let gone = store.tag_page("app/web", TagSort::NewestFirst, Some("gone"), 10);
        assert!(matches!(gone.await.unwrap(), TagPage::LastUnknown));
    }
}
