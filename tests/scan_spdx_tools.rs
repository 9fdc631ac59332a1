//! Kiln's SPDX 2.3 export of a real image, checked by another implementation of the
//! specification: spdx-tools' `pyspdxtools -i` (PyPI `spdx-tools`, which scripts/setup.sh
//! installs) parses the document and validates it, exiting non-zero on any violation.

mod common;

use std::process::Command;

use common::scan_images::layered_inventory;
use kiln_worker::scan::sbom::{spdx, SbomSubject};

#[test]
fn spdx_tools_accept_the_debian_image_s_spdx_document() {
    let (inventory, digest) = layered_inventory("amd64");
    let image = format!("127.0.0.1:5000/scan-fixtures/layered@{digest}");
    let subject = SbomSubject {
        image: &image,
        tool_version: env!("CARGO_PKG_VERSION"),
        timestamp: "2026-12-02T12:00:00Z",
    };
    let document = spdx(&inventory, &subject);
    let packages = document["packages"].as_array().unwrap().len();
    assert_eq!(
        packages,
        inventory.packages.len() + 2,
        "the image, its OS, its packages"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.spdx.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let out = Command::new("pyspdxtools")
        .arg("-i")
        .arg(&path)
        .output()
        .expect("pyspdxtools is not on PATH: pip install spdx-tools (scripts/setup.sh does)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "spdx-tools rejected the document:\n{said}"
    );
    assert!(!said.contains("ERROR"), "{said}");
}
