//! Scans on the wire. The worker reads an image and sends its inventory; the server matches it
//! against the vulnerability database (which lives in the server's store, never on workers)
//! and answers with the report, which the worker prints and judges against the threshold.
//!
//! An inventory depends only on the image's bytes, so the server keeps it per platform
//! manifest digest (and [`SCANNER_VERSION`]): a rescan after a newer `vulndb import` is a new
//! match on the server and pulls nothing, and a digest already matched against the same
//! database is not scanned twice.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Digest;
use crate::scan::{Inventory, LayerRef, OsRelease, Unreadable};

/// Bumped whenever the catalogers change what they find: stored inventories of an older
/// version are read again from the image.
pub const SCANNER_VERSION: u32 = 1;

/// A scan, as a whole run (`kiln scan`) or as a step (`cmd: kiln scan …`). The server parsed
/// the words, settled the registry and checked the submitter may pull what it names; the
/// worker parses the words again into `ScanArgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanJob {
    /// The scan arguments as given, without `kiln scan`.
    pub words: Vec<String>,
    /// `host[:port]`: `--registry` or the images' own registry, else Kiln's own.
    pub registry: String,
    /// Whether `registry` is Kiln's own (listing for `--all`, run credentials).
    pub kiln: bool,
}

/// One platform's image, as a scan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanTarget {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    /// The tag the scan was asked for, if it was asked by tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The image manifest of this platform.
    pub digest: Digest,
    /// The index it was reached through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// `linux/arm64`, when the manifest's config or index entry says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `POST /api/worker/runs/{id}/scans`: first without an inventory (the server may hold one for
/// this digest), then with it if the server answered [`ScanAnswer::NeedInventory`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanUpload {
    pub attempt: u32,
    pub target: ScanTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// [`SCANNER_VERSION`] of the worker that read the inventory.
    pub scanner_version: u32,
}

/// The server's answer to a [`ScanUpload`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "camelCase")]
pub enum ScanAnswer {
    /// The server holds no inventory of this digest from this scanner version: read the image.
    NeedInventory,
    /// The report, stored under the target's digest.
    Report(Box<ScanReport>),
}

/// What one platform's image carries, matched against one state of the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    pub target: ScanTarget,
    /// Unix milliseconds of the match.
    pub scanned_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    /// Packages by kind, largest first (`deb 120`, `npm 22`), as `Inventory::counts`.
    pub package_counts: Vec<(String, usize)>,
    pub packages: usize,
    /// Affected first by severity (highest first), then unknown verdicts; then by id.
    pub findings: Vec<Finding>,
    pub totals: SeverityTotals,
    /// Ecosystems the image has packages of and the database has no records for: the scan
    /// cannot say those are clean.
    pub missing_databases: Vec<String>,
    /// Files that should have said what they hold and could not be read.
    #[serde(default)]
    pub unreadable: Vec<Unreadable>,
    pub database: DatabaseState,
    /// Against the previous report of the same digest, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ReportChanges>,
}

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The OSV id (`GHSA-…`, `PYSEC-…`, `GO-…`, `RUSTSEC-…`, `DEBIAN-CVE-…`).
    pub id: String,
    /// CVE ids and others.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// OSV's ecosystem as the record names it (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// The package as installed (Debian: the binary package; `source` names the source).
    pub package: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub installed_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    pub severity: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Set when Kiln could not tell whether the version is affected (an unparsable version):
    /// such a finding is reported, never dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    pub layer: LayerRef,
    pub path: String,
}

/// Findings counted by severity (unknown-verdict findings count under their severity too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeverityTotals {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub none: u64,
    pub unknown: u64,
}

impl SeverityTotals {
    pub fn add(&mut self, level: Level) {
        *match level {
            Level::Critical => &mut self.critical,
            Level::High => &mut self.high,
            Level::Medium => &mut self.medium,
            Level::Low => &mut self.low,
            Level::None => &mut self.none,
            Level::Unknown => &mut self.unknown,
        } += 1;
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.none + self.unknown
    }
}

/// The database a report was matched against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseState {
    /// Grows with every import; a report of an older version is matched again.
    pub version: i64,
    pub sources: Vec<SourceState>,
}

/// One imported source (`Go`, `PyPI`, `Debian:12`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceState {
    pub name: String,
    pub records: u64,
    /// The newest `modified` of its records (RFC 3339), how fresh the data is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_modified: Option<String>,
    /// Unix milliseconds.
    pub imported_at: i64,
}

/// What changed since the previous report of the same digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportChanges {
    /// Unix milliseconds of the previous report.
    pub previous_scanned_at: i64,
    /// `id package` of findings not in the previous report.
    pub new: Vec<String>,
    /// `id package` of findings the previous report had and this one has not.
    pub resolved: Vec<String>,
}

/// Severity bands, lowest first; `Unknown` is below `None` so no threshold is reached by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 6] = [
        Level::Unknown,
        Level::None,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(text: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                format!("unknown severity {text:?} (use one of none, low, medium, high, critical)")
            })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
