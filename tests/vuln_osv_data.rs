//! Matching against the real OSV exports in `../shared/osv/` (Go, crates.io, PyPI, Debian:12;
//! see its README). They are not part of the repository: without them these tests say so and
//! pass. `KILN_OSV_DIR` points elsewhere.
//!
//! The `#[ignore]` benchmarks print figures: `cargo test --release --test vuln_osv_data --
//! --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::osv::{load, osv_dir};
use kiln::vuln::osv::{self, Event, RangeKind, Record};
use kiln::vuln::{evaluate, severity, Ecosystem, Index, Level, Package, Verdict};

/// The four exports and their record counts, as the README lists them.
const EXPORTS: [(&str, usize); 4] = [
    ("Go", 4291),
    ("crates.io", 1205),
    ("PyPI", 2661),
    ("Debian:12", 99),
];

fn find<'a>(records: &'a [Record], id: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} not in the export"))
}

fn package(ecosystem: &str, name: &str, version: &str) -> Package {
    Package {
        ecosystem: Ecosystem::parse(ecosystem),
        name: name.into(),
        version: version.into(),
    }
}

fn fixed(version: &str) -> Verdict {
    Verdict::Affected {
        fixed: Some(version.into()),
    }
}

#[test]
fn every_record_of_every_export_loads() {
    let Some(dir) = osv_dir() else { return };
    for (export, count) in EXPORTS {
        let records = load(&dir, export);
        assert_eq!(records.len(), count, "{export}");
        let ecosystem = Ecosystem::parse(export);
        assert!(records.iter().all(|r| r.affected.iter().any(|a| {
            a.package
                .as_ref()
                .is_some_and(|p| Ecosystem::parse(&p.ecosystem) == ecosystem)
        })));
    }
}

#[test]
fn known_advisories_affect_known_versions_and_not_the_fixed_ones() {
    let Some(dir) = osv_dir() else { return };

    // GO-2023-2102 (HTTP/2 rapid reset): stdlib before 1.20.10, and 1.21.0-0 up to 1.21.3.
    let go = load(&dir, "Go");
    let rapid_reset = find(&go, "GO-2023-2102");
    assert!(rapid_reset.aliases.contains(&"CVE-2023-39325".to_string()));
    assert_eq!(
        evaluate(rapid_reset, &package("Go", "stdlib", "1.21.1")),
        fixed("1.21.3")
    );
    assert_eq!(
        evaluate(rapid_reset, &package("Go", "stdlib", "go1.21.1")),
        fixed("1.21.3"),
        "as a Go binary's build info names it"
    );
    assert_eq!(
        evaluate(rapid_reset, &package("Go", "stdlib", "1.20.9")),
        fixed("1.20.10")
    );
    assert_eq!(
        evaluate(rapid_reset, &package("Go", "stdlib", "1.21.3")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(rapid_reset, &package("Go", "stdlib", "1.20.10")),
        Verdict::NotAffected
    );

    // PYSEC-2023-62 (Flask session cookie): before 2.2.5, and 2.3.0 up to 2.3.2.
    let pypi = load(&dir, "PyPI");
    let flask = find(&pypi, "PYSEC-2023-62");
    assert_eq!(
        evaluate(flask, &package("PyPI", "Flask", "2.2.4")),
        fixed("2.2.5")
    );
    assert_eq!(
        evaluate(flask, &package("PyPI", "flask", "2.3.1")),
        fixed("2.3.2")
    );
    assert_eq!(
        evaluate(flask, &package("PyPI", "flask", "2.2.5")),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(flask, &package("PyPI", "flask", "2.3.2")),
        Verdict::NotAffected
    );

    // RUSTSEC-2023-0044 (openssl crate, X509VerifyParamRef::set_host): fixed in 0.10.55.
    let crates = load(&dir, "crates.io");
    let openssl_crate = find(&crates, "RUSTSEC-2023-0044");
    assert_eq!(
        evaluate(openssl_crate, &package("crates.io", "openssl", "0.10.54")),
        fixed("0.10.55")
    );
    assert_eq!(
        evaluate(openssl_crate, &package("crates.io", "openssl", "0.10.55")),
        Verdict::NotAffected
    );

    // Debian 12's openssl in bookworm main (3.0.20-1~deb12u2) lags the security fix.
    let debian = load(&dir, "Debian:12");
    let openssl = find(&debian, "DEBIAN-CVE-2026-84782");
    let main = package("Debian:12", "openssl", "3.0.20-1~deb12u2");
    assert_eq!(evaluate(openssl, &main), fixed("3.0.22-1~deb12u2"));
    assert_eq!(
        evaluate(
            openssl,
            &package("Debian:12", "openssl", "3.0.22-1~deb12u2")
        ),
        Verdict::NotAffected
    );
    assert_eq!(
        evaluate(
            openssl,
            &package("Debian:11", "openssl", "3.0.20-1~deb12u2")
        ),
        Verdict::NotAffected
    );
    assert_eq!(
        severity::of_record(openssl).level,
        Level::Unknown,
        "Debian records carry no CVSS"
    );
}

#[test]
fn scored_records_get_a_level_and_unscored_ones_stay_unknown() {
    let Some(dir) = osv_dir() else { return };
    let crates = load(&dir, "crates.io");
    let (mut scored, mut unknown) = (0, 0);
    for record in &crates {
        let has_vector = record.severity.iter().any(|s| s.kind.starts_with("CVSS_"));
        let level = severity::of_record(record).level;
        assert_eq!(has_vector, level != Level::Unknown, "{}", record.id);
        if has_vector {
            scored += 1
        } else {
            unknown += 1
        }
    }
    assert!(
        scored > 300 && unknown > 300,
        "scored {scored}, unknown {unknown}"
    );
}

#[test]
#[ignore = "benchmark: prints records/s for reading every export"]
fn bench_reading_all_exports() {
    let Some(dir) = osv_dir() else { return };
    let start = Instant::now();
    let mut count = 0;
    for (export, _) in EXPORTS {
        count += osv::read_path(&dir.join(export).join("all.zip"))
            .unwrap()
            .filter(|r| r.is_ok())
            .count();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "read {count} OSV records in {:.0} ms: {:.0} records/s",
        seconds * 1e3,
        count as f64 / seconds
    );
}

/// An image's worth of packages: 250 distinct names per export, named by real records where
/// the export has that many (Debian:12 names 15 source packages; the rest of its 250 have no
/// records, as most of an image's packages have none), each at a version taken from one of
/// its records' `fixed` events.
fn inventory(records: &[Record]) -> Vec<Package> {
    let mut per_export: std::collections::BTreeMap<String, Vec<Package>> = Default::default();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        for affected in &record.affected {
            let range = affected.ranges.iter().find(|r| r.kind != RangeKind::Git);
            let (Some(p), Some(range)) = (&affected.package, range) else {
                continue;
            };
            let Some(event) = range.events.iter().find(|e| matches!(e, Event::Fixed(_))) else {
                continue;
            };
            if !seen.insert((p.ecosystem.clone(), p.name.clone())) {
                continue;
            }
            let version = match p.ecosystem.as_str() {
                "Go" if p.name != "stdlib" && p.name != "toolchain" => {
                    format!("v{}", event.version())
                }
                _ => event.version().to_string(),
            };
            per_export
                .entry(p.ecosystem.clone())
                .or_default()
                .push(package(&p.ecosystem, &p.name, &version));
        }
    }
    per_export
        .into_iter()
        .flat_map(|(ecosystem, named)| {
            let step = (named.len() / 250).max(1);
            let mut chosen: Vec<Package> = named.into_iter().step_by(step).take(250).collect();
            let version = chosen[0].version.clone();
            for n in chosen.len()..250 {
                chosen.push(package(&ecosystem, &format!("no-records-{n}"), &version));
            }
            chosen
        })
        .collect()
}

#[test]
#[ignore = "benchmark: prints the time to match a 1,000-package inventory against every record"]
fn bench_matching_a_thousand_packages() {
    let Some(dir) = osv_dir() else { return };
    let records: Vec<Record> = EXPORTS
        .iter()
        .flat_map(|(export, _)| load(&dir, export))
        .collect();
    let packages = inventory(&records);
    assert_eq!(packages.len(), 1000);
    let start = Instant::now();
    let index = Index::from_records(records);
    let indexed = start.elapsed();
    let start = Instant::now();
    let (mut affected, mut unknown) = (0, 0);
    let mut per_ecosystem = std::collections::BTreeMap::new();
    for package in &packages {
        let one = Instant::now();
        let found = index.matches(package);
        *per_ecosystem
            .entry(package.ecosystem.to_string())
            .or_insert(0.0) += one.elapsed().as_secs_f64() * 1e3;
        for found in found {
            match found.verdict {
                Verdict::Affected { .. } => affected += 1,
                Verdict::Unknown(reason) => {
                    println!("unknown: {} for {package:?}: {reason}", found.record.id);
                    unknown += 1
                }
                Verdict::NotAffected => unreachable!("matches() leaves these out"),
            }
        }
    }
    let matched = start.elapsed();
    println!(
        "indexed {} records in {} ms; matched 1000 packages in {:.1} ms ({affected} affected, {unknown} unknown)",
        index.len(),
        indexed.as_millis(),
        matched.as_secs_f64() * 1e3
    );
    println!("ms per ecosystem: {per_ecosystem:?}");
}

/// Every version named in the exports' `SEMVER`/`ECOSYSTEM` events and `versions` lists, in
/// the ecosystem's order: what Kiln cannot parse would make matches "unknown".
#[test]
fn versions_in_real_records_parse_in_their_ecosystem_order() {
    let Some(dir) = osv_dir() else { return };
    let mut unparsable = Vec::new();
    let mut total = 0;
    for (export, _) in EXPORTS {
        for record in load(&dir, export) {
            for affected in &record.affected {
                let Some(p) = &affected.package else { continue };
                let ecosystem = Ecosystem::parse(&p.ecosystem);
                let family = ecosystem
                    .family()
                    .expect("the exports' ecosystems are all known");
                let events = affected
                    .ranges
                    .iter()
                    .filter(|r| r.kind != RangeKind::Git)
                    .flat_map(|r| {
                        let family = if r.kind == RangeKind::Semver {
                            ecosystem.semver_family()
                        } else {
                            family
                        };
                        r.events.iter().map(move |e| (family, e.version()))
                    });
                let listed = affected.versions.iter().map(|v| (family, v.as_str()));
                for (family, version) in events
                    .chain(listed)
                    .filter(|(_, v)| !matches!(*v, "0" | "*"))
                {
                    total += 1;
                    if !family.is_valid(version) {
                        unparsable.push(format!("{} {export} {}: {version:?}", record.id, p.name));
                    }
                }
            }
        }
    }
    println!(
        "{} of {total} versions do not parse:\n{}",
        unparsable.len(),
        unparsable.join("\n")
    );
    assert!(unparsable.len() * 1000 < total, "more than 0.1% unparsable");
}
