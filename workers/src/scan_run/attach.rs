//! `--attach-sbom`: the SBOM of a platform's image pushed next to it as an OCI 1.1 referrer
//! (an image manifest with an `artifactType`, the empty config, the document as its one layer
//! and the image as its `subject`), pushed by digest. A registry that answers the push
//! without an `OCI-Subject` header has no referrers API, so the referrers tag schema of the
//! OCI distribution spec is kept up as well: the tag `sha256-<hex>` holds an index listing
//! the image's referrers.

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::args::SbomFormat;
use crate::registry_http::{next_link, Body, HttpError, RegistryHttp};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The spec's empty descriptor's content: `{}`.
const EMPTY: &[u8] = b"{}";

/// The manifest an SBOM refers to.
pub struct Subject<'a> {
    pub repository: &'a str,
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
}

/// Pushes `document` as a referrer of `subject`; the SBOM manifest's digest.
pub async fn attach_sbom(
    http: &RegistryHttp,
    subject: &Subject<'_>,
    format: SbomFormat,
    document: &Value,
) -> Result<String, String> {
    let repository = subject.repository;
    let scope = format!("repository:{repository}:pull,push");
    let bytes = serde_json::to_vec(document).map_err(|e| e.to_string())?;
    let layer = push_blob(http, repository, &scope, bytes).await?;
    let config = push_blob(http, repository, &scope, EMPTY.to_vec()).await?;
    let artifact_type = format.media_type();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": { "mediaType": EMPTY_TYPE, "digest": config.0, "size": config.1, "data": "e30=" },
        "layers": [{ "mediaType": artifact_type, "digest": layer.0, "size": layer.1 }],
        "subject": { "mediaType": subject.media_type, "digest": subject.digest, "size": subject.size },
        "annotations": { "org.opencontainers.image.created":
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) },
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let (digest, size) = digest_of(&bytes);
    let path = format!("/v2/{repository}/manifests/{digest}");
    let answer = http
        .send(
            Method::PUT,
            &path,
            &scope,
            None,
            Some(&body(MANIFEST_TYPE, bytes)),
        )
        .await
        .map_err(|e| format!("cannot push the SBOM manifest: {e}"))?;
    if answer.headers.get("oci-subject").is_none() {
        let referrer = json!({
            "mediaType": MANIFEST_TYPE,
            "digest": digest,
            "size": size,
            "artifactType": artifact_type,
        });
        add_to_referrers_tag(http, subject, &scope, referrer)
            .await
            .map_err(|e| format!("cannot update the referrers tag: {e}"))?;
    }
    Ok(digest)
}

/// `sha256-<hex>`: the referrers tag schema's tag for `digest`.
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Adds `referrer` to the index the subject's referrers tag holds (a new one when there is
/// none), unless it is listed already.
async fn add_to_referrers_tag(
    http: &RegistryHttp,
    subject: &Subject<'_>,
    scope: &str,
    referrer: Value,
) -> Result<(), HttpError> {
    let path = format!(
        "/v2/{}/manifests/{}",
        subject.repository,
        referrers_tag(subject.digest)
    );
    let mut index = match http.get(&path, scope, Some(INDEX_TYPE)).await {
        Ok(answer) => answer.json::<Value>(&path)?,
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
            json!({ "schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [] })
        }
        Err(e) => return Err(e),
    };
    if !index["manifests"].is_array() {
        index["manifests"] = json!([]);
    }
    let manifests = index["manifests"].as_array_mut().expect("set just above");
    if manifests.iter().any(|m| m["digest"] == referrer["digest"]) {
        return Ok(());
    }
    manifests.push(referrer);
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    http.send(
        Method::PUT,
        &path,
        scope,
        None,
        Some(&body(INDEX_TYPE, bytes)),
    )
    .await
    .map(drop)
}

/// Uploads `bytes` as a blob (POST, then PUT with the digest); its digest and size.
async fn push_blob(
    http: &RegistryHttp,
    repository: &str,
    scope: &str,
    bytes: Vec<u8>,
) -> Result<(String, u64), String> {
    let (digest, size) = digest_of(&bytes);
    let start = format!("/v2/{repository}/blobs/uploads/");
    let answer = http
        .send(Method::POST, &start, scope, None, None)
        .await
        .map_err(|e| format!("cannot start a blob upload: {e}"))?;
    let location = answer
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| next_link(&format!("<{l}>")))
        .ok_or_else(|| format!("POST {start}: the registry sent no upload location"))?;
    let separator = if location.contains('?') { '&' } else { '?' };
    let path = format!("{location}{separator}digest={digest}");
    http.send(
        Method::PUT,
        &path,
        scope,
        None,
        Some(&body("application/octet-stream", bytes)),
    )
    .await
    .map_err(|e| format!("cannot upload blob {digest}: {e}"))?;
    Ok((digest, size))
}

fn body(content_type: &'static str, bytes: Vec<u8>) -> Body {
    Body {
        content_type,
        bytes,
    }
}

fn digest_of(bytes: &[u8]) -> (String, u64) {
    (
        format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        bytes.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referrers_tag_is_the_digest_with_a_dash() {
        assert_eq!(referrers_tag("sha256:ab12"), "sha256-ab12");
    }

    #[test]
    fn the_empty_config_has_the_specs_digest() {
        assert_eq!(
            digest_of(EMPTY).0,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
