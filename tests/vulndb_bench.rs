//! Benchmarks of the vulnerability database, printing figures (`scripts/bench_vulndb.sh`):
//! `kiln vulndb import` of every export in `../shared/osv/` (records/s, as a user runs it:
//! CLI, upload, parse, store), and matching a 1,000-package inventory against it (ms, the
//! server's matching: the store's lookups, evaluation and the report).

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::osv::osv_dir;
use common::*;
use kiln::service::scans::match_inventory;
use kiln::store::Store;
use kiln::vuln::osv;
use kiln_worker::protocol::ScanTarget;
use kiln_worker::scan::{Inventory, LayerRef, OsRelease, Package};

const EXPORTS: [&str; 4] = ["Go", "crates.io", "PyPI", "Debian:12"];

/// 1,000 packages that the records name, a quarter from each export (Debian's few source
/// packages repeated as binaries), each at a version that its first record's range starts at,
/// so many of them are affected.
fn inventory(osv: &std::path::Path) -> Inventory {
    let mut packages = Vec::new();
    for export in EXPORTS {
        let mut seen = BTreeSet::new();
        let records = osv::read_zip(&osv.join(export).join("all.zip")).unwrap();
        for record in records.map(Result::unwrap) {
            for affected in &record.affected {
                let Some(named) = &affected.package else {
                    continue;
                };
                let introduced =
                    affected
                        .ranges
                        .iter()
                        .flat_map(|r| &r.events)
                        .find_map(|e| match e {
                            osv::Event::Introduced(v) if v != "0" => Some(v.clone()),
                            _ => None,
                        });
                let version = introduced
                    .or_else(|| affected.versions.first().cloned())
                    .unwrap_or_else(|| "1.0.0".into());
                if !seen.insert(named.name.clone()) {
                    continue;
                }
                let (ecosystem, name, source) = match export {
                    "Debian:12" => (
                        "Debian",
                        format!("lib{}", named.name),
                        Some(named.name.clone()),
                    ),
                    other => (other, named.name.clone(), None),
                };
                packages.push(Package {
                    ecosystem: ecosystem.into(),
                    name,
                    version,
                    source_name: source,
                    source_version: None,
                    layer: LayerRef {
                        index: 0,
                        digest: format!("sha256:{}", "0".repeat(64)),
                    },
                    path: "bench".into(),
                    purl: String::new(),
                });
                if seen.len() == 250 {
                    break;
                }
            }
            if seen.len() == 250 {
                break;
            }
        }
    }
    // Fill up to 1,000 with unaffected packages of the same names at other versions.
    let mut i = 0;
    while packages.len() < 1000 {
        let mut p = packages[i].clone();
        p.version = "999.0.0".into();
        p.name = format!("{}-other", p.name);
        packages.push(p);
        i += 1;
    }
    packages.truncate(1000);
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

#[tokio::test]
#[ignore = "benchmark: scripts/bench_vulndb.sh"]
async fn bench_import_and_match() {
    let Some(osv) = osv_dir() else { return };
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let paths: Vec<String> = EXPORTS
        .iter()
        .map(|e| osv.join(e).join("all.zip").display().to_string())
        .collect();
    let mut args = vec!["vulndb", "import"];
    args.extend(paths.iter().map(String::as_str));
    let started = Instant::now();
    let out = server.kiln_output(&args).await;
    let import = started.elapsed();
    assert_eq!(out.code, 0, "{out:#?}");
    let status = server.get_json("/api/vulndb").await;
    let records: u64 = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .sum();
    println!(
        "vulndb import: {records} records in {:.2} s = {:.0} records/s",
        import.as_secs_f64(),
        records as f64 / import.as_secs_f64()
    );

    // The server's own database file, opened beside it as a second API node would.
    let key = std::fs::read(server.data.path().join("secret.key")).unwrap();
    let key: [u8; 32] = key.try_into().unwrap();
    let store = Store::open_sealed(&server.data.path().join("kiln.db"), &key)
        .await
        .unwrap();
    let inventory = inventory(&osv);
    let target = ScanTarget {
        registry: "bench".into(),
        repository: "bench".into(),
        tag: None,
        digest: format!("sha256:{}", "b".repeat(64)).parse().unwrap(),
        index_digest: None,
        platform: None,
    };
    let mut best = f64::MAX;
    let mut findings = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let report = match_inventory(&store, target.clone(), &inventory, None, 0)
            .await
            .unwrap();
        best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        findings = report.findings.len();
    }
    println!(
        "matching {} packages: {best:.1} ms (best of 5), {findings} findings",
        inventory.packages.len()
    );
}
