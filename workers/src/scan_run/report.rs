//! A scan report in words: the lines a scan run's log shows for each platform's image and
//! `kiln scan show` prints, the summary table by severity, and the verdict against
//! `--severity-threshold` and missing databases. Pure, so the run and the CLI say the same.

use chrono::{TimeZone, Utc};

use crate::protocol::{Finding, Level, ScanReport, SeverityTotals};

/// `Scanning linux/arm64 sha256:… (6 layers)`.
pub fn scanning_line(platform: Option<&str>, digest: &str, layers: usize) -> String {
    let noun = if layers == 1 { "layer" } else { "layers" };
    format!(
        "Scanning {} {digest} ({layers} {noun})",
        platform.unwrap_or("unknown platform")
    )
}

/// What one report says, line by line: the packages found, each finding, what the database
/// lacks or could not be read, the database's freshness, and what changed since last time.
pub fn report_lines(report: &ScanReport) -> Vec<String> {
    let mut lines = Vec::new();
    let target = &report.target;
    lines.push(format!(
        "{}/{}@{} ({}), scanned {}",
        target.registry,
        target.repository,
        target.digest,
        target.platform.as_deref().unwrap_or("unknown platform"),
        time(report.scanned_at)
    ));
    if let Some(os) = &report.os {
        let name = os.pretty.clone().unwrap_or_else(|| {
            format!("{} {}", os.id, os.version_id.as_deref().unwrap_or(""))
                .trim_end()
                .to_owned()
        });
        lines.push(format!("OS: {name}"));
    }
    lines.push(found_line(report));
    lines.extend(report.findings.iter().map(finding_line));
    if report.findings.is_empty() && report.missing_databases.is_empty() {
        lines.push("No known vulnerabilities".into());
    }
    for ecosystem in &report.missing_databases {
        lines.push(format!(
            "No vulnerability data for {ecosystem}: its packages are not known to be clean \
             (kiln vulndb import)"
        ));
    }
    for unreadable in &report.unreadable {
        lines.push(format!(
            "Could not read /{}: {}",
            unreadable.path, unreadable.reason
        ));
    }
    lines.push(database_line(report));
    if let Some(changes) = &report.changes {
        let list = |items: &[String]| {
            if items.is_empty() {
                String::new()
            } else {
                format!(" ({})", items.join(", "))
            }
        };
        lines.push(format!(
            "Since the scan of {}: {} new{}, {} resolved{}",
            time(changes.previous_scanned_at),
            changes.new.len(),
            list(&changes.new),
            changes.resolved.len(),
            list(&changes.resolved)
        ));
    }
    lines
}

/// `Found 142 packages (deb 120, npm 22)`.
fn found_line(report: &ScanReport) -> String {
    let noun = if report.packages == 1 {
        "package"
    } else {
        "packages"
    };
    let counts: Vec<String> = report
        .package_counts
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    match counts.is_empty() {
        true => format!("Found {} {noun}", report.packages),
        false => format!("Found {} {noun} ({})", report.packages, counts.join(", ")),
    }
}

/// `HIGH     PYSEC-2018-28 (CVE-2018-18074) requests 2.19.0 → 2.20.0, layer 2 (sha256:…) /usr/lib/…`
pub fn finding_line(finding: &Finding) -> String {
    let aliases = match finding.aliases.is_empty() {
        true => String::new(),
        false => format!(" ({})", finding.aliases.join(", ")),
    };
    let package = match &finding.source {
        Some(source) if *source != finding.package => {
            format!("{} (source {source})", finding.package)
        }
        _ => finding.package.clone(),
    };
    let fixed = finding.fixed_version.as_deref().unwrap_or("no fix");
    let unknown = match &finding.unknown {
        Some(why) => format!(" [unknown whether affected: {why}]"),
        None => String::new(),
    };
    format!(
        "{:<8} {}{aliases} {package} {} → {fixed}, layer {} ({}) /{}{unknown}",
        finding.severity.as_str().to_uppercase(),
        finding.id,
        finding.installed_version,
        finding.layer.index,
        finding.layer.digest,
        finding.path.trim_start_matches('/'),
    )
}

/// The database the report was matched against: its version and each source's freshness.
fn database_line(report: &ScanReport) -> String {
    let database = &report.database;
    if database.sources.is_empty() {
        return format!("Database version {}: no sources imported", database.version);
    }
    let sources: Vec<String> = database
        .sources
        .iter()
        .map(|s| {
            let newest = s
                .newest_modified
                .as_deref()
                .map(|m| format!(", newest {m}"))
                .unwrap_or_default();
            format!(
                "{} {} records{newest}, imported {}",
                s.name,
                s.records,
                time(s.imported_at)
            )
        })
        .collect();
    format!(
        "Database version {}: {}",
        database.version,
        sources.join("; ")
    )
}

/// Totals by severity, one row per platform's image and a total row when there are several.
pub fn summary_table(reports: &[ScanReport]) -> Vec<String> {
    let header = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNKNOWN"];
    let row = |name: String, digest: String, totals: &SeverityTotals| {
        let counts = [
            totals.critical,
            totals.high,
            totals.medium,
            totals.low,
            totals.none,
            totals.unknown,
        ];
        let mut cells = vec![name, digest];
        cells.extend(counts.iter().map(u64::to_string));
        cells
    };
    let mut rows = vec![{
        let mut cells = vec!["IMAGE".to_owned(), "DIGEST".to_owned()];
        cells.extend(header.iter().map(|h| (*h).to_owned()));
        cells
    }];
    let mut all = SeverityTotals::default();
    for report in reports {
        let t = &report.target;
        let name = format!(
            "{}:{} {}",
            t.repository,
            t.tag.as_deref().unwrap_or("-"),
            t.platform.as_deref().unwrap_or("?")
        );
        rows.push(row(name, short(t.digest.as_str()), &report.totals));
        add(&mut all, &report.totals);
    }
    if reports.len() > 1 {
        rows.push(row("TOTAL".into(), String::new(), &all));
    }
    table(&rows)
}

/// Why the scan fails, if it does: a finding at or above `threshold`, or (unless
/// `allow_missing_db`) an ecosystem without vulnerability data.
pub fn verdict(
    reports: &[ScanReport],
    threshold: Option<Level>,
    allow_missing_db: bool,
) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(threshold) = threshold {
        let reached = reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.severity >= threshold)
            .count();
        if reached > 0 {
            let noun = if reached == 1 { "finding" } else { "findings" };
            reasons.push(format!(
                "{reached} {noun} at or above the severity threshold {threshold}"
            ));
        }
    }
    let mut missing: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.missing_databases.iter().map(String::as_str))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() && !allow_missing_db {
        reasons.push(format!(
            "no vulnerability data for {}, so the image is not known to be clean (import it \
             with kiln vulndb import, or pass --allow-missing-db)",
            missing.join(", ")
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn add(all: &mut SeverityTotals, more: &SeverityTotals) {
    all.critical += more.critical;
    all.high += more.high;
    all.medium += more.medium;
    all.low += more.low;
    all.none += more.none;
    all.unknown += more.unknown;
}

/// `sha256:0123456789ab`: enough of a digest for a table.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

fn time(unix_ms: i64) -> String {
    Utc.timestamp_millis_opt(unix_ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// Left-aligned columns two spaces apart.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DatabaseState, ReportChanges, ScanTarget, SourceState};
    use crate::scan::LayerRef;

    fn digest(c: char) -> crate::protocol::Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    fn finding(id: &str, severity: Level) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec!["CVE-2018-18074".into()],
            summary: None,
            ecosystem: "PyPI".into(),
            package: "requests".into(),
            source: None,
            installed_version: "2.19.0".into(),
            fixed_version: Some("2.20.0".into()),
            severity,
            score: None,
            unknown: None,
            layer: LayerRef {
                index: 1,
                digest: "sha256:bb".into(),
            },
            path: "usr/lib/python3/site-packages/requests-2.19.0.dist-info/METADATA".into(),
        }
    }

    fn report(findings: Vec<Finding>, missing: &[&str]) -> ScanReport {
        let mut totals = SeverityTotals::default();
        for f in &findings {
            totals.add(f.severity);
        }
        ScanReport {
            target: ScanTarget {
                registry: "127.0.0.1:8080".into(),
                repository: "app/web".into(),
                tag: Some("v1".into()),
                digest: digest('a'),
                index_digest: None,
                platform: Some("linux/arm64".into()),
            },
            scanned_at: 1_767_225_600_000,
            os: None,
            package_counts: vec![("deb".into(), 120), ("pypi".into(), 22)],
            packages: 142,
            findings,
            totals,
            missing_databases: missing.iter().map(|m| (*m).to_owned()).collect(),
            unreadable: Vec::new(),
            database: DatabaseState {
                version: 3,
                sources: vec![SourceState {
                    name: "PyPI".into(),
                    records: 17,
                    newest_modified: Some("2025-12-30T00:00:00Z".into()),
                    imported_at: 1_767_225_600_000,
                }],
            },
            changes: Some(ReportChanges {
                previous_scanned_at: 1_767_139_200_000,
                new: vec!["PYSEC-2018-28 requests".into()],
                resolved: Vec::new(),
            }),
        }
    }

    #[test]
    fn a_report_reads_as_the_log_shows_it() {
        let lines = report_lines(&report(
            vec![finding("PYSEC-2018-28", Level::High)],
            &["npm"],
        ));
        assert_eq!(
            lines,
            [
                format!(
                    "127.0.0.1:8080/app/web@{} (linux/arm64), scanned 2026-01-01 00:00:00 UTC",
                    digest('a')
                ),
                "Found 142 packages (deb 120, pypi 22)".to_owned(),
                "HIGH     PYSEC-2018-28 (CVE-2018-18074) requests 2.19.0 → 2.20.0, layer 1 (sha256:bb) /usr/lib/python3/site-packages/requests-2.19.0.dist-info/METADATA".to_owned(),
                "No vulnerability data for npm: its packages are not known to be clean (kiln vulndb import)".to_owned(),
                "Database version 3: PyPI 17 records, newest 2025-12-30T00:00:00Z, imported 2026-01-01 00:00:00 UTC".to_owned(),
                "Since the scan of 2025-12-31 00:00:00 UTC: 1 new (PYSEC-2018-28 requests), 0 resolved".to_owned(),
            ]
        );
        assert_eq!(
            scanning_line(Some("linux/arm64"), "sha256:aa", 6),
            "Scanning linux/arm64 sha256:aa (6 layers)"
        );
    }

    #[test]
    fn the_summary_counts_by_severity_per_image_and_in_total() {
        let reports = [
            report(
                vec![finding("A", Level::Critical), finding("B", Level::Low)],
                &[],
            ),
            report(vec![finding("C", Level::Critical)], &[]),
        ];
        let table = summary_table(&reports);
        assert_eq!(
            table[0],
            "IMAGE                   DIGEST               CRITICAL  HIGH  MEDIUM  LOW  NONE  UNKNOWN"
        );
        assert!(
            table[1].starts_with("app/web:v1 linux/arm64  sha256:aaaaaaaaaaaa  1"),
            "{}",
            table[1]
        );
        assert_eq!(
            table[3],
            "TOTAL                                        2         0     0       1    0     0"
        );
    }

    #[test]
    fn the_verdict_fails_at_the_threshold_and_on_missing_data() {
        let high = [report(vec![finding("A", Level::High)], &[])];
        assert_eq!(verdict(&high, None, false), None);
        assert_eq!(verdict(&high, Some(Level::Critical), false), None);
        assert_eq!(
            verdict(&high, Some(Level::High), false).unwrap(),
            "1 finding at or above the severity threshold high"
        );
        let missing = [report(Vec::new(), &["PyPI"])];
        assert!(verdict(&missing, None, false)
            .unwrap()
            .starts_with("no vulnerability data for PyPI"));
        assert_eq!(verdict(&missing, None, true), None);
        let unknown = [report(vec![finding("U", Level::Unknown)], &[])];
        assert_eq!(verdict(&unknown, Some(Level::None), false), None);
    }
}
