//! The registry tables (`migrations/sqlite/0004_registry.sql`): which blobs exist, which
//! repository may see them, manifests with what they reference, tags, upload sessions, and the
//! garbage collector's queries. Digests are stored as `sha256:<hex>` text.

mod blobs;
mod gc;
mod locks;
mod manifests;
mod tags;
mod uploads;

pub use gc::Unreferenced;
pub use locks::{Attributes, Lock, LockKind, LockScope};
pub use manifests::{ManifestRow, NewManifest, Reference, ReferrerRow};
pub use uploads::UploadRow;

use sqlx::SqliteConnection;

use super::events::{self, Event};
use super::{Store, StoreError};

/// The repository's id, creating it on first push.
async fn ensure_repository(
    conn: &mut SqliteConnection,
    name: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO repositories (name, created_at, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(name)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Records that a blob's bytes are on disk; bumps `touched_at` so the garbage collector's
/// grace period starts again.
async fn upsert_blob(
    conn: &mut SqliteConnection,
    digest: &str,
    size: u64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO blobs (digest, size, created_at, touched_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET touched_at = excluded.touched_at",
    )
    .bind(digest)
    .bind(size as i64)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that a blob's bytes are on disk and visible in the repository.
async fn link_blob(
    conn: &mut SqliteConnection,
    repository_id: i64,
    digest: &str,
    size: u64,
    now: i64,
) -> Result<(), StoreError> {
    upsert_blob(&mut *conn, digest, size, now).await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(repository_id)
    .bind(digest)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A blob's size if the named repository (`?1`) may see it (`?2` digest).
const REPOSITORY_BLOB_SIZE: &str = "SELECT b.size FROM blobs b
     JOIN repository_blobs rb ON rb.digest = b.digest
     JOIN repositories r ON r.id = rb.repository_id
     WHERE r.name = ?1 AND b.digest = ?2";

impl Store {
    /// Deletes the row of `table` whose `column` is `key` in the named repository.
    async fn delete_in_repository(
        &self,
        table: &'static str,
        column: &'static str,
        repository: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        delete_in_repository(&mut conn, table, column, repository, key).await
    }

    /// `delete_in_repository`, recording `event` in the same transaction when a row went.
    async fn delete_recorded(
        &self,
        table: &'static str,
        column: &'static str,
        repository: &str,
        key: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = delete_in_repository(&mut tx, table, column, repository, key).await?;
        if deleted {
            events::record(&mut tx, event, events::wall_ms()).await?;
        }
        tx.commit().await?;
        if deleted {
            self.announce_events();
        }
        Ok(deleted)
    }
}

/// Deletes the row of `table` whose `column` is `key` in the named repository, on `conn` (a
/// transaction, say).
pub(super) async fn delete_in_repository(
    conn: &mut SqliteConnection,
    table: &'static str,
    column: &'static str,
    repository: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "DELETE FROM {table}
         WHERE {column} = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)"
    );
    let done = sqlx::query(&sql)
        .bind(key)
        .bind(repository)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
