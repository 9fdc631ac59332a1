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

/// The records under any of a JSON array of `[ecosystem, name]` keys: each key seeks the
/// `vuln_packages` primary key.
const RECORDS_FOR_KEYS: &str = "SELECT r.id, r.record FROM vuln_records r WHERE r.id IN (
        SELECT p.record_id FROM vuln_packages p
        JOIN (SELECT json_extract(value, '$[0]') AS ecosystem,
                     json_extract(value, '$[1]') AS name FROM json_each(?)) k
          ON p.ecosystem = k.ecosystem AND p.name = k.name)
    ORDER BY r.id";

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
        let rows = sqlx::query(RECORDS_FOR_KEYS)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(id: &str, ecosystem: &str, name: &str) -> NewRecord {
        let record: Record = serde_json::from_value(json!({"id": id,
            "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": ecosystem, "name": name}, "versions": ["1"]}]}))
        .unwrap();
        NewRecord::of(&record).unwrap()
    }

    fn keys(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(e, n)| (e.to_string(), n.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn records_are_found_by_key_and_a_reimport_replaces_only_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let debian = [
            record("D-1", "Debian:12", "openssl"),
            record("D-2", "Debian:12", "zlib"),
        ];
        store
            .replace_vuln_source("Debian:12", &debian, None, 1)
            .await
            .unwrap();
        let pypi = [record("P-1", "PyPI", "Foo_Bar")];
        store
            .replace_vuln_source("PyPI", &pypi, None, 2)
            .await
            .unwrap();
        let wanted = keys(&[("Debian:12", "openssl"), ("PyPI", "foo-bar"), ("npm", "x")]);
        let found = store.vuln_records_for(&wanted).await.unwrap();
        assert_eq!(found.len(), 2);
        let ecosystems = ["Debian:12".to_string(), "npm".to_string()];
        let covered = store.vuln_ecosystems_covered(&ecosystems).await.unwrap();
        assert_eq!(covered, ["Debian:12"]);

        let replaced = [record("D-3", "Debian:12", "expat")];
        store
            .replace_vuln_source("Debian:12", &replaced, None, 3)
            .await
            .unwrap();
        let found = store.vuln_records_for(&wanted).await.unwrap();
        assert_eq!(found.len(), 1, "openssl's record went with the old import");
        let db = store.vuln_database().await.unwrap();
        assert_eq!(db.version, 3);
        let counts: Vec<(&str, u64)> = db
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.records))
            .collect();
        assert_eq!(counts, [("Debian:12", 1), ("PyPI", 1)]);
    }

    #[tokio::test]
    async fn looking_records_up_seeks_the_package_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kiln.db")).await.unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {RECORDS_FOR_KEYS}");
        let plan = crate::store::query_plan(&store, sqlx::query(&explain).bind("[]")).await;
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH p USING PRIMARY KEY (ecosystem=? AND name=?)")),
            "{plan:?}"
        );
    }
}
