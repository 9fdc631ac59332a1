use std::collections::HashSet;

use kiln_worker::protocol::{DatabaseState, Level, ScanTarget};
use kiln_worker::scan::{Inventory, LayerRef, OsRelease, Package as InventoryPackage};
use serde_json::json;

use super::*;
use crate::vuln::{Index, Record};

fn installed(ecosystem: &str, name: &str, version: &str) -> InventoryPackage {
    InventoryPackage {
        ecosystem: ecosystem.into(),
        name: name.into(),
        version: version.into(),
        source_name: None,
        source_version: None,
        layer: LayerRef {
            index: 1,
            digest: "sha256:aa".into(),
        },
        path: "var/lib/dpkg/status".into(),
        purl: format!("pkg:generic/{name}@{version}"),
    }
}

fn debian12(packages: Vec<InventoryPackage>) -> Inventory {
    Inventory {
        os: Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Default::default()
        }),
        packages,
        unreadable: Vec::new(),
    }
}

fn record(id: &str, ecosystem: &str, name: &str, fixed: &str, vector: Option<&str>) -> Record {
    let mut value = json!({"id": id, "modified": "2024-01-01T00:00:00Z", "aliases": ["CVE-1"],
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
    if let Some(vector) = vector {
        value["severity"] = json!([{"type": "CVSS_V3", "score": vector}]);
    }
    serde_json::from_value(value).unwrap()
}

fn target() -> ScanTarget {
    ScanTarget {
        registry: "127.0.0.1:5000".into(),
        repository: "app".into(),
        tag: Some("v1".into()),
        digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
        index_digest: None,
        platform: None,
    }
}

fn run(
    inventory: &Inventory,
    records: Vec<Record>,
    covered: &[&str],
    previous: Option<&ScanReport>,
) -> ScanReport {
    let index = Index::from_records(records);
    let covered: HashSet<String> = covered.iter().map(|s| s.to_string()).collect();
    report(MatchInput {
        target: target(),
        inventory,
        index: &index,
        covered: &covered,
        database: DatabaseState {
            version: 1,
            sources: Vec::new(),
        },
        previous,
        now: 1000,
    })
}

const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";

#[test]
fn debian_packages_are_matched_by_source_in_their_release() {
    let mut libssl = installed("Debian", "libssl3", "3.0.11-1~deb12u2");
    libssl.source_name = Some("openssl".into());
    let lookups = lookups(&debian12(vec![libssl.clone()]));
    assert_eq!(lookups[0].package.ecosystem.to_string(), "Debian:12");
    assert_eq!(lookups[0].package.name, "openssl");
    assert_eq!(
        keys(&lookups),
        [("Debian:12".to_string(), "openssl".to_string())]
    );

    let inventory = debian12(vec![libssl]);
    let records = vec![
        record(
            "DEBIAN-CVE-1",
            "Debian:12",
            "openssl",
            "3.0.13-1~deb12u1",
            Some(CRITICAL),
        ),
        // Another release's record does not apply.
        record("DEBIAN-CVE-2", "Debian:11", "openssl", "9", None),
    ];
    let report = run(&inventory, records, &["Debian:12"], None);
    assert_eq!(report.findings.len(), 1);
    let finding = &report.findings[0];
    assert_eq!(finding.id, "DEBIAN-CVE-1");
    assert_eq!(finding.package, "libssl3");
    assert_eq!(finding.source.as_deref(), Some("openssl"));
    assert_eq!(finding.fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));
    assert_eq!(finding.severity, Level::Critical);
    assert_eq!(report.totals.critical, 1);
    assert!(report.missing_databases.is_empty());
    assert_eq!(report.changes, None);
}

#[test]
fn other_releases_map_to_their_advisory_ecosystems() {
    let mut inventory = debian12(vec![installed("Alpine", "libcrypto3", "3.1.4-r5")]);
    inventory.os = Some(OsRelease {
        id: "alpine".into(),
        version_id: Some("3.19.1".into()),
        ..Default::default()
    });
    assert_eq!(
        lookups(&inventory)[0].package.ecosystem.to_string(),
        "Alpine:v3.19"
    );
    for (release, ecosystem) in [("22.04", "Ubuntu:22.04:LTS"), ("23.10", "Ubuntu:23.10")] {
        inventory.packages = vec![installed("Ubuntu", "bash", "5.1")];
        inventory.os = Some(OsRelease {
            id: "ubuntu".into(),
            version_id: Some(release.into()),
            ..Default::default()
        });
        assert_eq!(
            lookups(&inventory)[0].package.ecosystem.to_string(),
            ecosystem
        );
    }
    inventory.packages = vec![installed("PyPI", "Django", "4.0")];
    assert_eq!(lookups(&inventory)[0].package.ecosystem.to_string(), "PyPI");
}

#[test]
fn unparsable_versions_are_unknown_and_missing_data_is_named() {
    let inventory = debian12(vec![
        installed("PyPI", "django", "not a version!"),
        installed("npm", "left-pad", "1.0.0"),
    ]);
    let records = vec![record("PYSEC-1", "PyPI", "Django", "4.2", None)];
    let report = run(&inventory, records, &["PyPI"], None);
    assert_eq!(report.findings.len(), 1);
    let finding = &report.findings[0];
    assert!(finding.unknown.is_some(), "{finding:?}");
    assert_eq!(finding.severity, Level::Unknown);
    assert_eq!(report.totals.unknown, 1);
    assert_eq!(report.missing_databases, ["npm"]);
}

#[test]
fn findings_sort_by_severity_and_changes_list_new_and_resolved() {
    let inventory = debian12(vec![
        installed("PyPI", "a", "1.0"),
        installed("PyPI", "b", "1.0"),
    ]);
    let first = run(
        &inventory,
        vec![
            record("PYSEC-A", "PyPI", "a", "2.0", None),
            record("PYSEC-B", "PyPI", "b", "2.0", Some(CRITICAL)),
        ],
        &["PyPI"],
        None,
    );
    let ids: Vec<&str> = first.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["PYSEC-B", "PYSEC-A"],
        "critical before unknown severity"
    );
    let second = run(
        &inventory,
        vec![
            record("PYSEC-B", "PyPI", "b", "2.0", Some(CRITICAL)),
            record("PYSEC-C", "PyPI", "a", "3.0", None),
        ],
        &["PyPI"],
        Some(&first),
    );
    let changes = second.changes.unwrap();
    assert_eq!(changes.previous_scanned_at, 1000);
    assert_eq!(changes.new, ["PYSEC-C a"]);
    assert_eq!(changes.resolved, ["PYSEC-A a"]);
}
