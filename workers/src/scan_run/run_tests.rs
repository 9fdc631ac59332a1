//! `run_scan` against the real registry at 127.0.0.1:5000 (images pushed here, over the
//! distribution API), with a stand-in for the server's matching: the registry side is real,
//! the report is the test's.

use std::sync::Mutex;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::*;
use crate::protocol::{DatabaseState, Finding, Level, SeverityTotals};
use crate::scan::test_layers::TarLayer;

const REGISTRY: &str = "127.0.0.1:5000";
const METADATA: &str = "usr/lib/python3/site-packages/requests-2.19.0.dist-info/METADATA";

/// Matches `requests 2.19.0` as one high finding; `missing` are the ecosystems it has no data
/// for; `known` answers the first upload with a report (it holds the inventory already).
#[derive(Default)]
struct FakeServer {
    missing: Vec<String>,
    known: bool,
    uploads: Mutex<Vec<(ScanTarget, Option<Inventory>)>>,
}

impl ScanServer for FakeServer {
    async fn upload(
        &self,
        target: &ScanTarget,
        inventory: Option<&Inventory>,
    ) -> Result<ScanAnswer, String> {
        self.uploads
            .lock()
            .unwrap()
            .push((target.clone(), inventory.cloned()));
        let inventory = match (inventory, self.known) {
            (Some(inventory), _) => inventory.clone(),
            (None, true) => Inventory::default(),
            (None, false) => return Ok(ScanAnswer::NeedInventory),
        };
        let mut findings = Vec::new();
        let mut totals = SeverityTotals::default();
        for package in inventory.packages.iter().filter(|p| p.name == "requests") {
            totals.add(Level::High);
            findings.push(Finding {
                id: "PYSEC-2018-28".into(),
                aliases: vec!["CVE-2018-18074".into()],
                summary: None,
                ecosystem: package.ecosystem.clone(),
                package: package.name.clone(),
                source: None,
                installed_version: package.version.clone(),
                fixed_version: Some("2.20.0".into()),
                severity: Level::High,
                score: Some(7.5),
                unknown: None,
                layer: package.layer.clone(),
                path: package.path.clone(),
            });
        }
        Ok(ScanAnswer::Report(Box::new(ScanReport {
            target: target.clone(),
            scanned_at: 0,
            os: inventory.os.clone(),
            package_counts: inventory.counts(),
            packages: inventory.packages.len(),
            findings,
            totals,
            missing_databases: self.missing.clone(),
            unreadable: Vec::new(),
            database: DatabaseState {
                version: 1,
                sources: Vec::new(),
            },
            changes: None,
        })))
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn push_blob(client: &reqwest::Client, repository: &str, bytes: Vec<u8>) -> String {
    let digest = sha256(&bytes);
    let started = client
        .post(format!("http://{REGISTRY}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert!(started.status().is_success(), "{}", started.status());
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{REGISTRY}{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let put = client
        .put(format!("{url}{separator}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    digest
}

async fn push_manifest(
    client: &reqwest::Client,
    repository: &str,
    reference: &str,
    media_type: &str,
    doc: &serde_json::Value,
) -> (String, usize) {
    let bytes = serde_json::to_vec(doc).unwrap();
    let answer = client
        .put(format!(
            "http://{REGISTRY}/v2/{repository}/manifests/{reference}"
        ))
        .header("content-type", media_type)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    (sha256(&bytes), bytes.len())
}

/// An image of one gzip layer for `architecture`; returns its manifest's digest and size.
async fn push_image(
    client: &reqwest::Client,
    repository: &str,
    architecture: &str,
    layer: Vec<u8>,
) -> (String, usize) {
    let layer_size = layer.len();
    let layer_digest = push_blob(client, repository, layer).await;
    let config = serde_json::to_vec(&json!({
        "architecture": architecture, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}, "config": {}
    }))
    .unwrap();
    let config_size = config.len();
    let config_digest = push_blob(client, repository, config).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    });
    let (digest, size) = push_manifest(
        client,
        repository,
        &sha256(&serde_json::to_vec(&manifest).unwrap()),
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    )
    .await;
    (digest, size)
}

/// `<repo>:v1`, an index of linux/amd64 (with requests 2.19.0) and linux/arm64 (without),
/// and a BuildKit attestation manifest; returns the repository and the two digests.
async fn push_two_platform_index() -> (String, String, String) {
    let client = reqwest::Client::new();
    let repository = format!("kiln-scan-run-test/{}", uuid::Uuid::new_v4().simple());
    let amd64_layer = TarLayer::new()
        .file(
            METADATA,
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n\n",
        )
        .gzip();
    let arm64_layer = TarLayer::new().file("etc/hostname", "arm\n").gzip();
    let attestation_layer = TarLayer::new().file("intoto.json", "{}").gzip();
    let (amd64, amd64_size) = push_image(&client, &repository, "amd64", amd64_layer).await;
    let (arm64, arm64_size) = push_image(&client, &repository, "arm64", arm64_layer).await;
    let (attestation, attestation_size) =
        push_image(&client, &repository, "unknown", attestation_layer).await;
    let manifest = "application/vnd.oci.image.manifest.v1+json";
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": manifest, "digest": amd64, "size": amd64_size, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": manifest, "digest": arm64, "size": arm64_size, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": manifest, "digest": attestation, "size": attestation_size,
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd64}},
        ],
    });
    push_manifest(
        &client,
        &repository,
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index,
    )
    .await;
    (repository, amd64, arm64)
}

async fn scan(words: &str, server: &FakeServer) -> (ScanEnd, Vec<String>) {
    let args = ScanArgs::from_words(shell_words::split(words).unwrap()).unwrap();
    let req = ScanRequest {
        args,
        registry: REGISTRY.into(),
        kiln: false,
    };
    let lines = Mutex::new(Vec::new());
    let end = run_scan(&req, &[], server, &|line| lines.lock().unwrap().push(line)).await;
    (end, lines.into_inner().unwrap())
}

#[tokio::test]
async fn an_index_is_scanned_for_every_platform_and_judged_against_the_threshold() {
    let (repository, amd64, arm64) = push_two_platform_index().await;
    let server = FakeServer::default();
    let (end, lines) = scan(
        &format!("{REGISTRY}/{repository}:v1 --severity-threshold high"),
        &server,
    )
    .await;
    let log = lines.join("\n");
    assert!(
        lines.contains(&format!("Scanning linux/amd64 {amd64} (1 layer)")),
        "{log}"
    );
    assert!(
        lines.contains(&format!("Scanning linux/arm64 {arm64} (1 layer)")),
        "{log}"
    );
    assert_eq!(log.matches("Scanning ").count(), 2, "no attestation: {log}");
    assert!(
        lines.contains(&"Found 1 package (pypi 1)".to_owned()),
        "{log}"
    );
    assert!(
        log.contains("HIGH     PYSEC-2018-28 (CVE-2018-18074) requests 2.19.0 → 2.20.0, layer 0 ("),
        "{log}"
    );
    assert!(log.contains(&format!("/{METADATA}")), "{log}");
    assert!(
        lines.iter().any(|l| l.starts_with("IMAGE ")),
        "summary: {log}"
    );
    assert_eq!(end.exit_code, 1, "{log}");
    assert_eq!(
        end.message.as_deref(),
        Some("1 finding at or above the severity threshold high")
    );
    assert_eq!(
        lines.last().unwrap(),
        "Scan failed: 1 finding at or above the severity threshold high"
    );
    // Each platform: asked first without the inventory, then sent with it.
    let uploads = server.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 4);
    assert!(uploads[0].1.is_none() && uploads[1].1.is_some());
    assert_eq!(uploads[1].0.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(uploads[1].0.tag.as_deref(), Some("v1"));
    assert!(uploads[1].0.index_digest.is_some());
    let packages = &uploads[1].1.as_ref().unwrap().packages;
    assert_eq!(packages[0].name, "requests");
    assert_eq!(packages[0].path, METADATA);

    // Below the threshold it passes.
    let (end, _) = scan(
        &format!("{REGISTRY}/{repository}:v1 --severity-threshold critical"),
        &FakeServer::default(),
    )
    .await;
    assert_eq!(
        end,
        ScanEnd {
            exit_code: 0,
            message: None
        }
    );
}

#[tokio::test]
async fn missing_databases_fail_unless_allowed_and_known_inventories_read_no_layer() {
    let (repository, amd64, _) = push_two_platform_index().await;
    let missing = FakeServer {
        missing: vec!["PyPI".into()],
        ..FakeServer::default()
    };
    let image = format!("{REGISTRY}/{repository}@{amd64}");
    let (end, lines) = scan(&image, &missing).await;
    assert_eq!(end.exit_code, 1, "{lines:?}");
    assert!(end
        .message
        .unwrap()
        .starts_with("no vulnerability data for PyPI"));
    assert!(lines.contains(
        &"No vulnerability data for PyPI: its packages are not known to be clean (kiln vulndb import)"
            .to_owned()
    ));
    let (end, _) = scan(&format!("{image} --allow-missing-db"), &missing).await;
    assert_eq!(end.exit_code, 0);

    let known = FakeServer {
        known: true,
        ..FakeServer::default()
    };
    let (end, lines) = scan(&format!("{image} --output json"), &known).await;
    assert_eq!(end.exit_code, 0, "{lines:?}");
    assert!(lines.contains(&"Inventory already known for this digest: no layer read".to_owned()));
    assert_eq!(known.uploads.lock().unwrap().len(), 1);
    let json_start = lines.iter().position(|l| l == "{").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&lines[json_start..].join("\n")).unwrap();
    assert_eq!(doc["reports"][0]["target"]["digest"], json!(amd64));
}

#[tokio::test]
async fn sarif_and_cyclonedx_end_the_log_and_a_missing_image_fails_clearly() {
    let (repository, amd64, _) = push_two_platform_index().await;
    let image = format!("{REGISTRY}/{repository}@{amd64}");
    let (_, lines) = scan(&format!("{image} --output sarif"), &FakeServer::default()).await;
    let start = lines.iter().position(|l| l == "{").unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&lines[start..].join("\n"))
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "PYSEC-2018-28");
    assert_eq!(sarif["runs"][0]["results"][0]["level"], "error");

    let server = FakeServer::default();
    let (_, lines) = scan(&format!("{image} --output cyclonedx"), &server).await;
    // An SBOM needs the inventory: the layers are read even where the server knows them.
    assert!(server.uploads.lock().unwrap()[0].1.is_some());
    let start = lines.iter().position(|l| l == "{").unwrap();
    let bom: serde_json::Value = serde_json::from_str(&lines[start..].join("\n")).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");

    let (end, lines) = scan(
        &format!("{REGISTRY}/{repository}:nope"),
        &FakeServer::default(),
    )
    .await;
    assert_eq!(end.exit_code, 1);
    assert!(
        lines[0].contains(&format!("{repository}:nope not found in the registry")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn attach_sbom_pushes_a_referrer_listed_under_the_referrers_tag() {
    let (repository, amd64, arm64) = push_two_platform_index().await;
    let (end, lines) = scan(
        &format!("{REGISTRY}/{repository}:v1 --attach-sbom=spdx"),
        &FakeServer::default(),
    )
    .await;
    let log = lines.join("\n");
    assert_eq!(end.exit_code, 0, "{log}");
    let client = reqwest::Client::new();
    for image in [&amd64, &arm64] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("Attached SBOM (spdx) to {image} as sha256:")))
            .unwrap_or_else(|| panic!("{log}"));
        let sbom = line.rsplit(' ').next().unwrap();
        // distribution 2.8 has no referrers API: the tag schema lists the SBOM.
        let index: serde_json::Value = client
            .get(format!(
                "http://{REGISTRY}/v2/{repository}/manifests/{}",
                referrers_tag(image)
            ))
            .header("Accept", "application/vnd.oci.image.index.v1+json")
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
        assert_eq!(index["manifests"][0]["digest"], json!(sbom));
        assert_eq!(
            index["manifests"][0]["artifactType"],
            "application/spdx+json"
        );
        let manifest: serde_json::Value = client
            .get(format!(
                "http://{REGISTRY}/v2/{repository}/manifests/{sbom}"
            ))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(manifest["subject"]["digest"], json!(image));
        assert_eq!(manifest["artifactType"], "application/spdx+json");
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let document: serde_json::Value = client
            .get(format!("http://{REGISTRY}/v2/{repository}/blobs/{layer}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(document["spdxVersion"], "SPDX-2.3");
    }
}
