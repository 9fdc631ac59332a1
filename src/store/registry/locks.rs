//! Locks, ACR's changeableAttributes (`writeEnabled`, `deleteEnabled`), on repositories, tags
//! and manifests (migration 0018): reading the locks that bear on a push or a delete, and
//! changing them. What a lock refuses is the services' rule; this only reads and writes.

use sqlx::Row;

use crate::store::{Store, StoreError};

/// A repository's, tag's or manifest's `writeEnabled` and `deleteEnabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    pub write_enabled: bool,
    pub delete_enabled: bool,
}

impl Default for Attributes {
    fn default() -> Attributes {
        Attributes {
            write_enabled: true,
            delete_enabled: true,
        }
    }
}

impl Attributes {
    pub(in crate::store) fn from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Self, StoreError> {
        Ok(Attributes {
            write_enabled: r.try_get("write_enabled")?,
            delete_enabled: r.try_get("delete_enabled")?,
        })
    }
}

/// What a lock is on, within one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope<'a> {
    Repository,
    Tag(&'a str),
    /// A manifest by digest.
    Manifest(&'a str),
}

/// Something locked: a repository, tag or manifest with either attribute off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub kind: LockKind,
    /// The repository's name, the tag's name or the manifest's digest.
    pub name: String,
    /// For a tag, the digest it points at.
    pub digest: Option<String>,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Repository,
    Tag,
    Manifest,
}

/// The locked repository itself, then locked tags, then locked manifests of repository `?1`;
/// `?2` and `?3` narrow tags and manifests (`NULL`: every one; `''`: none).
const LOCKS: &str = "
    SELECT 'repository' AS kind, r.name, NULL AS digest, r.write_enabled, r.delete_enabled
    FROM repositories r
    WHERE r.name = ?1 AND (r.write_enabled = 0 OR r.delete_enabled = 0)
    UNION ALL
    SELECT * FROM (SELECT 'tag', t.name, t.manifest_digest, t.write_enabled, t.delete_enabled
        FROM tags t JOIN repositories r ON r.id = t.repository_id
        WHERE r.name = ?1 AND (t.write_enabled = 0 OR t.delete_enabled = 0)
          AND (?2 IS NULL OR t.name = ?2 OR t.manifest_digest = ?3)
        ORDER BY t.name LIMIT 10)
    UNION ALL
    SELECT * FROM (SELECT 'manifest', m.digest, NULL, m.write_enabled, m.delete_enabled
        FROM manifests m JOIN repositories r ON r.id = m.repository_id
        WHERE r.name = ?1 AND (m.write_enabled = 0 OR m.delete_enabled = 0)
          AND (?3 IS NULL OR m.digest = ?3)
        ORDER BY m.digest LIMIT 10)";

impl Store {
    /// The locks that bear on `scope` in `repository`, in one query: the repository's own;
    /// for a tag, that tag's; for a manifest, its own and those of the tags pointing at it;
    /// for the whole repository, the first few locked tags and manifests in it. Only locked
    /// things are listed.
    pub async fn locks(
        &self,
        repository: &str,
        scope: LockScope<'_>,
    ) -> Result<Vec<Lock>, StoreError> {
        let (tag, digest) = match scope {
            LockScope::Repository => (None, None),
            // No manifest has the empty digest, so `''` selects none.
            LockScope::Tag(t) => (Some(t), Some("")),
            LockScope::Manifest(d) => (Some(""), Some(d)),
        };
        let rows = sqlx::query(LOCKS)
            .bind(repository)
            .bind(tag)
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind = match r.try_get::<&str, _>("kind")? {
                    "repository" => LockKind::Repository,
                    "tag" => LockKind::Tag,
                    _ => LockKind::Manifest,
                };
                Ok(Lock {
                    kind,
                    name: r.try_get("name")?,
                    digest: r.try_get("digest")?,
                    attributes: Attributes::from_row(r)?,
                })
            })
            .collect()
    }

    /// Sets the attributes given (`None` leaves one as it is) of a repository, tag or manifest;
    /// the attributes it now has, or `None` when there is no such thing.
    pub async fn set_attributes(
        &self,
        repository: &str,
        scope: LockScope<'_>,
        write_enabled: Option<bool>,
        delete_enabled: Option<bool>,
    ) -> Result<Option<Attributes>, StoreError> {
        const SET: &str = "SET write_enabled = COALESCE(?1, write_enabled),
            delete_enabled = COALESCE(?2, delete_enabled)";
        const IN_REPOSITORY: &str = "repository_id = (SELECT id FROM repositories WHERE name = ?3)";
        let sql = match scope {
            // `?4` is NULL here; naming it keeps the four bindings the same for every scope.
            LockScope::Repository => {
                format!("UPDATE repositories {SET} WHERE name = ?3 AND ?4 IS NULL")
            }
            LockScope::Tag(_) => format!("UPDATE tags {SET} WHERE {IN_REPOSITORY} AND name = ?4"),
            LockScope::Manifest(_) => {
                format!("UPDATE manifests {SET} WHERE {IN_REPOSITORY} AND digest = ?4")
            }
        };
        let key = match scope {
            LockScope::Repository => None,
            LockScope::Tag(k) | LockScope::Manifest(k) => Some(k),
        };
        let row = sqlx::query(&format!("{sql} RETURNING write_enabled, delete_enabled"))
            .bind(write_enabled)
            .bind(delete_enabled)
            .bind(repository)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Attributes::from_row).transpose()
    }
}
