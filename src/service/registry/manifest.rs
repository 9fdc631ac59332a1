//! Parsing manifests: OCI image manifests and indexes, Docker schema 2 manifests and
//! manifest lists, and OCI artifacts (image manifests with an `artifactType` or any config
//! media type). Parsing is lenient about fields it does not need.

use serde::Deserialize;

use super::names::parse_digest;
use super::RegistryError;
use crate::store::registry::Reference;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Image configs whose os and architecture say what platform an image manifest is for.
pub const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// What the registry needs to know about a manifest.
pub struct Parsed {
    pub media_type: String,
    /// The config descriptor of an image manifest.
    pub config: Option<Descriptor>,
    /// What must be in the repository first.
    pub references: Vec<Reference>,
    pub subject: Option<String>,
    /// For the referrers API: `artifactType`, else an image manifest's config media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Value>,
    /// An index's platforms; an image's come from its config.
    pub platforms: Vec<String>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

/// Parses a manifest body; `content_type` is the request's `Content-Type`, if any.
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Parsed, RegistryError> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| invalid(format!("manifest is not valid: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(invalid("manifest schemaVersion must be 2"));
    }
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty());
    let media_type = match (raw.media_type.as_deref(), declared) {
        (Some(body), Some(header)) if body != header => {
            return Err(invalid(format!(
                "mediaType '{body}' does not match the Content-Type '{header}'"
            )))
        }
        (Some(m), _) | (None, Some(m)) => m.to_string(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let subject = raw
        .subject
        .as_ref()
        .map(|s| checked_digest(&s.digest))
        .transpose()?;
    let annotations = raw.annotations.map(serde_json::Value::Object);
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw
                .config
                .ok_or_else(|| invalid("image manifest has no config"))?;
            let mut references = vec![Reference::Blob(checked_digest(&config.digest)?)];
            for layer in raw.layers.unwrap_or_default() {
                let digest = checked_digest(&layer.digest)?;
                // Foreign and non-distributable layers are fetched from elsewhere, not pushed.
                let external = layer
                    .media_type
                    .as_deref()
                    .is_some_and(|m| m.contains("nondistributable") || m.contains("foreign"));
                references.push(if external {
                    Reference::ForeignBlob(digest)
                } else {
                    Reference::Blob(digest)
                });
            }
            let artifact_type = raw.artifact_type.or_else(|| config.media_type.clone());
            Ok(Parsed {
                media_type,
                config: Some(config),
                references,
                subject,
                artifact_type,
                annotations,
                platforms: Vec::new(),
            })
        }
        OCI_INDEX | DOCKER_LIST => {
            let children = raw
                .manifests
                .ok_or_else(|| invalid("index has no manifests"))?;
            let mut references = Vec::with_capacity(children.len());
            let mut platforms = Vec::new();
            for child in &children {
                references.push(Reference::Manifest(checked_digest(&child.digest)?));
                if let Some(p) = &child.platform {
                    let p = p.display();
                    if !platforms.contains(&p) {
                        platforms.push(p);
                    }
                }
            }
            Ok(Parsed {
                media_type,
                config: None,
                references,
                subject,
                artifact_type: raw.artifact_type,
                annotations,
                platforms,
            })
        }
        other => Err(invalid(format!(
            "manifest media type '{other}' is not supported"
        ))),
    }
}

fn checked_digest(s: &str) -> Result<String, RegistryError> {
    parse_digest(s)
        .map(|d| d.to_string())
        .map_err(|e| invalid(format!("manifest refers to {s}: {e}")))
}

/// The platform an image config describes, if it names one.
pub fn config_platform(config: &[u8]) -> Option<String> {
    let p: Platform = serde_json::from_slice(config).ok()?;
    (!p.os.is_empty() && !p.architecture.is_empty()).then(|| p.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifests_reference_config_and_pushed_layers() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": IMAGE_CONFIGS[1], "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('b'), "size": 3},
                {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": d('c'), "size": 3}
            ]
        });
        let p = parse(body.to_string().as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(p.media_type, DOCKER_MANIFEST);
        assert_eq!(
            p.references,
            vec![
                Reference::Blob(d('a')),
                Reference::Blob(d('b')),
                Reference::ForeignBlob(d('c'))
            ]
        );
        assert_eq!(p.artifact_type.as_deref(), Some(IMAGE_CONFIGS[1]));
        assert!(p.subject.is_none());
    }

    #[test]
    fn indexes_reference_manifests_and_list_platforms() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d('a'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": d('b'), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d('c'), "size": 1},
            "artifactType": "application/x-sbom"
        });
        let p = parse(body.to_string().as_bytes(), None).unwrap();
        assert_eq!(p.media_type, OCI_INDEX);
        assert_eq!(
            p.references,
            vec![Reference::Manifest(d('a')), Reference::Manifest(d('b'))]
        );
        assert_eq!(p.platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(p.subject, Some(d('c')));
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sbom"));
    }

    #[test]
    fn bad_manifests_are_refused() {
        let no_config =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []});
        let wrong_type =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        let bad_digest =
            serde_json::json!({"schemaVersion": 2, "config": {"digest": "sha256:zz", "size": 1}});
        for (body, ct) in [
            (no_config.to_string(), None),
            (wrong_type.to_string(), Some(OCI_MANIFEST)),
            (bad_digest.to_string(), None),
            ("not json".to_string(), None),
        ] {
            assert!(
                matches!(
                    parse(body.as_bytes(), ct),
                    Err(RegistryError::ManifestInvalid(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn config_platforms() {
        assert_eq!(
            config_platform(br#"{"os":"linux","architecture":"arm","variant":"v7","rootfs":{}}"#),
            Some("linux/arm/v7".into())
        );
        assert_eq!(config_platform(b"{}"), None);
    }
}
