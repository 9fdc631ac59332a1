//! Scans one image of an OCI image layout with the worker's pure scan library and prints its
//! inventory as JSON, or as an SBOM with `--sbom spdx|cyclonedx` (the summary line goes to
//! stderr). For the scan benchmark (scripts/bench_scan.sh), which times it beside syft on the
//! same bytes, and for checking the SBOMs with other tools:
//!
//! `cargo run --release -p kiln-worker --example scan_oci_layout -- [--sbom FORMAT] DIR REFERENCE [ARCH]`

use std::path::PathBuf;
use std::process::ExitCode;

use kiln_worker::scan::sbom::{cyclonedx, spdx, SbomSubject};
use kiln_worker::scan::{oci_layout, scan_layers};

const USAGE: &str = "usage: scan_oci_layout [--sbom spdx|cyclonedx] DIR REFERENCE [ARCH]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sbom = match args.first().map(String::as_str) {
        Some("--sbom") if args.len() > 1 => {
            let format = args.remove(1);
            args.remove(0);
            Some(format)
        }
        _ => None,
    };
    let (dir, reference, arch) = match args.as_slice() {
        [dir, reference] => (dir, reference, None),
        [dir, reference, arch] => (dir, reference, Some(arch.as_str())),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let result = oci_layout::image(&PathBuf::from(dir), reference, arch)
        .map_err(|e| e.to_string())
        .and_then(|image| {
            let layers = image.open_layers().map_err(|e| e.to_string())?;
            let inventory = scan_layers(layers).map_err(|e| e.to_string())?;
            Ok((image.manifest_digest, inventory))
        });
    let (digest, inventory) = match result {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "{} in {:.3} s",
        inventory.summary_line(),
        started.elapsed().as_secs_f64()
    );
    let image = format!("{dir}@{digest}");
    let subject = SbomSubject {
        image: &image,
        tool_version: env!("CARGO_PKG_VERSION"),
        timestamp: "2026-01-01T00:00:00Z",
    };
    let json = match sbom.as_deref() {
        None => serde_json::to_value(&inventory).expect("an inventory serialises"),
        Some("spdx") => spdx(&inventory, &subject),
        Some("cyclonedx") => cyclonedx(&inventory, &subject),
        Some(other) => {
            eprintln!("unknown SBOM format {other:?}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{json}");
    ExitCode::SUCCESS
}
