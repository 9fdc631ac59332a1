//! Manifests, what they reference, and the referrers query.

use sqlx::{Row, SqliteConnection};

use super::{ensure_repository, upsert_blob};
use crate::store::events::{self, Event};
use crate::store::{Store, StoreError};

/// Something a manifest needs present in its repository before it may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A config or layer blob.
    Blob(String),
    /// A manifest an index lists.
    Manifest(String),
    /// A foreign or non-distributable layer: fetched from elsewhere, so not required, but
    /// recorded so that garbage collection keeps it when a client did push it.
    ForeignBlob(String),
}

impl Reference {
    fn digest(&self) -> &str {
        match self {
            Reference::Blob(d) | Reference::Manifest(d) | Reference::ForeignBlob(d) => d,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Reference::Blob(_) | Reference::ForeignBlob(_) => "blob",
            Reference::Manifest(_) => "manifest",
        }
    }
}

/// A manifest to store, already parsed and verified by the service.
pub struct NewManifest<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub size: u64,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// A JSON object, as text.
    pub annotations: Option<String>,
    pub platforms: &'a [String],
    pub references: &'a [Reference],
    pub tag: Option<&'a str>,
    pub run_id: Option<&'a str>,
    pub now: i64,
}

/// What serving a manifest needs.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// A manifest whose subject is the one asked about.
#[derive(Debug, Clone)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    /// A JSON object, as text.
    pub annotations: Option<String>,
}

/// The first reference the repository does not hold.
async fn first_missing(
    conn: &mut SqliteConnection,
    repository_id: i64,
    references: &[Reference],
) -> Result<Option<String>, StoreError> {
    for reference in references {
        let sql = match reference {
            Reference::Blob(_) => {
                "SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?"
            }
            Reference::Manifest(_) => {
                "SELECT 1 FROM manifests WHERE repository_id = ? AND digest = ?"
            }
            Reference::ForeignBlob(_) => continue,
        };
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(repository_id)
            .bind(reference.digest())
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_none() {
            return Ok(Some(reference.digest().to_string()));
        }
    }
    Ok(None)
}

impl Store {
    /// The first of `references` that `repository` does not hold, checked before a manifest's
    /// bytes are written; `put_manifest` checks again in its transaction.
    pub async fn missing_reference(
        &self,
        repository: &str,
        references: &[Reference],
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repository)
            .fetch_optional(&mut *conn)
            .await?;
        let required = references
            .iter()
            .find(|r| !matches!(r, Reference::ForeignBlob(_)));
        match (id, required) {
            (Some(id), _) => first_missing(&mut conn, id, references).await,
            (None, Some(first)) => Ok(Some(first.digest().to_string())),
            (None, None) => Ok(None),
        }
    }

    /// Stores a manifest and moves its tag, if any, in one transaction. `Ok(Err(digest))`
    /// names a reference the repository does not hold; then nothing is stored.
    pub async fn put_manifest(
        &self,
        m: &NewManifest<'_>,
    ) -> Result<Result<(), String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let repository_id = ensure_repository(&mut tx, m.repository, m.now).await?;
        if let Some(missing) = first_missing(&mut tx, repository_id, m.references).await? {
            tx.rollback().await?;
            return Ok(Err(missing));
        }
        // The manifest's own bytes are a blob, so they count for the collector like any other;
        // they are not linked to the repository, whose blob endpoints serve layers and configs.
        upsert_blob(&mut tx, m.digest, m.size, m.now).await?;
        sqlx::query(
            "INSERT INTO manifests (repository_id, digest, media_type, size, artifact_type, subject,
                 annotations, platforms, created_at, updated_at, run_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (repository_id, digest) DO UPDATE SET
                 updated_at = excluded.updated_at,
                 run_id = COALESCE(excluded.run_id, manifests.run_id)",
        )
        .bind(repository_id)
        .bind(m.digest)
        .bind(m.media_type)
        .bind(m.size as i64)
        .bind(m.artifact_type)
        .bind(m.subject)
        .bind(&m.annotations)
        .bind(serde_json::to_string(m.platforms).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(m.now)
        .bind(m.now)
        .bind(m.run_id)
        .execute(&mut *tx)
        .await?;
        for reference in m.references {
            sqlx::query(
                "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, child_kind)
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(repository_id)
            .bind(m.digest)
            .bind(reference.digest())
            .bind(reference.kind())
            .execute(&mut *tx)
            .await?;
        }
        // What the push changed, for the events outbox: a tag pushed again with the same
        // digest changes nothing and records nothing.
        let mut changed = true;
        let mut previous = None;
        if let Some(tag) = m.tag {
            previous = sqlx::query_scalar(
                "SELECT manifest_digest FROM tags WHERE repository_id = ? AND name = ?",
            )
            .bind(repository_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?;
            changed = previous.as_deref() != Some(m.digest);
            // A tag keeps its creation time; `updated_at` says when it last moved.
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, created_at, updated_at, run_id)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (repository_id, name) DO UPDATE SET
                     manifest_digest = excluded.manifest_digest,
                     updated_at = excluded.updated_at,
                     run_id = excluded.run_id
                 WHERE tags.manifest_digest <> excluded.manifest_digest",
            )
            .bind(repository_id)
            .bind(tag)
            .bind(m.digest)
            .bind(m.now)
            .bind(m.now)
            .bind(m.run_id)
            .execute(&mut *tx)
            .await?;
        }
        if changed {
            let event = Event::Push {
                repository: m.repository.to_string(),
                tag: m.tag.map(str::to_string),
                digest: m.digest.to_string(),
                previous,
                run_id: m.run_id.map(str::to_string),
            };
            events::record(&mut tx, &event, m.now).await?;
        }
        tx.commit().await?;
        if changed {
            self.announce_events();
        }
        Ok(Ok(()))
    }

    pub async fn manifest_by_digest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ManifestRow>, StoreError> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.size FROM manifests m
             JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = ? AND m.digest = ?",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| manifest_row(&r)).transpose()
    }

    pub async fn manifest_by_tag(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<ManifestRow>, StoreError> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.size FROM tags t
             JOIN repositories r ON r.id = t.repository_id
             JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
             WHERE r.name = ? AND t.name = ?",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| manifest_row(&r)).transpose()
    }

    /// Deletes a manifest and, by cascade, its tags and references.
    pub async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<bool, StoreError> {
        self.delete_in_repository("manifests", "digest", repository, digest)
            .await
    }

    /// Manifests of `repository` whose subject is `subject`, oldest first, optionally only
    /// those of one artifact type.
    pub async fn referrers(
        &self,
        repository: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ReferrerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
             JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = ? AND m.subject = ? AND (? IS NULL OR m.artifact_type = ?)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repository)
        .bind(subject)
        .bind(artifact_type)
        .bind(artifact_type)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReferrerRow {
                    digest: r.try_get("digest")?,
                    media_type: r.try_get("media_type")?,
                    size: r.try_get::<i64, _>("size")? as u64,
                    artifact_type: r.try_get("artifact_type")?,
                    annotations: r.try_get("annotations")?,
                })
            })
            .collect()
    }
}

fn manifest_row(r: &sqlx::sqlite::SqliteRow) -> Result<ManifestRow, StoreError> {
    Ok(ManifestRow {
        digest: r.try_get("digest")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get::<i64, _>("size")? as u64,
    })
}
