//! JSON shapes of ACR's registry metadata API (`/acr/v1/…` on the registry host), which
//! `acr purge` and `az acr repository` read: tags and manifests with their times and locks.
//! Field names are ACR's; `references` and `subject` on a manifest are Kiln's additions, so
//! that a purge keeps the children of an index and the referrers of a manifest it keeps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::registry::ChangeableAttributes;

/// `GET /acr/v1/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrRepository {
    pub registry: String,
    pub image_name: String,
    pub created_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    pub manifest_count: u64,
    pub tag_count: u64,
    pub changeable_attributes: ChangeableAttributes,
}

/// `GET /acr/v1/<name>/_tags?n=&last=&orderby=`: one page; a `Link` header names the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrTagList {
    pub registry: String,
    pub image_name: String,
    pub tags: Vec<AcrTag>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrTag {
    pub name: String,
    pub digest: String,
    pub created_time: DateTime<Utc>,
    /// When the tag was pushed or last moved to another manifest.
    pub last_update_time: DateTime<Utc>,
    /// Kiln does not sign tags (ACR's content trust): always false.
    pub signed: bool,
    pub changeable_attributes: ChangeableAttributes,
}

/// `GET /acr/v1/<name>/_manifests?n=&last=`: one page by digest; a `Link` header names the
/// next.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrManifestList {
    pub registry: String,
    pub image_name: String,
    pub manifests: Vec<AcrManifest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrManifest {
    pub digest: String,
    /// The manifest plus the blobs it names directly.
    pub image_size: u64,
    pub created_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    pub media_type: String,
    pub tags: Vec<String>,
    pub changeable_attributes: ChangeableAttributes,
    /// For an index: the digests of the manifests it lists.
    #[serde(default)]
    pub references: Vec<String>,
    /// For a referrer (signature, SBOM…): the digest of the manifest it refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// What `PATCH /acr/v1/<name>[/_tags/<tag>|/_manifests/<digest>]` answers: the attributes
/// now in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcrAttributes {
    pub changeable_attributes: ChangeableAttributes,
}
