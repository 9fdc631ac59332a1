//! An inventory matched against OSV records into a report: pure, so the rules can be tested
//! with hand-written records. The scan service fetches the records and stores the result.
//!
//! Each package is looked up in the ecosystem its OS's advisories use: dpkg packages of
//! Debian 12 in `Debian:12` by their **source** package, Alpine's in `Alpine:v3.19` by origin,
//! Ubuntu's in `Ubuntu:22.04:LTS`; language packages in their own ecosystem as they are.

use std::collections::{BTreeSet, HashSet};

use kiln_worker::protocol::{
    DatabaseState, Finding, ReportChanges, ScanReport, ScanTarget, SeverityTotals,
};
use kiln_worker::scan::{Inventory, OsRelease, Package as InventoryPackage};

use crate::vuln::{severity, Ecosystem, Index, Package, Verdict};

/// An inventory's package as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Its position in `inventory.packages`.
    pub index: usize,
    pub package: Package,
}

/// The packages of `inventory` in the ecosystems, names and versions their advisories use.
pub fn lookups(inventory: &Inventory) -> Vec<Lookup> {
    inventory
        .packages
        .iter()
        .enumerate()
        .map(|(index, p)| Lookup {
            index,
            package: osv_package(p, inventory.os.as_ref()),
        })
        .collect()
}

fn osv_package(p: &InventoryPackage, os: Option<&OsRelease>) -> Package {
    let release = os.and_then(|os| os.version_id.as_deref());
    let source = |p: &InventoryPackage| {
        (
            p.source_name.clone().unwrap_or_else(|| p.name.clone()),
            p.source_version
                .clone()
                .unwrap_or_else(|| p.version.clone()),
        )
    };
    let (ecosystem, (name, version)) = match (p.ecosystem.as_str(), release) {
        ("Debian", Some(release)) => (debian(release), source(p)),
        ("Ubuntu", Some(release)) => (ubuntu(release), source(p)),
        ("Alpine", Some(release)) => (Ecosystem::alpine_release(release), source(p)),
        // No release: the bare name, which no record uses, so it shows as missing data.
        (other, _) => (Ecosystem::parse(other), (p.name.clone(), p.version.clone())),
    };
    Package {
        ecosystem,
        name,
        version,
    }
}

/// `12` or `12.5` → `Debian:12`: Debian's records name the major release.
fn debian(release: &str) -> Ecosystem {
    let major = release.trim().split('.').next().unwrap_or_default();
    Ecosystem::Debian(major.to_string())
}

/// `22.04` → `Ubuntu:22.04:LTS` (even years' April releases are LTS), `23.10` → `Ubuntu:23.10`.
fn ubuntu(release: &str) -> Ecosystem {
    let release = release.trim();
    let lts = release
        .split_once('.')
        .and_then(|(year, month)| Some(year.parse::<u32>().ok()? % 2 == 0 && month == "04"))
        .unwrap_or(false);
    if lts {
        Ecosystem::Ubuntu(format!("{release}:LTS"))
    } else {
        Ecosystem::Ubuntu(release.to_string())
    }
}

/// The `(ecosystem, normalised name)` keys to fetch records for, each once.
pub fn keys(lookups: &[Lookup]) -> Vec<(String, String)> {
    let keys: BTreeSet<(String, String)> = lookups
        .iter()
        .map(|l| {
            let ecosystem = &l.package.ecosystem;
            (
                ecosystem.to_string(),
                ecosystem.normalise_name(&l.package.name),
            )
        })
        .collect();
    keys.into_iter().collect()
}

/// The ecosystems the image has packages of, each once.
pub fn ecosystems(lookups: &[Lookup]) -> Vec<String> {
    let set: BTreeSet<String> = lookups
        .iter()
        .map(|l| l.package.ecosystem.to_string())
        .collect();
    set.into_iter().collect()
}

/// What a report is matched with besides the inventory.
pub struct MatchInput<'a> {
    pub target: ScanTarget,
    pub inventory: &'a Inventory,
    /// The records fetched for the inventory's keys.
    pub index: &'a Index,
    /// The image's ecosystems that have any record at all.
    pub covered: &'a HashSet<String>,
    pub database: DatabaseState,
    pub previous: Option<&'a ScanReport>,
    pub now: i64,
}

/// Matches and builds the report.
pub fn report(input: MatchInput<'_>) -> ScanReport {
    let lookups = lookups(input.inventory);
    let mut findings = Vec::new();
    for lookup in &lookups {
        let installed = &input.inventory.packages[lookup.index];
        for m in input.index.matches(&lookup.package) {
            findings.push(finding(installed, &lookup.package, m.record, m.verdict));
        }
    }
    findings.sort_by(|a, b| {
        let rank = |f: &Finding| (f.unknown.is_some(), std::cmp::Reverse(f.severity));
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.path.cmp(&b.path))
    });
    let mut totals = SeverityTotals::default();
    findings.iter().for_each(|f| totals.add(f.severity));
    let missing_databases = ecosystems(&lookups)
        .into_iter()
        .filter(|e| !input.covered.contains(e))
        .collect();
    let changes = input.previous.map(|previous| changes(previous, &findings));
    ScanReport {
        target: input.target,
        scanned_at: input.now,
        os: input.inventory.os.clone(),
        package_counts: input.inventory.counts(),
        packages: input.inventory.packages.len(),
        findings,
        totals,
        missing_databases,
        unreadable: input.inventory.unreadable.clone(),
        database: input.database,
        changes,
    }
}

fn finding(
    installed: &InventoryPackage,
    looked_up: &Package,
    record: &crate::vuln::Record,
    verdict: Verdict,
) -> Finding {
    let severity = severity::of_record(record);
    let (fixed_version, unknown) = match verdict {
        Verdict::Affected { fixed } => (fixed, None),
        Verdict::Unknown(reason) => (None, Some(reason.to_string())),
        Verdict::NotAffected => (None, None),
    };
    let source = (looked_up.name != installed.name).then(|| looked_up.name.clone());
    Finding {
        id: record.id.clone(),
        aliases: distinct(&record.aliases),
        summary: record.summary.clone(),
        ecosystem: looked_up.ecosystem.to_string(),
        package: installed.name.clone(),
        source,
        installed_version: installed.version.clone(),
        fixed_version,
        severity: severity.level,
        score: severity.score,
        unknown,
        layer: installed.layer.clone(),
        path: installed.path.clone(),
    }
}

/// How findings are compared across reports: `id package`.
pub fn finding_key(f: &Finding) -> String {
    format!("{} {}", f.id, f.package)
}

fn changes(previous: &ScanReport, findings: &[Finding]) -> ReportChanges {
    let before: BTreeSet<String> = previous.findings.iter().map(finding_key).collect();
    let now: BTreeSet<String> = findings.iter().map(finding_key).collect();
    ReportChanges {
        previous_scanned_at: previous.scanned_at,
        new: now.difference(&before).cloned().collect(),
        resolved: before.difference(&now).cloned().collect(),
    }
}

/// `aliases` without repeats, in their order: real records name the same CVE twice (Go's
/// GO-2025-4008 does), which a finding line should not.
fn distinct(aliases: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    aliases
        .iter()
        .filter(|a| seen.insert(a.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "scan_match_tests.rs"]
mod tests;
