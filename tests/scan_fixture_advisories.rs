//! The scan fixture carries what its versions were chosen for: matched against the real OSV
//! exports (`../shared/osv/`, see tests/common/osv.rs; without them this says so and
//! passes), each language package of scan-fixtures/layered has its known advisory, the
//! package a whiteout deleted has none, and npm, which the exports do not cover, is reported
//! as not covered rather than clean.

mod common;

use std::collections::BTreeSet;

use common::osv::{load, osv_dir};
use common::scan_images::layered_inventory;
use kiln::vuln::{Ecosystem, Index, Package, Verdict};

/// (ecosystem, name, version, an advisory that affects it).
const KNOWN: [(&str, &str, &str, &str); 6] = [
    ("PyPI", "requests", "2.19.1", "PYSEC-2018-28"),
    ("PyPI", "urllib3", "1.24.1", "PYSEC-2019-132"),
    ("PyPI", "PyYAML", "5.3", "PYSEC-2020-96"),
    ("crates.io", "regex", "1.5.4", "RUSTSEC-2022-0013"),
    ("crates.io", "smallvec", "1.6.0", "RUSTSEC-2021-0003"),
    ("Go", "golang.org/x/text", "v0.3.5", "GO-2021-0113"),
];

#[test]
fn the_fixture_s_packages_carry_their_known_advisories() {
    let Some(dir) = osv_dir() else { return };
    let index = Index::from_records(
        ["Go", "crates.io", "PyPI"]
            .iter()
            .flat_map(|export| load(&dir, export)),
    );
    for arch in ["amd64", "arm64"] {
        let (inventory, _) = layered_inventory(arch);
        let mut affected: BTreeSet<(String, String)> = BTreeSet::new();
        for found in &inventory.packages {
            let package = Package {
                ecosystem: Ecosystem::parse(&found.ecosystem),
                name: found.name.clone(),
                version: found.version.clone(),
            };
            for hit in index.matches(&package) {
                if let Verdict::Affected { .. } = hit.verdict {
                    affected.insert((found.name.clone(), hit.record.id.clone()));
                }
            }
        }
        for (_, name, version, id) in KNOWN {
            assert!(
                affected.contains(&(name.to_owned(), id.to_owned())),
                "linux/{arch}: {name} {version} is not affected by {id}: {affected:?}"
            );
        }
        let stdlib = affected.iter().filter(|(name, _)| name == "stdlib").count();
        assert!(
            stdlib > 10,
            "linux/{arch}: Go 1.19.8's stdlib has {stdlib} advisories"
        );
        assert!(
            !affected.iter().any(|(name, _)| name == "Jinja2"),
            "linux/{arch}: Jinja2 was deleted by a whiteout, yet matched"
        );
        assert!(inventory.packages.iter().any(|p| p.ecosystem == "npm"));
        assert!(!index.covers(&Ecosystem::parse("npm")));
    }
}
