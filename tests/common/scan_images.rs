//! The images scripts/build-scan-images.sh builds (scripts/setup.sh runs it): where their OCI
//! layouts are on disk, their names in the test registry, and what they hold.

use std::path::PathBuf;

use kiln_worker::scan::{oci_layout, scan_layers, Inventory};

/// The two-platform image: `:latest` is the index, `:amd64` and `:arm64` its images.
pub const LAYERED: &str = "127.0.0.1:5000/scan-fixtures/layered";

/// The OCI layout of [`LAYERED`], with the references `latest`, `amd64` and `arm64`.
pub fn layered_layout() -> PathBuf {
    let state = std::env::var_os("KILN_SETUP_DIR").unwrap_or_else(|| "/var/lib/kiln-setup".into());
    let layout = PathBuf::from(state).join("scan-images/layered");
    assert!(
        layout.join("index.json").is_file(),
        "{} is missing: run scripts/build-scan-images.sh (scripts/setup.sh does)",
        layout.display()
    );
    layout
}

/// Kiln's inventory of [`LAYERED`]'s image for `arch`, read from the layout with the
/// worker's pure scan library, and that image's manifest digest.
pub fn layered_inventory(arch: &str) -> (Inventory, String) {
    let image = oci_layout::image(&layered_layout(), "latest", Some(arch)).unwrap();
    let inventory = scan_layers(image.open_layers().unwrap()).unwrap();
    (inventory, image.manifest_digest)
}

/// The language packages left after layer 3's whiteouts, the same on both platforms, as
/// (OSV ecosystem, name, version): Jinja2 2.10 and the second Go program are deleted, and
/// node_modules/ is opaque with only minimist 1.2.6 in it (the lockfile still names 1.2.0).
pub const LANGUAGE_PACKAGES: &[(&str, &str, &str)] = &[
    ("PyPI", "requests", "2.19.1"),
    ("PyPI", "urllib3", "1.24.1"),
    ("PyPI", "PyYAML", "5.3"),
    ("npm", "lodash", "4.17.15"),
    ("npm", "minimist", "1.2.0"),
    ("npm", "minimist", "1.2.6"),
    ("Go", "golang.org/x/text", "v0.3.5"),
    ("Go", "stdlib", "v1.19.8"),
    ("crates.io", "regex", "1.5.4"),
    ("crates.io", "smallvec", "1.6.0"),
];
