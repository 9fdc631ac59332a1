//! An image as a scan reads it over the OCI distribution API: the manifest a reference names,
//! and for an index every platform's image (attestation manifests aside), each with its
//! layers in order; then each layer blob streamed once through the [`LayerWalker`].

use std::collections::HashMap;

use futures::TryStreamExt;
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};
use tokio_util::io::StreamReader;

use crate::protocol::{Digest, ScanTarget};
use crate::registry_http::{RegistryHttp, INDEX_TYPES, MANIFEST_ACCEPT};
use crate::scan::{FileView, LayerRef, LayerWalker};

/// The annotation BuildKit marks attestation manifests with (they describe an image; they are
/// not one).
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

#[derive(Debug, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    /// `linux/arm64/v8`; `None` for BuildKit's `unknown/unknown` attestation entries.
    fn describe(&self) -> Option<String> {
        if self.os == "unknown" || self.architecture == "unknown" {
            return None;
        }
        Some(match &self.variant {
            Some(variant) => format!("{}/{}/{variant}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        })
    }
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    digest: String,
    platform: Option<Platform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// One platform's image, ready to read.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub target: ScanTarget,
    /// Layer digests, base first.
    pub layers: Vec<String>,
    /// The image manifest's media type and size (a referrer's `subject` names them).
    pub media_type: String,
    pub size: u64,
}

/// The manifest `reference` (tag or digest) names in `repository`, as the images to scan:
/// one for an image manifest, one per platform for an index.
pub async fn resolve(
    http: &RegistryHttp,
    registry: &str,
    repository: &str,
    reference: &str,
) -> Result<Vec<PlatformImage>, String> {
    let tag = (!reference.contains(':')).then(|| reference.to_owned());
    let (digest, doc, size) = fetch_manifest(http, repository, reference).await?;
    let target = |digest: &str, index_digest: Option<&str>, platform: Option<String>| {
        Ok::<_, String>(ScanTarget {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.clone(),
            digest: parse_digest(digest)?,
            index_digest: index_digest.map(parse_digest).transpose()?,
            platform,
        })
    };
    if !is_index(&doc) {
        let platform = config_platform(http, repository, &doc).await;
        return Ok(vec![PlatformImage {
            target: target(&digest, None, platform)?,
            layers: layer_digests(&doc),
            media_type: manifest_type(&doc),
            size,
        }]);
    }
    let mut images = Vec::new();
    for child in &doc.manifests {
        if child.annotations.contains_key(REFERENCE_TYPE) {
            continue;
        }
        let platform = child.platform.as_ref().and_then(Platform::describe);
        if child.platform.is_some() && platform.is_none() {
            continue;
        }
        let (child_digest, child_doc, child_size) =
            fetch_manifest(http, repository, &child.digest).await?;
        if is_index(&child_doc) {
            // Nested indexes are rare; their images are reached from their own digest.
            continue;
        }
        let platform = match platform {
            Some(platform) => Some(platform),
            None => config_platform(http, repository, &child_doc).await,
        };
        images.push(PlatformImage {
            target: target(&child_digest, Some(&digest), platform)?,
            layers: layer_digests(&child_doc),
            media_type: manifest_type(&child_doc),
            size: child_size,
        });
    }
    if images.is_empty() {
        return Err(format!(
            "{registry}/{repository}@{digest} is an index without any platform's image"
        ));
    }
    Ok(images)
}

/// Streams each layer of `image` once through the catalogers' walker.
pub async fn read_layers(http: &RegistryHttp, image: &PlatformImage) -> Result<FileView, String> {
    let repository = &image.target.repository;
    let scope = pull_scope(repository);
    let mut walker = LayerWalker::for_catalogers();
    for (index, digest) in image.layers.iter().enumerate() {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = http
            .get_streaming(&path, &scope)
            .await
            .map_err(|e| format!("cannot read layer {index} ({digest}): {e}"))?;
        let reader = StreamReader::new(response.bytes_stream().map_err(std::io::Error::other));
        let layer = LayerRef {
            index,
            digest: digest.clone(),
        };
        walker = walker
            .apply_layer_async(layer, reader)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(walker.finish())
}

/// `repository:<name>:pull`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

async fn fetch_manifest(
    http: &RegistryHttp,
    repository: &str,
    reference: &str,
) -> Result<(String, Document, u64), String> {
    let path = format!("/v2/{repository}/manifests/{reference}");
    let answer = http
        .get(&path, &pull_scope(repository), Some(MANIFEST_ACCEPT))
        .await
        .map_err(|e| match e.status() {
            Some(reqwest::StatusCode::NOT_FOUND) => {
                format!("{repository}:{reference} not found in the registry")
            }
            _ => format!("cannot read {repository}:{reference}: {e}"),
        })?;
    // Inventories and reports are stored by digest and shared by every registry that holds
    // it: bytes that do not hash to the digest asked for (or announced) are refused, so
    // another registry cannot speak for an image of Kiln's.
    let claimed = if reference.contains(':') {
        Some(reference.to_owned())
    } else {
        answer.digest()
    };
    let digest = match claimed {
        Some(claimed) => {
            let actual = digest_of(&claimed, &answer.body);
            if actual.as_deref() != Some(claimed.as_str()) {
                return Err(format!(
                    "the registry served {repository}@{claimed} with bytes whose digest is {}",
                    actual.unwrap_or_else(|| "of an unknown algorithm".to_owned())
                ));
            }
            claimed
        }
        None => format!("sha256:{}", hex::encode(Sha256::digest(&answer.body))),
    };
    let mut doc: Document = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("{repository}@{digest} is not a manifest: {e}"))?;
    if let Some(served) = answer
        .content_type()
        .filter(|t| t.starts_with("application/vnd."))
    {
        doc.media_type = Some(served);
    }
    Ok((digest, doc, answer.body.len() as u64))
}

/// The digest of `body` in the algorithm `like` names (`sha256:`, `sha512:`).
fn digest_of(like: &str, body: &[u8]) -> Option<String> {
    match like.split_once(':')?.0 {
        "sha256" => Some(format!("sha256:{}", hex::encode(Sha256::digest(body)))),
        "sha512" => Some(format!("sha512:{}", hex::encode(Sha512::digest(body)))),
        _ => None,
    }
}

fn is_index(doc: &Document) -> bool {
    match &doc.media_type {
        Some(t) => INDEX_TYPES.contains(&t.as_str()),
        None => doc.config.is_none() && !doc.manifests.is_empty(),
    }
}

/// An image manifest's media type, OCI's when it names none.
fn manifest_type(doc: &Document) -> String {
    doc.media_type
        .clone()
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned())
}

fn layer_digests(doc: &Document) -> Vec<String> {
    doc.layers.iter().map(|l| l.digest.clone()).collect()
}

/// The platform an image's config names, if it can be read.
async fn config_platform(http: &RegistryHttp, repository: &str, doc: &Document) -> Option<String> {
    let config = doc.config.as_ref()?;
    let path = format!("/v2/{repository}/blobs/{}", config.digest);
    let answer = http.get(&path, &pull_scope(repository), None).await.ok()?;
    let platform: Platform = serde_json::from_slice(&answer.body).ok()?;
    platform.describe()
}

fn parse_digest(text: &str) -> Result<Digest, String> {
    text.parse()
        .map_err(|e| format!("the registry named an invalid digest {text:?}: {e}"))
}

#[cfg(test)]
mod digest_tests {
    use super::digest_of;

    #[test]
    fn bodies_hash_in_the_algorithm_the_digest_names() {
        let empty256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(digest_of(empty256, b"").as_deref(), Some(empty256));
        assert_ne!(digest_of(empty256, b"x").as_deref(), Some(empty256));
        let sha512 = digest_of("sha512:00", b"").unwrap();
        assert!(sha512.starts_with("sha512:cf83e1357eefb8bd"), "{sha512}");
        assert_eq!(digest_of("md5:00", b""), None);
    }
}
