//! The real OSV exports in `../shared/osv/` (see its README): read from there, never copied
//! into the repository. `KILN_OSV_DIR` points elsewhere.

use std::path::PathBuf;

/// The folder holding `Go/all.zip` and the other exports; `None` (saying so) without it, so
/// the tests that need it pass with a message where the data is absent.
pub fn osv_dir() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let found = [
        std::env::var_os("KILN_OSV_DIR").map(PathBuf::from),
        Some(manifest.join("../shared/osv")),
        Some(manifest.join("../../shared/osv")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("Go/all.zip").is_file());
    if found.is_none() {
        eprintln!("skipped: no OSV data (set KILN_OSV_DIR or put the exports in ../shared/osv)");
    }
    found
}

/// Every record of one export (`Go`, `PyPI`, …), panicking on any that does not parse.
pub fn load(dir: &std::path::Path, export: &str) -> Vec<kiln::vuln::osv::Record> {
    kiln::vuln::osv::read_zip(&dir.join(export).join("all.zip"))
        .unwrap()
        .map(|r| r.unwrap_or_else(|e| panic!("{export}: {e}")))
        .collect()
}
