//! The real OSV exports in `../shared/osv/` (Go, crates.io, PyPI, Debian:12; see its README),
//! which are not part of the repository: tests that read them say so and pass without them.
//! `KILN_OSV_DIR` points elsewhere.

use std::path::{Path, PathBuf};

use kiln::vuln::osv::{self, Record};

pub fn osv_dir() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("KILN_OSV_DIR").map(PathBuf::from),
        Some(manifest.join("../shared/osv")),
        Some(manifest.join("../../shared/osv")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("Go/all.zip").is_file());
    if found.is_none() {
        eprintln!("skipped: no OSV data (set KILN_OSV_DIR or put the exports in ../shared/osv)");
    }
    found
}

pub fn load(dir: &Path, export: &str) -> Vec<Record> {
    osv::read_zip(&dir.join(export).join("all.zip"))
        .unwrap()
        .map(|r| r.unwrap_or_else(|e| panic!("{export}: {e}")))
        .collect()
}
