//! JSON shapes of the registry management API (`/api/registry/…`), in the vocabulary of
//! `az acr repository`: names, tags and manifests with created and last-updated times.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: String,
    pub tag_count: u64,
    pub manifest_count: u64,
    pub created_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    #[serde(default)]
    pub changeable_attributes: ChangeableAttributes,
    /// Whether a manifest pushed here by tag is scanned; `None`: the server's
    /// `--scan-on-push` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_on_push: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub name: String,
    pub digest: String,
    pub created_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    /// The build run that pushed the tag, when a run did.
    pub run_id: Option<String>,
    #[serde(default)]
    pub changeable_attributes: ChangeableAttributes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub digest: String,
    pub tags: Vec<String>,
    pub media_type: String,
    /// `os/arch[/variant]` of an image, or of each image an index lists.
    pub platforms: Vec<String>,
    /// Size of the manifest plus, for an image, its config and layers (what a pull fetches).
    pub image_size: u64,
    pub created_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    pub run_id: Option<String>,
    #[serde(default)]
    pub changeable_attributes: ChangeableAttributes,
    /// Findings of its stored scan report by severity (an index: the sum of its images');
    /// absent when it was never scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<kiln_worker::protocol::SeverityTotals>,
}

/// ACR's `changeableAttributes`: the locks on a repository, tag or manifest. Kiln keeps
/// `writeEnabled` and `deleteEnabled`; reading and listing are governed by tokens, so
/// `readEnabled` and `listEnabled` are always true.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeableAttributes {
    pub delete_enabled: bool,
    pub write_enabled: bool,
    pub read_enabled: bool,
    pub list_enabled: bool,
}

impl Default for ChangeableAttributes {
    fn default() -> ChangeableAttributes {
        ChangeableAttributes {
            delete_enabled: true,
            write_enabled: true,
            read_enabled: true,
            list_enabled: true,
        }
    }
}

/// `PATCH` of a repository, tag or manifest (`/api/registry/repositories/…` and
/// `/acr/v1/…`), as `az acr repository update` sends it: the attributes to change. Kiln
/// cannot turn reading or listing off, so those two may only be sent as `true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributesUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_enabled: Option<bool>,
    /// Kiln's own, for a repository only: scan what is pushed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_on_push: Option<bool>,
}

/// `GET /api/registry/repositories/<name>/_tags?orderby=…`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum TagOrder {
    /// By name.
    #[default]
    Name,
    /// Most recently updated first.
    TimeDesc,
    /// Least recently updated first.
    TimeAsc,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagsQuery {
    #[serde(default)]
    pub orderby: TagOrder,
}

/// What a delete removed, so the CLI can say it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub manifests: Vec<String>,
    pub tags: Vec<String>,
}

/// `POST /api/registry/gc`; the body is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcRequest {
    /// Report what would be removed without removing it.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a registry garbage collection removed, or with `dryRun` would remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub dry_run: bool,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_removed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    #[serde(default)]
    pub blobs_kept: u64,
    /// The grace period (`kiln serve --gc-grace`), in seconds.
    #[serde(default)]
    pub grace_secs: u64,
    /// When the last of the kept blobs leaves the grace period, unless it is used again.
    #[serde(default)]
    pub kept_until: Option<DateTime<Utc>>,
}
