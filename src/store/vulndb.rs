//! The vulnerability database: `vuln_sources`, `vuln_records` (OSV JSON), the
//! (ecosystem, normalised name) → record index `vuln_packages`, and the version in `vuln_db`
//! that every import bumps.

use std::collections::BTreeSet;

use kiln_worker::protocol::{DatabaseState, SourceState};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError};
use crate::vuln::{Ecosystem, Record};

/// Rows per multi-row INSERT: 5 values each, well under SQLite's 32,766 bound parameters.
const ROWS_PER_INSERT: usize = 500;

/// A record to store, with the index keys it is found under.
pub struct NewRecord {
    pub osv_id: String,
    pub modified: String,
    /// The record as JSON.
    pub json: String,
    /// `(ecosystem, normalised name)`; empty for a withdrawn record.
    pub keys: Vec<(String, String)>,
}

impl NewRecord {
    /// Serialises `record` and works out its keys.
    pub fn of(record: &Record) -> Result<NewRecord, serde_json::Error> {
        let mut keys = BTreeSet::new();
        if record.withdrawn.is_none() {
            for package in record.affected.iter().filter_map(|a| a.package.as_ref()) {
                let ecosystem = Ecosystem::parse(&package.ecosystem);
                let name = ecosystem.normalise_name(&package.name);
                keys.insert((ecosystem.to_string(), name));
            }
        }
        Ok(NewRecord {
            osv_id: record.id.clone(),
            modified: rfc3339(record.modified),
            json: serde_json::to_string(record)?,
            keys: keys.into_iter().collect(),
        })
    }
}

/// How `modified` times are stored and shown: seconds, with fractions only where given.
pub fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A stored record found for one key.
pub struct FoundRecord {
    pub record_id: i64,
    pub json: String,
}

impl Store {
    /// Replaces every record of `source` with `records` in one transaction, and bumps the
    /// database version: the source as it now stands.
    pub async fn replace_vuln_source(
        &self,
        source: &str,
        records: &[NewRecord],
        newest_modified: Option<&str>,
        now: i64,
    ) -> Result<SourceState, StoreError> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM vuln_packages WHERE source = ?")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM vuln_records WHERE source = ?")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        let version: i64 =
            sqlx::query_scalar("UPDATE vuln_db SET version = version + 1 RETURNING version")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO vuln_sources (name, records, newest_modified, imported_at, db_version)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET records = excluded.records,
                 newest_modified = excluded.newest_modified,
                 imported_at = excluded.imported_at, db_version = excluded.db_version",
        )
        .bind(source)
        .bind(records.len() as i64)
        .bind(newest_modified)
        .bind(now)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        // Ids are given here rather than read back, so rows go in by the hundred: one
        // statement per record took most of an import. The write lock is held, so the
        // range is free.
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM vuln_records")
            .fetch_one(&mut *tx)
            .await?;
        let ids = (first..).zip(records);
        let rows: Vec<(i64, &NewRecord)> = ids.collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO vuln_records (id, source, osv_id, modified, record) ",
            );
            insert.push_values(chunk, |mut row, (id, record)| {
                row.push_bind(*id)
                    .push_bind(source)
                    .push_bind(record.osv_id.as_str())
                    .push_bind(record.modified.as_str())
                    .push_bind(record.json.as_str());
            });
            insert.build().execute(&mut *tx).await?;
        }
        let keys: Vec<(i64, &(String, String))> = rows
            .iter()
            .flat_map(|(id, record)| record.keys.iter().map(move |key| (*id, key)))
            .collect();
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO vuln_packages (ecosystem, name, record_id, source) ",
            );
            insert.push_values(chunk, |mut row, (id, (ecosystem, name))| {
                row.push_bind(ecosystem.as_str())
                    .push_bind(name.as_str())
                    .push_bind(*id)
                    .push_bind(source);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(SourceState {
            name: source.to_string(),
            records: records.len() as u64,
            newest_modified: newest_modified.map(str::to_string),
            imported_at: now,
        })
    }

    /// The database version and every source, by name.
    pub async fn vuln_database(&self) -> Result<DatabaseState, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM vuln_db WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT name, records, newest_modified, imported_at FROM vuln_sources ORDER BY name",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DatabaseState {
            version,
            sources: rows.iter().map(source_state).collect(),
        })
    }

    /// The records indexed under any of `keys` (`(ecosystem, normalised name)`), each once,
    /// in one query.
    pub async fn vuln_records_for(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<FoundRecord>, StoreError> {
        let keys = serde_json::to_string(keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT r.id, r.record FROM vuln_records r WHERE r.id IN (
                 SELECT p.record_id FROM vuln_packages p
                 JOIN (SELECT json_extract(value, '$[0]') AS ecosystem,
                         json_extract(value, '$[1]') AS name FROM json_each(?)) k
                   ON p.ecosystem = k.ecosystem AND p.name = k.name)
             ORDER BY r.id",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| FoundRecord {
                record_id: row.get("id"),
                json: row.get("record"),
            })
            .collect())
    }

    /// Which of `ecosystems` have at least one record.
    pub async fn vuln_ecosystems_covered(
        &self,
        ecosystems: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let list =
            serde_json::to_string(ecosystems).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query_scalar(
            "SELECT e.value FROM json_each(?) e
             WHERE EXISTS (SELECT 1 FROM vuln_packages p WHERE p.ecosystem = e.value)",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?)
    }
}

fn source_state(row: &SqliteRow) -> SourceState {
    SourceState {
        name: row.get("name"),
        records: row.get::<i64, _>("records").max(0) as u64,
        newest_modified: row.get("newest_modified"),
        imported_at: row.get("imported_at"),
    }
}
