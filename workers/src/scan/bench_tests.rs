//! `cargo test -p kiln-worker --release scan::bench -- --ignored --nocapture`: the inventory
//! of a synthetic image (4 gzip layers, 50,000 files, about 200 MB unpacked), timed.

use std::time::Instant;

use super::layers::scan_layers;
use super::test_layers::{layers, TarLayer};

const LAYERS: usize = 4;
const FILES_PER_LAYER: usize = 12_500;
const FILE_SIZE: usize = 4 * 1024;

/// Pseudo-random bytes (xorshift), so gzip does not shrink the layers to nothing.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Text-like: gzip gets about 2:1, as on real layers.
            b"abcdefghijklmnop"[(state & 15) as usize]
        })
        .collect()
}

/// Peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture, in release"]
fn bench_inventory_of_a_synthetic_multi_layer_image() {
    let mut tars = Vec::new();
    let mut unpacked = 0usize;
    for layer in 0..LAYERS {
        let mut tar = TarLayer::new();
        for i in 0..FILES_PER_LAYER {
            let path = match i % 50 {
                // 2% npm manifests, the rest files no cataloger reads.
                0 => format!("app{layer}/node_modules/pkg{i}/package.json"),
                _ => format!("usr/share/data{layer}/dir{}/file{i}.dat", i % 100),
            };
            let content = if path.ends_with("package.json") {
                format!(r#"{{"name":"pkg{i}","version":"1.0.{layer}"}}"#).into_bytes()
            } else {
                noise((layer * FILES_PER_LAYER + i) as u64, FILE_SIZE)
            };
            unpacked += content.len();
            tar = tar.file(&path, content);
        }
        tars.push(tar.gzip());
    }
    let compressed: usize = tars.iter().map(Vec::len).sum();
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let inventory = scan_layers(layers(tars)).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let rss_after = peak_rss_mib();
    assert_eq!(inventory.packages.len(), LAYERS * FILES_PER_LAYER / 50);
    let mb = |bytes: usize| bytes as f64 / 1e6;
    println!(
        "inventory of {} files in {LAYERS} layers: {:.0} MB unpacked, {:.0} MB gzip, {seconds:.2} s: \
         {:.0} MB/s unpacked, {:.0} MB/s compressed; {}",
        LAYERS * FILES_PER_LAYER,
        mb(unpacked),
        mb(compressed),
        mb(unpacked) / seconds,
        mb(compressed) / seconds,
        inventory.summary_line(),
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!("peak RSS {after:.0} MiB (the layers in memory: {before:.0} MiB before the scan)");
    }
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture, in release"]
fn bench_inventory_of_go_binaries() {
    let Ok(skopeo) = std::fs::read("/usr/bin/skopeo") else {
        eprintln!("skipped: needs /usr/bin/skopeo");
        return;
    };
    const COPIES: usize = 8;
    let mut tar = TarLayer::new();
    for i in 0..COPIES {
        tar = tar.executable(&format!("usr/bin/skopeo{i}"), &skopeo);
    }
    let tar = tar.gzip();
    let started = Instant::now();
    let inventory = scan_layers(layers(vec![tar])).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let unpacked = (COPIES * skopeo.len()) as f64 / 1e6;
    println!(
        "{COPIES} Go binaries, {unpacked:.0} MB unpacked, in {seconds:.2} s: {:.0} MB/s; {}",
        unpacked / seconds,
        inventory.summary_line(),
    );
}
