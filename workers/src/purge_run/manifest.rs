//! What a purge reads from a manifest document and an image config: the links between
//! manifests (an index's children, a referrer's subject) and the image's `created` time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::registry_http::INDEX_TYPES;

/// The annotation OCI artifacts carry their creation time in.
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

#[derive(Debug, Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// One manifest as a purge needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDoc {
    /// From the `Content-Type` the registry served it with, else the document's own.
    pub media_type: Option<String>,
    /// An index's `manifests[].digest`.
    pub children: Vec<String>,
    /// A referrer's `subject.digest`.
    pub subject: Option<String>,
    /// The config blob to read `created` from, for an image manifest with an image config.
    pub config: Option<String>,
    /// `org.opencontainers.image.created`, for artifacts without an image config.
    pub annotated_created: Option<DateTime<Utc>>,
}

impl ManifestDoc {
    /// Reads a manifest served with `content_type`; `None` if it is not JSON of that shape.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Option<ManifestDoc> {
        let doc: Document = serde_json::from_slice(bytes).ok()?;
        let media_type = content_type
            .filter(|t| t.starts_with("application/vnd."))
            .map(str::to_owned)
            .or(doc.media_type);
        let is_index = media_type
            .as_deref()
            .is_some_and(|t| INDEX_TYPES.contains(&t))
            || !doc.manifests.is_empty();
        let config = doc
            .config
            .filter(|c| {
                c.media_type.as_deref().is_some_and(|t| {
                    t == "application/vnd.oci.image.config.v1+json"
                        || t == "application/vnd.docker.container.image.v1+json"
                })
            })
            .map(|c| c.digest);
        Some(ManifestDoc {
            media_type,
            children: if is_index {
                doc.manifests.into_iter().map(|m| m.digest).collect()
            } else {
                Vec::new()
            },
            subject: doc.subject.map(|s| s.digest),
            config,
            annotated_created: doc
                .annotations
                .get(CREATED_ANNOTATION)
                .and_then(|t| parse_time(t)),
        })
    }

    /// Whether this is an index (its time is its children's).
    pub fn is_index(&self) -> bool {
        self.media_type
            .as_deref()
            .is_some_and(|t| INDEX_TYPES.contains(&t))
    }
}

/// An image config's `created`, if it has one.
pub fn config_created(bytes: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Config {
        created: Option<String>,
    }
    let config: Config = serde_json::from_slice(bytes).ok()?;
    parse_time(&config.created?)
}

/// An RFC 3339 time (with or without fractional seconds).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_names_its_children() {
        let doc = ManifestDoc::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
                "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1},
                             {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1}]}"#,
            Some("application/vnd.oci.image.index.v1+json"),
        )
        .unwrap();
        assert_eq!(doc.children, ["sha256:a", "sha256:b"]);
        assert!(doc.is_index() && doc.config.is_none() && doc.subject.is_none());
    }

    #[test]
    fn an_image_names_its_config_and_a_referrer_its_subject() {
        let image = ManifestDoc::parse(
            br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":1},"layers":[]}"#,
            Some("application/vnd.docker.distribution.manifest.v2+json"),
        )
        .unwrap();
        assert_eq!(image.config.as_deref(), Some("sha256:c"));
        assert_eq!(
            image.media_type.as_deref(),
            Some("application/vnd.docker.distribution.manifest.v2+json")
        );
        let signature = ManifestDoc::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json",
                "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:e","size":2},
                "layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:s","size":1},
                "annotations":{"org.opencontainers.image.created":"2026-01-02T03:04:05Z"}}"#,
            Some("application/json"),
        )
        .unwrap();
        assert_eq!(signature.subject.as_deref(), Some("sha256:s"));
        assert_eq!(signature.config, None);
        assert_eq!(
            signature.media_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(
            signature.annotated_created.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn configs_give_their_created_time() {
        let created =
            config_created(br#"{"created":"2024-05-01T10:00:00.123456789Z","os":"linux"}"#);
        assert_eq!(
            created.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00.123456789+00:00"
        );
        assert_eq!(config_created(br#"{"os":"linux"}"#), None);
        assert_eq!(config_created(b"not json"), None);
    }
}
