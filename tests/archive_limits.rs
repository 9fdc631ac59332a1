//! Archives that explode and oversized build arguments are refused up front, with a clear
//! error, and leave nothing behind: extended-header bombs, decompression bombs, hard links
//! through escaping symlinks, remote tarballs over the limits, and huge build arguments.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap().into()
}

/// A tar header block declaring `size` bytes of contents.
fn header(kind: tar::EntryType, path: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_path(path).unwrap();
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// A gzip stream of `members`: gzip allows members to follow one another, so one member of
/// 16 MiB of one byte, compressed once and sent again and again, makes a stream of many GiB
/// that costs only its compressed size to produce.
fn stream(members: impl Iterator<Item = Bytes> + Send + 'static) -> reqwest::Body {
    reqwest::Body::wrap_stream(futures::stream::iter(members.map(Ok::<_, std::io::Error>)))
}

/// 16 MiB of `byte`, as one gzip member.
fn run_of(byte: u8) -> Bytes {
    gzip(&vec![byte; 16 << 20])
}

/// The end-of-archive marker.
fn end() -> Bytes {
    gzip(&[0; 1024])
}

/// Nothing kept: no context, and no temp file of the refused upload.
fn assert_nothing_stored(server: &TestServer) {
    assert_eq!(server.stored_contexts(), 0);
    let tmp = std::fs::read_dir(server.data.path().join("contexts/tmp")).unwrap();
    assert_eq!(tmp.count(), 0, "a refused upload left a temp file");
}

/// Peak resident memory of this process, which runs the server, in bytes.
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pax_header_bomb_is_refused_before_it_is_read() {
    let server = TestServer::start().await;
    // One PAX header declaring 1 GiB, and the 1 GiB, in about 1 MB of gzip.
    let first = gzip(&header(tar::EntryType::XHeader, "PaxHeaders/bomb", GIB));
    let filler = run_of(b'a');
    let members = std::iter::once(first)
        .chain(std::iter::repeat_n(filler, (GIB / (16 * MIB)) as usize))
        .chain(std::iter::once(end()));
    let before = vm_hwm();
    let (status, body) = server.upload_context(stream(members)).await;
    let grown = vm_hwm().saturating_sub(before);
    eprintln!("peak memory grew by {} MiB", grown / MIB);
    // Reading the header whole would take over 1 GiB.
    assert!(grown < 256 * MIB, "peak memory grew by {grown} bytes");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("'PaxHeaders/bomb' is a PAX header of 1 GiB; the limit is 1 MiB"),
        "{body}"
    );
    assert_nothing_stored(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_refused_with_413() {
    let server = TestServer::start().await;
    let zeros = run_of(0);
    let runs_in_10_gib = (10 * GIB / (16 * MIB)) as usize;

    // 10 GiB of zeros, no archive in sight: the first zero block ends the archive, and the
    // rest is padding that must still be decompressed to be checked.
    let members = std::iter::repeat_n(zeros.clone(), runs_in_10_gib);
    let (status, body) = server.upload_context(stream(members)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("expands more than 100 times"), "{body}");

    // A tar of one 10 GiB file: refused at its header, past the 8 GiB unpacked default.
    let first = gzip(&header(tar::EntryType::Regular, "huge.bin", 10 * GIB));
    let members = std::iter::once(first)
        .chain(std::iter::repeat_n(zeros.clone(), runs_in_10_gib))
        .chain(std::iter::once(end()));
    let (status, body) = server.upload_context(stream(members)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("'huge.bin' declares 10 GiB") && body.contains("limit of 8 GiB"),
        "{body}"
    );

    // Many 16 MiB files of zeros, each harmless on its own.
    let members = (0..runs_in_10_gib)
        .flat_map(move |i| {
            let header = header(tar::EntryType::Regular, &format!("zeros-{i}"), 16 * MIB);
            [gzip(&header), zeros.clone()]
        })
        .chain(std::iter::once(end()));
    let (status, body) = server.upload_context(stream(members)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("expands more than 100 times"), "{body}");
    assert_nothing_stored(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unpacked_limit_follows_its_flag() {
    let server = TestServer::start_with(|a| a.max_context_unpacked_size = Some(MIB)).await;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2 * MIB);
    header.set_mode(0o644);
    tar.append_data(&mut header, "two-mib", &vec![0u8; 2 << 20][..])
        .unwrap();
    let body = gzip(&tar.into_inner().unwrap());
    let (status, body) = server.upload_context(body).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("'two-mib' declares 2 MiB"), "{body}");
    assert_nothing_stored(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_link_through_an_escaping_symlink_is_refused() {
    let server = TestServer::start().await;
    let mut tar = tar::Builder::new(Vec::new());
    for (kind, name, target) in [
        (tar::EntryType::Symlink, "link", "/etc"),
        (tar::EntryType::Link, "h", "link/secret"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o644);
        tar.append_link(&mut header, name, target).unwrap();
    }
    let (status, body) = server
        .upload_context(gzip(&tar.into_inner().unwrap()))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("'h' links to 'link/secret', which is outside the build context"),
        "{body}"
    );
    assert_nothing_stored(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_build_args_are_refused_at_submission() {
    let server = TestServer::start().await;
    // 1 MiB, through the API: a command line cannot carry it (Linux caps one argument or
    // environment string at 128 KiB).
    let resp = server
        .http()
        .post(format!("{}/api/runs", server.url))
        .json(&serde_json::json!({
            "context": {"kind": "tarball", "url": "http://127.0.0.1:9/ctx.tar.gz"},
            "dockerfile": "Dockerfile",
            "images": [],
            "buildArgs": {"BIG": "x".repeat(1 << 20)},
            "push": false,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("build argument 'BIG' has a 1 MiB value, the limit is 64 KiB"),
        "{body}"
    );

    // Through the CLI, from the environment: refused before the context is uploaded.
    let ctx = context(&[("Dockerfile", "FROM scratch\n")]);
    let out = server
        .kiln(&[
            "build",
            "--no-push",
            "--build-arg",
            "BIG",
            ctx.path().to_str().unwrap(),
        ])
        .env("BIG", "x".repeat(100 << 10))
        .output()
        .await
        .unwrap();
    let out = CliRun::from(out);
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(
        out.stderr
            .contains("build argument 'BIG' has a 100 KiB value, the limit is 64 KiB"),
        "{}",
        out.stderr
    );
    assert_eq!(server.run_count().await, 0);
    assert_eq!(server.stored_contexts(), 0);
}

/// Builds a tarball served from `body` and returns why its run failed.
async fn failed_tarball_run(server: &TestServer, body: Vec<u8>) -> String {
    let url = format!("{}/ctx.tar.gz", serve_tarball(body).await);
    let out = server.kiln_output(&["build", "--no-push", &url]).await;
    assert_eq!(out.code, 1, "{out:#?}");
    let run = server.run_json(&out.run_id()).await;
    run["errorMessage"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_tarballs_over_the_limits_fail_the_run() {
    let server = TestServer::start_with(|a| {
        a.max_context_size = 64 << 10;
        a.max_context_unpacked_size = Some(MIB);
    })
    .await;
    // Over the download limit: noise does not compress.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..128 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let message = failed_tarball_run(&server, noise).await;
    assert!(
        message.contains("larger than the server's limit of 64 KiB"),
        "{message}"
    );

    // Small to download, over the unpacked limit once decompressed.
    let first = gzip(&header(tar::EntryType::Regular, "zeros", 2 * MIB));
    let mut body = first.to_vec();
    body.extend_from_slice(&gzip(&vec![0; 2 << 20]));
    body.extend_from_slice(&end());
    let message = failed_tarball_run(&server, body).await;
    assert!(message.contains("'zeros' declares 2 MiB"), "{message}");
}
