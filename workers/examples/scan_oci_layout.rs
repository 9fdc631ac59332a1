//! Scans one image of an OCI image layout with the worker's pure scan library and prints its
//! inventory as JSON (the summary line goes to stderr). For the scan benchmark
//! (scripts/bench_scan.sh), which times it beside syft on the same bytes:
//!
//! `cargo run --release -p kiln-worker --example scan_oci_layout -- DIR REFERENCE [ARCH]`

use std::path::PathBuf;
use std::process::ExitCode;

use kiln_worker::scan::{oci_layout, scan_layers};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, reference, arch) = match args.as_slice() {
        [dir, reference] => (dir, reference, None),
        [dir, reference, arch] => (dir, reference, Some(arch.as_str())),
        _ => {
            eprintln!("usage: scan_oci_layout DIR REFERENCE [ARCH]");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let result = oci_layout::image(&PathBuf::from(dir), reference, arch)
        .map_err(|e| e.to_string())
        .and_then(|image| image.open_layers().map_err(|e| e.to_string()))
        .and_then(|layers| scan_layers(layers).map_err(|e| e.to_string()));
    match result {
        Ok(inventory) => {
            eprintln!(
                "{} in {:.3} s",
                inventory.summary_line(),
                started.elapsed().as_secs_f64()
            );
            println!(
                "{}",
                serde_json::to_string(&inventory).expect("an inventory serialises")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
