//! `kiln scan` end to end: the real OSV exports (`../shared/osv/`, see tests/common/osv.rs;
//! without them this says so and passes) imported with `kiln vulndb import`, and the scan
//! fixture (tests/common/scan_images.rs) scanned by a real server's embedded worker, in the
//! test registry and copied into Kiln's own, as a user sees it: the log, the exit codes,
//! `kiln scan show` and the registry listing's findings column.

mod common;

use std::path::Path;

use common::oci::skopeo_copy;
use common::osv::osv_dir;
use common::scan_images::LAYERED;
use common::*;

/// `kiln vulndb import` of the exports named, which must succeed.
async fn import(server: &TestServer, osv: &Path, exports: &[&str]) -> CliRun {
    let paths: Vec<String> = exports
        .iter()
        .map(|e| osv.join(e).join("all.zip").display().to_string())
        .collect();
    let mut args = vec!["vulndb", "import"];
    args.extend(paths.iter().map(String::as_str));
    let out = server.kiln_output(&args).await;
    assert_eq!(out.code, 0, "{out:#?}");
    out
}

/// What every scan of the fixture's two platforms prints, whatever the database holds.
fn assert_both_platforms(out: &CliRun) {
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            out.stdout.contains(&format!("Scanning {platform} sha256:")),
            "{platform}: {out:#?}"
        );
    }
    assert!(out.stdout.contains("(3 layers)"), "{out:#?}");
    assert!(out.stdout.contains("packages (deb "), "{out:#?}");
    // The whited-out Jinja2 is neither found nor matched.
    assert!(!out.stdout.contains("Jinja2"), "{out:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_scanned_against_the_real_exports() {
    let Some(osv) = osv_dir() else { return };
    let server = TestServer::start().await;
    // PyPI comes later, to see a re-scan name the findings a newer import brings.
    import(&server, &osv, &["Go", "crates.io", "Debian:12"]).await;
    let fixture = LAYERED.trim_start_matches(&format!("{REGISTRY}/"));
    let image = format!("{fixture}:latest");
    let remote = ["scan", "--registry", REGISTRY, image.as_str()];

    // npm (and here PyPI) has no data: the run fails, naming them.
    let out = server.kiln_output(&remote).await;
    assert_both_platforms(&out);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stdout.contains("No vulnerability data for npm"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("Scan failed: no vulnerability data for ")
            && out.stdout.contains("--allow-missing-db"),
        "{out:#?}"
    );
    for id in ["RUSTSEC-2022-0013", "RUSTSEC-2021-0003", "GO-2021-0113"] {
        assert!(out.stdout.contains(id), "{id}: {out:#?}");
    }
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("GO-") && l.contains("stdlib")),
        "{out:#?}"
    );
    // The record names its CVE twice; the finding line once.
    assert!(
        out.stdout
            .contains("GO-2025-4008 (CVE-2025-58189) stdlib v1.19.8"),
        "{out:#?}"
    );

    // Allowed to miss data: it passes, and reads no layer again.
    let allowed = [&remote[..], &["--allow-missing-db"]].concat();
    let out = server.kiln_output(&allowed).await;
    assert_both_platforms(&out);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stdout
            .matches("Inventory already known for this digest: no layer read")
            .count(),
        2,
        "{out:#?}"
    );
    // A threshold fails it, saying why (a CRITICAL and a HIGH RUSTSEC on each platform).
    for (threshold, reached) in [("critical", 2), ("high", 4)] {
        let gated = [&allowed[..], &["--severity-threshold", threshold]].concat();
        let out = server.kiln_output(&gated).await;
        assert_eq!(out.code, 1, "{threshold}: {out:#?}");
        let reason = format!(
            "Scan failed: {reached} findings at or above the severity threshold {threshold}"
        );
        assert!(out.stdout.contains(&reason), "{out:#?}");
    }

    // PyPI imported: the re-scan matches the stored inventories and names what is new.
    import(&server, &osv, &["PyPI"]).await;
    let out = server.kiln_output(&allowed).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("PYSEC-2018-28") && l.contains("requests 2.19.1")),
        "{out:#?}"
    );
    assert!(
        !out.stdout.contains("No vulnerability data for PyPI"),
        "{out:#?}"
    );
    let new_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Since the scan of "))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(new_line.contains("PYSEC-2018-28 requests"), "{new_line}");

    // PyPI re-imported without PYSEC-2018-28: the re-scan names it resolved.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("PyPI");
    std::fs::create_dir(&folder).unwrap();
    for record in common::osv::load(&osv, "PyPI") {
        if record.id != "PYSEC-2018-28" {
            let path = folder.join(format!("{}.json", record.id));
            std::fs::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
        }
    }
    let out = server
        .kiln_output(&["vulndb", "import", folder.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server.kiln_output(&allowed).await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains(", 1 resolved (PYSEC-2018-28 requests)"),
        "{out:#?}"
    );

    // Copied into Kiln's own registry: the same digests, scanned, shown and listed.
    let own = server.url.trim_start_matches("http://");
    let repo = unique_repo("fixture");
    let creds = format!("owner:{}", server.owner_token());
    skopeo_copy(
        &format!("docker://{LAYERED}:latest"),
        &format!("docker://{own}/{repo}:v1"),
        &["--all", "--dest-creds", &creds],
    )
    .await;
    let out = server
        .kiln_output(&["scan", &format!("{own}/{repo}:v1"), "--allow-missing-db"])
        .await;
    assert_both_platforms(&out);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = server
        .kiln_output(&["scan", "show", &format!("{repo}:v1")])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.contains("RUSTSEC-2022-0013"), "{out:#?}");
    // Shown as the image asked for, though first scanned in the test registry.
    assert!(
        out.stdout.contains(&format!("{own}/{repo}@sha256:")) && !out.stdout.contains(fixture),
        "{out:#?}"
    );
    let out = server
        .kiln_output(&[
            "registry",
            "repository",
            "show-manifests",
            &repo,
            "--detail",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.lines().next().unwrap().ends_with("FINDINGS"),
        "{out:#?}"
    );
    // The index sums its two images' findings (a CRITICAL and a HIGH RUSTSEC each).
    for (media, findings) in [("index", " C2 H4 "), ("manifest", " C1 H2 ")] {
        let rows: Vec<&str> = out.stdout.lines().filter(|l| l.contains(media)).collect();
        assert!(!rows.is_empty(), "{out:#?}");
        assert!(rows.iter().all(|r| r.contains(findings)), "{out:#?}");
    }
}
