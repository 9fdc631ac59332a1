//! Scan reports on a real server: a fake worker (the raw protocol, as a worker speaks it)
//! posts hand-built inventories to `/api/worker/runs/{id}/scans` and reads the report back:
//! a Debian 12 package affected by its source's `Debian:12` record, an unparsable version
//! reported as unknown, an ecosystem without data named as missing, the stored report
//! answered without a new inventory, a newer import re-matched from the stored inventory
//! with what changed; then `GET /api/scans`, and the findings column of the registry listing.

mod common;

use common::oci::{put_manifest, OCI_INDEX, OCI_MANIFEST};
use common::*;
use serde_json::{json, Value};

const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
const HIGH: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";

/// Writes `records` to `<dir>/<source>/` and imports the folder as the owner.
async fn import(server: &TestServer, source: &str, records: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(source);
    std::fs::create_dir(&folder).unwrap();
    for record in records {
        let name = format!("{}.json", record["id"].as_str().unwrap());
        std::fs::write(folder.join(name), record.to_string()).unwrap();
    }
    let out = server
        .kiln_output(&["vulndb", "import", folder.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{out:#?}");
}

/// `DEBIAN-CVE-T1` (openssl below 3.0.15-1~deb12u1, scored `vector`) and `PYSEC-T1` (django
/// below 4.2.16, unscored).
async fn import_openssl_and_django(server: &TestServer, vector: &str) {
    let openssl = "openssl";
    let debian = record(
        "DEBIAN-CVE-T1",
        "Debian:12",
        openssl,
        "3.0.15-1~deb12u1",
        Some(vector),
    );
    import(server, "Debian:12", &[debian]).await;
    let django = record("PYSEC-T1", "PyPI", "django", "4.2.16", None);
    import(server, "PyPI", &[django]).await;
}

fn record(id: &str, ecosystem: &str, name: &str, fixed: &str, vector: Option<&str>) -> Value {
    let mut record = json!({"id": id, "modified": "2024-05-01T00:00:00Z", "aliases": ["CVE-2024-0001"],
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
    if let Some(vector) = vector {
        record["severity"] = json!([{"type": "CVSS_V3", "score": vector}]);
    }
    record
}

fn package(ecosystem: &str, name: &str, version: &str, source: Option<&str>) -> Value {
    let mut p = json!({"ecosystem": ecosystem, "name": name, "version": version,
        "layer": {"index": 0, "digest": format!("sha256:{}", "1".repeat(64))},
        "path": "var/lib/dpkg/status", "purl": format!("pkg:generic/{name}@{version}")});
    if let Some(source) = source {
        p["sourceName"] = json!(source);
    }
    p
}

fn debian12(packages: Vec<Value>) -> Value {
    json!({"os": {"id": "debian", "versionId": "12"}, "packages": packages})
}

/// A fake worker holding a leased run.
struct Worker {
    http: reqwest::Client,
    run: String,
    attempt: u64,
}

impl Worker {
    /// Leases a scan run (of an image nobody pushed: the fake worker never reads it).
    async fn lease(server: &TestServer) -> Worker {
        let body = json!({"words": ["never/read:v1"]});
        let (status, body) = server
            .post_json_as(server.owner_token(), "/api/runs/scan", &body)
            .await;
        assert_eq!(status, 201, "{body:#}");
        Worker::lease_run(server, body["id"].as_str().unwrap(), "scan").await
    }

    /// Leases `run`, which is of `kind`, as a worker running only that kind.
    async fn lease_run(server: &TestServer, run: &str, kind: &str) -> Worker {
        let token = server.create_token("host1", &["worker"], &[]).await;
        let http = server.http_as(&token);
        let worker = json!({"id": "host1-1", "name": "host1", "platforms": ["linux/amd64"],
            "protocol": 2, "jobs": [kind]});
        let resp = server.lease_raw(&http, worker, 1000).await;
        let lease: Value = resp.json().await.unwrap();
        assert_eq!(lease["runId"], run, "{lease:#}");
        Worker {
            http,
            run: run.to_string(),
            attempt: lease["attempt"].as_u64().unwrap(),
        }
    }

    /// Posts a `ScanUpload` of `target` (with `inventory`, if any): the status and body.
    async fn post(
        &self,
        server: &TestServer,
        attempt: u64,
        target: &Value,
        inventory: Option<&Value>,
    ) -> (u16, Value) {
        let mut upload = json!({"attempt": attempt, "target": target, "scannerVersion": 1});
        if let Some(inventory) = inventory {
            upload["inventory"] = inventory.clone();
        }
        let resp = self
            .http
            .post(format!("{}/api/worker/runs/{}/scans", server.url, self.run))
            .json(&upload)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Posts and expects a report.
    async fn report(
        &self,
        server: &TestServer,
        target: &Value,
        inventory: Option<&Value>,
    ) -> Value {
        let (status, body) = self.post(server, self.attempt, target, inventory).await;
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["answer"], "report", "{body:#}");
        body
    }
}

/// Pushes an image to the server's registry under `tag`: its digest and size.
async fn push(server: &TestServer, repo: &str, tag: &str) -> (String, usize) {
    let digest = common::oci::push_image(
        &server.http(),
        &server.url,
        repo,
        tag,
        &format!("{repo}:{tag}"),
    )
    .await;
    let resp = server
        .http()
        .get(format!("{}/v2/{repo}/manifests/{digest}", server.url))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    (digest, resp.bytes().await.unwrap().len())
}

fn target(server: &TestServer, repo: &str, tag: &str, digest: &str) -> Value {
    let registry = server.url.trim_start_matches("http://");
    json!({"registry": registry, "repository": repo, "tag": tag, "digest": digest})
}

/// `target` as a worker names an index's image: with its platform.
fn on_platform(mut target: Value, platform: &str) -> Value {
    target["platform"] = json!(platform);
    target
}

/// `GET /api/scans` as the owner: the status and body.
async fn get_scans(server: &TestServer, repo: &str, reference: &str) -> (u16, Value) {
    let resp = server
        .http()
        .get(format!("{}/api/scans", server.url))
        .query(&[("repository", repo), ("reference", reference)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn inventories_are_matched_stored_and_rematched_after_an_import() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    import_openssl_and_django(&server, CRITICAL).await;
    let worker = Worker::lease(&server).await;
    let repo = unique_repo("scan");
    let (digest, _) = push(&server, &repo, "v1").await;
    let web = target(&server, &repo, "v1", &digest);

    let (status, first) = worker.post(&server, worker.attempt, &web, None).await;
    assert_eq!((status, &first), (200, &json!({"answer": "needInventory"})));

    let inventory = debian12(vec![
        package("Debian", "libssl3", "3.0.11-1~deb12u2", Some("openssl")),
        package("Debian", "zlib1g", "1:1.2.13.dfsg-1", Some("zlib")),
        package("PyPI", "Django", "not a version!", None),
        package("npm", "left-pad", "1.0.0", None),
    ]);
    let report = worker.report(&server, &web, Some(&inventory)).await;
    assert_eq!(report["target"]["digest"], digest.as_str());
    assert_eq!(report["packages"], 4);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{report:#}");
    let ssl = &findings[0];
    assert_eq!(ssl["id"], "DEBIAN-CVE-T1");
    assert_eq!(ssl["ecosystem"], "Debian:12");
    assert_eq!(ssl["package"], "libssl3");
    assert_eq!(ssl["source"], "openssl");
    assert_eq!(ssl["installedVersion"], "3.0.11-1~deb12u2");
    assert_eq!(ssl["fixedVersion"], "3.0.15-1~deb12u1");
    assert_eq!(ssl["severity"], "critical");
    assert_eq!(ssl["aliases"], json!(["CVE-2024-0001"]));
    assert!(ssl.get("unknown").is_none(), "{ssl:#}");
    let django = &findings[1];
    assert_eq!(django["id"], "PYSEC-T1");
    assert_eq!(django["severity"], "unknown");
    let unknown = django["unknown"].as_str().unwrap();
    assert!(
        unknown.contains("cannot parse version \"not a version!\""),
        "{unknown}"
    );
    assert_eq!(report["missingDatabases"], json!(["npm"]));
    assert_eq!(report["totals"]["critical"], 1);
    assert_eq!(report["totals"]["unknown"], 1);
    assert_eq!(report["database"]["version"], 2);
    assert!(report.get("changes").is_none(), "{report:#}");

    // The same digest against the same database: the stored report, not a new match.
    let again = worker.report(&server, &web, None).await;
    assert_eq!(again["scannedAt"], report["scannedAt"]);
    assert_eq!(again["findings"], report["findings"]);

    // A stale attempt is told to stop.
    let (status, stale) = worker.post(&server, worker.attempt + 1, &web, None).await;
    assert_eq!(status, 409, "{stale:#}");
    assert_eq!(stale["error"]["code"], "STALE_ATTEMPT");

    // A newer import: the stored inventory is matched again, and the report says what changed.
    import(
        &server,
        "Debian:12",
        &[record(
            "DEBIAN-CVE-T2",
            "Debian:12",
            "openssl",
            "3.0.16-1~deb12u1",
            Some(HIGH),
        )],
    )
    .await;
    let rescanned = worker.report(&server, &web, None).await;
    assert_eq!(rescanned["database"]["version"], 3);
    assert_ne!(rescanned["scannedAt"], report["scannedAt"]);
    let changes = &rescanned["changes"];
    assert_eq!(changes["previousScannedAt"], report["scannedAt"]);
    assert_eq!(changes["new"], json!(["DEBIAN-CVE-T2 libssl3"]));
    assert_eq!(changes["resolved"], json!(["DEBIAN-CVE-T1 libssl3"]));
    assert_eq!(rescanned["totals"]["critical"], 0);
    assert_eq!(rescanned["totals"]["high"], 1);

    let (status, stored) = get_scans(&server, &repo, "v1").await;
    assert_eq!(status, 200, "{stored:#}");
    assert_eq!(stored.as_array().unwrap().len(), 1);
    assert_eq!(stored[0]["findings"], rescanned["findings"]);
    let (status, by_digest) = get_scans(&server, &repo, &digest).await;
    assert_eq!(status, 200, "{by_digest:#}");
    assert_eq!(by_digest[0]["findings"], stored[0]["findings"]);
    // Each is shown as it was asked for: by tag names the tag, by digest none.
    assert_eq!(stored[0]["target"]["tag"], "v1", "{stored:#}");
    assert!(by_digest[0]["target"].get("tag").is_none(), "{by_digest:#}");
}

#[tokio::test]
async fn stored_reports_are_served_per_platform_and_listed_by_severity() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    import_openssl_and_django(&server, HIGH).await;
    let worker = Worker::lease(&server).await;
    let repo = unique_repo("scan");
    let (amd64, amd64_size) = push(&server, &repo, "amd64").await;
    let (arm64, arm64_size) = push(&server, &repo, "arm64").await;
    let (unscanned, _) = push(&server, &repo, "unscanned").await;
    let platform = |digest: &str, size: usize, arch: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
               "platform": {"os": "linux", "architecture": arch}})
    };
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        platform(&amd64, amd64_size, "amd64"), platform(&arm64, arm64_size, "arm64")]});
    let resp = put_manifest(
        &server.http(),
        &server.url,
        &repo,
        "multi",
        OCI_INDEX,
        &index,
    )
    .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let index_digest = common::oci::digest(&serde_json::to_vec(&index).unwrap());

    let (status, missing) = get_scans(&server, &repo, "multi").await;
    assert_eq!(status, 404, "{missing:#}");
    assert_eq!(
        missing["error"]["message"],
        format!(
            "no scan report stored for {repo}:multi ({index_digest}): scan it with `kiln scan`"
        )
    );
    let (status, no_tag) = get_scans(&server, &repo, "nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        no_tag["error"]["message"],
        format!("no scan report for {repo}:nope: tag 'nope' not found in repository '{repo}'")
    );

    let ssl = package("Debian", "libssl3", "3.0.11-1~deb12u2", Some("openssl"));
    let django = package("PyPI", "django", "4.0", None);
    worker
        .report(
            &server,
            &on_platform(target(&server, &repo, "multi", &amd64), "linux/amd64"),
            Some(&debian12(vec![ssl, django.clone()])),
        )
        .await;
    worker
        .report(
            &server,
            &on_platform(target(&server, &repo, "multi", &arm64), "linux/arm64"),
            Some(&debian12(vec![django])),
        )
        .await;

    let (status, reports) = get_scans(&server, &repo, "multi").await;
    assert_eq!(status, 200, "{reports:#}");
    let digests: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"]["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [amd64.as_str(), arm64.as_str()]);
    assert_eq!(reports[0]["target"]["repository"], repo.as_str());
    assert_eq!(reports[0]["target"]["tag"], "multi");

    // Reports are stored by digest, but another repository's image is not shown through
    // this one, even with its digest.
    let other = unique_repo("scan-other");
    let (status, elsewhere) = get_scans(&server, &other, &amd64).await;
    assert_eq!(status, 404, "{elsewhere:#}");
    assert_eq!(
        elsewhere["error"]["message"],
        format!("no scan report for {other}@{amd64}: manifest not found in repository '{other}'")
    );

    let listed = server
        .kiln_output(&[
            "registry",
            "repository",
            "show-manifests",
            &repo,
            "--detail",
        ])
        .await;
    assert_eq!(listed.code, 0, "{listed:#?}");
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert!(lines[0].ends_with("  RUN  FINDINGS"), "{listed:#?}");
    let row = |digest: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(digest))
            .unwrap_or_else(|| panic!("{digest} not listed: {listed:#?}"))
    };
    assert!(row(&amd64).ends_with("C0 H1 M0 L0 U1"), "{listed:#?}");
    assert!(row(&arm64).ends_with("C0 H0 M0 L0 U1"), "{listed:#?}");
    assert!(
        row(&index_digest).ends_with("C0 H1 M0 L0 U2"),
        "{listed:#?}"
    );
    assert!(row(&unscanned).ends_with(" -"), "{listed:#?}");
}

#[tokio::test]
async fn only_a_run_that_scans_may_upload_scans() {
    let server = TestServer::start_with(|a| a.workers = 0).await;
    let run = server.queue_scratch_run().await;
    let worker = Worker::lease_run(&server, &run, "build").await;
    let digest = format!("sha256:{}", "2".repeat(64));
    let web = target(&server, "app/web", "v1", &digest);
    let (status, body) = worker.post(&server, worker.attempt, &web, None).await;
    assert_eq!(status, 409, "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is a build run without a scan step"),
        "{message}"
    );
}
