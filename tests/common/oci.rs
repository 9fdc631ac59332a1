//! Registry protocol helpers: push blobs and manifests to a Kiln server over plain HTTP.

use reqwest::{Client, Response, StatusCode};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes a blob monolithically (`POST ?digest=`), asserting 201.
pub async fn push_blob(http: &Client, base: &str, repo: &str, bytes: &[u8]) -> String {
    push_blob_as(http, base, repo, bytes, digest(bytes)).await
}

/// Pushes a blob monolithically under the digest `d` (of any algorithm), asserting 201.
pub async fn push_blob_as(
    http: &Client,
    base: &str,
    repo: &str,
    bytes: &[u8],
    d: String,
) -> String {
    let resp = http
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    d
}

pub async fn put_manifest(
    http: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &serde_json::Value,
) -> Response {
    http.put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap()
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": digest(bytes), "size": bytes.len() })
}

/// An image manifest for `config` and `layers`, as bytes: what gets pushed and digested.
pub fn image_manifest(config: &[u8], layers: &[&[u8]]) -> serde_json::Value {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    })
}

/// Pushes a config, a layer and a manifest under `tag`; returns the manifest's digest.
pub async fn push_image(http: &Client, base: &str, repo: &str, tag: &str, seed: &str) -> String {
    let config = format!(r#"{{"os":"linux","architecture":"amd64","seed":"{seed}"}}"#);
    let layer = format!("layer of {seed}");
    push_blob(http, base, repo, config.as_bytes()).await;
    push_blob(http, base, repo, layer.as_bytes()).await;
    let manifest = image_manifest(config.as_bytes(), &[layer.as_bytes()]);
    let resp = put_manifest(http, base, repo, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    digest(&serde_json::to_vec(&manifest).unwrap())
}

/// The OCI error code of a response.
pub async fn error_code(resp: Response) -> String {
    let body: serde_json::Value = resp.json().await.unwrap();
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub async fn get(http: &Client, url: impl AsRef<str>) -> Response {
    http.get(url.as_ref()).send().await.unwrap()
}

pub async fn get_json(http: &Client, url: impl AsRef<str>) -> serde_json::Value {
    get(http, url).await.json().await.unwrap()
}

/// Runs a client tool (`skopeo`, `docker`), asserting success; returns its stdout.
pub async fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?}: {stderr}");
    out.stdout
}

/// `skopeo copy` over plain HTTP from `from` to `to` (`docker://…` references), with `extra`
/// flags such as `--all` or `--dest-creds owner:<secret>`; asserts success.
pub async fn skopeo_copy(from: &str, to: &str, extra: &[&str]) {
    let base = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    tool("skopeo", &[&base[..], extra, &[from, to]].concat()).await;
}
