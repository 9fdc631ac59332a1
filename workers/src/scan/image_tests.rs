//! A whole image of several ecosystems, layered the way Dockerfiles layer them, with a later
//! layer deleting some of it: the inventory, its summary line and its SBOM.

use super::sbom::{cyclonedx, SbomSubject};
use super::scan_layers;
use super::test_layers::{layers, TarLayer};

const STATUS: &str = include_str!("catalogers/testdata/dpkg-status");
const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const SITE: &str = "usr/local/lib/python3.11/site-packages";
const LOCK_V3: &str = r#"{"name":"web","lockfileVersion":3,"packages":{"":{"name":"web"},"node_modules/ms":{"version":"2.1.3"}}}"#;
const CARGO_LOCK: &str = "version = 3\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.11\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

fn image() -> Vec<Vec<u8>> {
    vec![
        // FROM debian:12
        TarLayer::new()
            .dir("etc/")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("usr/lib/os-release", OS_RELEASE)
            .file("var/lib/dpkg/status", STATUS)
            .gzip(),
        // RUN pip install …
        TarLayer::new()
            .file(
                &format!("{SITE}/requests-2.31.0.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
            )
            .file(
                &format!("{SITE}/urllib3-2.0.7.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: urllib3\nVersion: 2.0.7\n",
            )
            .gzip(),
        // COPY web/ and RUN npm ci
        TarLayer::new()
            .file("srv/web/package-lock.json", LOCK_V3)
            .file(
                "srv/web/node_modules/ms/package.json",
                r#"{"name":"ms","version":"2.1.3"}"#,
            )
            .file("src/tool/Cargo.lock", CARGO_LOCK)
            .tar(),
        // RUN pip uninstall -y urllib3 && rm -rf /src
        TarLayer::new()
            .whiteout(&format!("{SITE}/urllib3-2.0.7.dist-info"))
            .whiteout("src")
            .gzip(),
    ]
}

#[test]
fn a_layered_image_gives_its_os_packages_and_summary_without_what_later_layers_deleted() {
    let inventory = scan_layers(layers(image())).unwrap();
    let os = inventory.os.as_ref().unwrap();
    assert_eq!(
        (os.id.as_str(), os.codename.as_deref()),
        ("debian", Some("bookworm"))
    );
    let got: Vec<_> = inventory
        .packages
        .iter()
        .map(|p| (p.ecosystem.as_str(), p.name.as_str(), p.layer.index))
        .collect();
    assert_eq!(
        got,
        [
            ("Debian", "bash", 0),
            ("Debian", "libc6", 0),
            ("Debian", "libssl3", 0),
            ("Debian", "tzdata", 0),
            ("PyPI", "requests", 1),
            ("npm", "ms", 2),
            ("npm", "ms", 2),
        ]
    );
    assert_eq!(
        inventory.summary_line(),
        "Found 7 packages (deb 4, npm 2, pypi 1)"
    );
    assert!(
        inventory.unreadable.is_empty(),
        "{:?}",
        inventory.unreadable
    );
}

#[test]
fn the_sbom_lists_every_package_with_its_purl() {
    let inventory = scan_layers(layers(image())).unwrap();
    let subject = SbomSubject {
        image: "127.0.0.1:8080/app/web@sha256:0123",
        tool_version: env!("CARGO_PKG_VERSION"),
        timestamp: "2026-12-02T12:00:00Z",
    };
    let bom = cyclonedx(&inventory, &subject);
    let components = bom["components"].as_array().unwrap();
    assert_eq!(components.len(), 1 + inventory.packages.len());
    let purls: Vec<&str> = components
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(purls.contains(&"pkg:pypi/requests@2.31.0"), "{purls:?}");
    assert!(
        purls.contains(&"pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12"),
        "{purls:?}"
    );
    // Inventory JSON round trip, as the worker will send it.
    let json = serde_json::to_string(&inventory).unwrap();
    assert_eq!(
        serde_json::from_str::<super::Inventory>(&json).unwrap(),
        inventory
    );
}
