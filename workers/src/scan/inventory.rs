//! An image's inventory: its OS, its packages and what could not be read. Serialised in
//! camelCase, it is what the worker sends the server to match; it is also the SBOM
//! ([`super::sbom`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalogers::{self, os_release, Package};
use super::layers::LayerRef;
use super::view::FileView;

/// The distribution, from os-release(5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsRelease {
    /// `ID`: `debian`, `ubuntu`, `alpine`.
    pub id: String,
    /// `VERSION_ID`: `12`, `3.19.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`: `bookworm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty: Option<String>,
}

/// A file that should have said what it holds and could not: the scan does not know what
/// is there, which the report must say rather than call it clean.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRef>,
    pub reason: String,
}

/// What is inside one image (one platform's manifest).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    #[serde(default)]
    pub unreadable: Vec<Unreadable>,
}

impl Inventory {
    /// Runs every cataloger over the final view of an image's layers.
    pub fn from_view(view: &FileView) -> Inventory {
        let os = os_release::detect(view);
        let found = catalogers::catalog(view, os.as_ref());
        let mut unreadable = view.unreadable().to_vec();
        unreadable.extend(found.unreadable);
        Inventory {
            os,
            packages: found.packages,
            unreadable,
        }
    }

    /// Package counts by kind (the package URL type: `deb`, `apk`, `pypi`, `npm`, `golang`,
    /// `cargo`), largest first, then by name.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for package in &self.packages {
            *counts.entry(kind(&package.purl)).or_default() += 1;
        }
        let mut counts: Vec<(String, usize)> =
            counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    /// The log line: `Found 142 packages (deb 120, npm 22)`.
    pub fn summary_line(&self) -> String {
        let total = self.packages.len();
        let noun = if total == 1 { "package" } else { "packages" };
        let counts = self.counts();
        if counts.is_empty() {
            return format!("Found {total} {noun}");
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        format!("Found {total} {noun} ({})", parts.join(", "))
    }
}

/// `pkg:deb/debian/…` → `deb`.
fn kind(purl: &str) -> &str {
    purl.strip_prefix("pkg:")
        .and_then(|rest| rest.split('/').next())
        .filter(|k| !k.is_empty())
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(ecosystem: &str, name: &str, purl: &str) -> Package {
        Package {
            ecosystem: ecosystem.into(),
            name: name.into(),
            version: "1.0".into(),
            source_name: None,
            source_version: None,
            layer: LayerRef {
                index: 0,
                digest: "sha256:aa".into(),
            },
            path: "p".into(),
            purl: purl.into(),
        }
    }

    #[test]
    fn summary_line_counts_by_kind_largest_first() {
        let mut inventory = Inventory::default();
        assert_eq!(inventory.summary_line(), "Found 0 packages");
        inventory
            .packages
            .push(package("npm", "a", "pkg:npm/a@1.0"));
        assert_eq!(inventory.summary_line(), "Found 1 package (npm 1)");
        inventory
            .packages
            .push(package("Debian", "b", "pkg:deb/debian/b@1.0"));
        inventory
            .packages
            .push(package("Debian", "c", "pkg:deb/debian/c@1.0"));
        assert_eq!(inventory.summary_line(), "Found 3 packages (deb 2, npm 1)");
    }

    #[test]
    fn serialises_in_camel_case_and_back() {
        let mut inventory = Inventory {
            os: Some(OsRelease {
                id: "debian".into(),
                version_id: Some("12".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut libc = package("Debian", "libc6", "pkg:deb/debian/libc6@1.0");
        libc.source_name = Some("glibc".into());
        inventory.packages.push(libc);
        let json = serde_json::to_value(&inventory).unwrap();
        assert_eq!(json["os"]["versionId"], "12");
        assert_eq!(json["packages"][0]["sourceName"], "glibc");
        assert_eq!(json["packages"][0]["layer"]["digest"], "sha256:aa");
        let back: Inventory = serde_json::from_value(json).unwrap();
        assert_eq!(back, inventory);
    }
}
