//! What scans stored: inventories per platform manifest digest and scanner version
//! (`scan_inventories`), and the latest report per digest (`scan_reports`) with its severity
//! totals in columns for registry listings.

use std::collections::HashMap;

use kiln_worker::protocol::{ScanReport, SeverityTotals};
use kiln_worker::scan::Inventory;
use sqlx::Row;

use super::{Store, StoreError};

/// A stored report and what it was matched with.
pub struct StoredReport {
    pub report: ScanReport,
    pub db_version: i64,
    pub scanner_version: u32,
}

impl Store {
    /// Stores (or replaces) the inventory of `digest` read by `scanner_version`.
    pub async fn put_inventory(
        &self,
        digest: &str,
        scanner_version: u32,
        inventory: &Inventory,
        now: i64,
    ) -> Result<(), StoreError> {
        let json = to_json(inventory)?;
        sqlx::query(
            "INSERT INTO scan_inventories (digest, scanner_version, stored_at, inventory)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (digest, scanner_version) DO UPDATE
                 SET stored_at = excluded.stored_at, inventory = excluded.inventory",
        )
        .bind(digest)
        .bind(scanner_version)
        .bind(now)
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn inventory(
        &self,
        digest: &str,
        scanner_version: u32,
    ) -> Result<Option<Inventory>, StoreError> {
        let json: Option<String> = sqlx::query_scalar(
            "SELECT inventory FROM scan_inventories WHERE digest = ? AND scanner_version = ?",
        )
        .bind(digest)
        .bind(scanner_version)
        .fetch_optional(&self.pool)
        .await?;
        json.map(|j| from_json(&j, "inventory", digest)).transpose()
    }

    /// Stores `report` as the latest of its digest, replacing the one before.
    pub async fn put_report(
        &self,
        report: &ScanReport,
        db_version: i64,
        scanner_version: u32,
    ) -> Result<(), StoreError> {
        let t = &report.totals;
        sqlx::query(
            "INSERT INTO scan_reports (digest, scanned_at, db_version, scanner_version,
                 critical, high, medium, low, none, unknown, report)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (digest) DO UPDATE SET scanned_at = excluded.scanned_at,
                 db_version = excluded.db_version, scanner_version = excluded.scanner_version,
                 critical = excluded.critical, high = excluded.high, medium = excluded.medium,
                 low = excluded.low, none = excluded.none, unknown = excluded.unknown,
                 report = excluded.report",
        )
        .bind(report.target.digest.as_str())
        .bind(report.scanned_at)
        .bind(db_version)
        .bind(scanner_version)
        .bind(t.critical as i64)
        .bind(t.high as i64)
        .bind(t.medium as i64)
        .bind(t.low as i64)
        .bind(t.none as i64)
        .bind(t.unknown as i64)
        .bind(to_json(report)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest report of `digest`.
    pub async fn report(&self, digest: &str) -> Result<Option<StoredReport>, StoreError> {
        let row = sqlx::query(
            "SELECT db_version, scanner_version, report FROM scan_reports WHERE digest = ?",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredReport {
                report: from_json(&row.get::<String, _>("report"), "report", digest)?,
                db_version: row.get("db_version"),
                scanner_version: row.get::<i64, _>("scanner_version").max(0) as u32,
            })
        })
        .transpose()
    }

    /// The severity totals of the latest reports of `digests` that have one, in one query.
    pub async fn report_totals(
        &self,
        digests: &[String],
    ) -> Result<HashMap<String, SeverityTotals>, StoreError> {
        let list = to_json(digests)?;
        let rows = sqlx::query(
            "SELECT digest, critical, high, medium, low, none, unknown FROM scan_reports
             WHERE digest IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        let count = |row: &sqlx::sqlite::SqliteRow, column: &str| row.get::<i64, _>(column) as u64;
        Ok(rows
            .iter()
            .map(|row| {
                let totals = SeverityTotals {
                    critical: count(row, "critical"),
                    high: count(row, "high"),
                    medium: count(row, "medium"),
                    low: count(row, "low"),
                    none: count(row, "none"),
                    unknown: count(row, "unknown"),
                };
                (row.get("digest"), totals)
            })
            .collect())
    }
}

fn to_json(value: &(impl serde::Serialize + ?Sized)) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(
    json: &str,
    what: &str,
    digest: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("stored scan {what} of {digest}: {e}")))
}
