//! Pushing small synthetic images, indexes and referrers straight through the distribution
//! API (as crane would), with chosen `created` times, and reading the registry back; and
//! running purges against it with their output captured.

#![allow(dead_code)]

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use kiln_worker::purge::PurgeArgs;
use kiln_worker::purge_run::{run_purge, PurgeEnd, PurgeRequest};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// The CNCF distribution registry the machine runs, with deletes enabled.
pub const REGISTRY: &str = "127.0.0.1:5000";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest in the registry.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

impl Pushed {
    fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// A repository prefix no other test uses: `r1test/<random>`.
pub fn unique_prefix() -> String {
    format!(
        "r1test/{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `days` days ago.
pub fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::days(days)
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The registry on 127.0.0.1:5000.
#[derive(Clone, Default)]
pub struct Registry {
    client: reqwest::Client,
}

impl Registry {
    fn url(path: &str) -> String {
        format!("http://{REGISTRY}{path}")
    }

    /// Uploads a blob (POST then PUT) and returns its digest.
    pub async fn blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = digest_of(data);
        let started = self
            .client
            .post(Self::url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202, "start upload to {repo}");
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self
            .client
            .put(format!("{location}{separator}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 201, "upload to {repo}");
        digest
    }

    async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Pushed) {
        let response = self
            .client
            .put(Self::url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            status,
            201,
            "PUT {repo}:{reference}: {}",
            response.text().await.unwrap()
        );
    }

    /// Pushes an image (by digest) whose config says it was created at `created`; `salt`
    /// makes it unique.
    pub async fn image(&self, repo: &str, created: DateTime<Utc>, salt: &str) -> Pushed {
        let config = json!({
            "created": created.to_rfc3339(),
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": salt}}
        });
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(repo, &config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": []
        });
        self.manifest(repo, manifest, OCI_MANIFEST).await
    }

    async fn manifest(
        &self,
        repo: &str,
        document: serde_json::Value,
        media_type: &'static str,
    ) -> Pushed {
        let bytes = serde_json::to_vec(&document).unwrap();
        let pushed = Pushed {
            digest: digest_of(&bytes),
            bytes,
            media_type,
        };
        self.put_manifest(repo, &pushed.digest.clone(), &pushed)
            .await;
        pushed
    }

    /// Puts `tag` on `manifest`.
    pub async fn tag(&self, repo: &str, tag: &str, manifest: &Pushed) {
        self.put_manifest(repo, tag, manifest).await;
    }

    /// Pushes an image and tags it.
    pub async fn tagged_image(&self, repo: &str, tag: &str, created: DateTime<Utc>) -> Pushed {
        let image = self.image(repo, created, tag).await;
        self.tag(repo, tag, &image).await;
        image
    }

    /// Pushes an image straight under `tag` (one request fewer than [`Self::tagged_image`],
    /// for benchmarks that push thousands).
    pub async fn quick_tagged_image(&self, repo: &str, tag: &str, created: DateTime<Utc>) {
        let config = json!({"created": created.to_rfc3339(), "architecture": "amd64",
            "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"salt": format!("{repo}:{tag}")}}});
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(repo, &config).await;
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": []});
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let pushed = Pushed {
            digest: digest_of(&bytes),
            bytes,
            media_type: OCI_MANIFEST,
        };
        self.put_manifest(repo, tag, &pushed).await;
    }

    /// Pushes an index of `children` (already in `repo`).
    pub async fn index(&self, repo: &str, children: &[&Pushed]) -> Pushed {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|c| {
                let mut d = c.descriptor();
                d["platform"] = json!({"architecture": "amd64", "os": "linux"});
                d
            })
            .collect();
        let document = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.manifest(repo, document, OCI_INDEX).await
    }

    /// Pushes a signature-like referrer of `subject` and, as the registry has no referrers
    /// API, the referrers tag schema's index under `sha256-<hex>`.
    pub async fn referrer(&self, repo: &str, subject: &Pushed) -> Pushed {
        let empty = self.blob(repo, b"{}").await;
        let document = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [],
            "subject": subject.descriptor()
        });
        let referrer = self.manifest(repo, document, OCI_MANIFEST).await;
        let mut entry = referrer.descriptor();
        entry["artifactType"] = json!("application/vnd.example.signature");
        let schema = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
        let schema = self.manifest(repo, schema, OCI_INDEX).await;
        self.tag(repo, &subject.digest.replace(':', "-"), &schema)
            .await;
        referrer
    }

    /// The repository's tags, sorted.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let response = self
            .client
            .get(Self::url(&format!("/v2/{repo}/tags/list?n=100000")))
            .send()
            .await
            .unwrap();
        if response.status() == 404 {
            return Vec::new();
        }
        let body: serde_json::Value = response.json().await.unwrap();
        let mut tags: Vec<String> = body["tags"]
            .as_array()
            .map(|t| t.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// Whether the manifest is still in `repo`.
    pub async fn exists(&self, repo: &str, manifest: &Pushed) -> bool {
        let response = self
            .client
            .head(Self::url(&format!(
                "/v2/{repo}/manifests/{}",
                manifest.digest
            )))
            .header("accept", manifest.media_type)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => true,
            404 => false,
            other => panic!("HEAD {repo}@{}: {other}", manifest.digest),
        }
    }
}

/// The request for `acr purge <flags>` against the distribution registry.
pub fn request(flags: &str) -> PurgeRequest {
    PurgeRequest {
        args: PurgeArgs::from_command(&format!("acr purge {flags}"))
            .unwrap()
            .unwrap(),
        registry: REGISTRY.to_owned(),
        kiln: false,
    }
}

/// Lines a purge printed.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl Lines {
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Runs `acr purge <flags>` and returns how it ended and what it printed.
pub async fn purge(flags: &str) -> (PurgeEnd, Vec<String>) {
    let lines = Lines::default();
    let end = run_purge(
        &request(flags),
        &[],
        &|line| lines.push(line),
        &CancellationToken::new(),
    )
    .await;
    (end, lines.all())
}
