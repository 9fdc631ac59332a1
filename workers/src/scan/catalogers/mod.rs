//! Catalogers: each reads one kind of package record from the [`FileView`] and yields
//! [`Package`]s. [`wants`] is the union of what they read, the filter the layer walk keeps
//! files by. Ecosystem names are OSV's, so the server matches them as they are.

mod apk;
mod control;
mod dpkg;
mod go;
mod npm;
pub mod os_release;
mod python;
mod rust;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::inventory::{OsRelease, Unreadable};
use super::layers::{LayerRef, Want};
use super::view::{FileEntry, FileView};

/// Executables smaller than this are scripts or stubs, not Go or Rust programs.
const MIN_BINARY_SIZE: u64 = 16 * 1024;

/// One installed package, where it was found and who wrote it there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// As OSV spells it: `Debian`, `Ubuntu`, `Alpine`, `PyPI`, `npm`, `Go`, `crates.io`.
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    /// The source package (Debian, Alpine), which is what their advisories name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The layer that introduced the package: for package databases (dpkg's status, apk's
    /// installed) the earliest layer since which the database lists it at this version; for
    /// other files the layer that last wrote the file.
    pub layer: LayerRef,
    /// That file, from the image's root (`var/lib/dpkg/status`, `usr/local/bin/app`).
    pub path: String,
    pub purl: String,
}

/// What the catalogers read, for [`super::LayerWalker`]: package databases and manifests
/// whole, executables (likely Go or Rust programs) through the streaming binary scan.
pub fn wants(path: &str, mode: u32, size: u64) -> Want {
    if dpkg::is_database(path) || apk::wants(path) {
        return Want::Database;
    }
    let content = os_release::wants(path)
        || dpkg::wants(path)
        || apk::wants(path)
        || python::wants(path)
        || npm::wants(path)
        || rust::wants(path);
    if content {
        Want::Content
    } else if mode & 0o111 != 0 && size >= MIN_BINARY_SIZE {
        Want::Executable
    } else {
        Want::Skip
    }
}

/// Packages and the records that could not be read.
#[derive(Debug, Default)]
pub struct Found {
    pub packages: Vec<Package>,
    pub unreadable: Vec<Unreadable>,
}

impl Found {
    fn unreadable(&mut self, path: &str, file: &FileEntry, reason: impl Into<String>) {
        self.unreadable.push(Unreadable {
            path: path.to_owned(),
            layer: Some(file.layer.clone()),
            reason: reason.into(),
        });
    }
}

/// Runs every cataloger over `view`; `os` names the distribution for OS package URLs.
pub fn catalog(view: &FileView, os: Option<&OsRelease>) -> Found {
    let mut found = Found::default();
    dpkg::catalog(view, os, &mut found);
    apk::catalog(view, os, &mut found);
    python::catalog(view, &mut found);
    npm::catalog(view, &mut found);
    go::catalog(view, &mut found);
    rust::catalog(view, &mut found);
    found
}

/// Moves each of `packages` (read from `file`, a package database) back to the earliest layer
/// since which every version of the database lists it at the same version: the layer that
/// introduced it, rather than the last one that rewrote the database. `listed` reads the
/// (name, version) pairs of one earlier version.
fn trace_introduction(
    packages: &mut [Package],
    file: &FileEntry,
    listed: impl Fn(&str) -> HashSet<(String, String)>,
) {
    let mut unbroken = vec![true; packages.len()];
    for earlier in &file.earlier {
        let pairs = listed(&String::from_utf8_lossy(&earlier.text));
        for (package, unbroken) in packages.iter_mut().zip(unbroken.iter_mut()) {
            *unbroken =
                *unbroken && pairs.contains(&(package.name.clone(), package.version.clone()));
            if *unbroken {
                package.layer = earlier.layer.clone();
            }
        }
        if !unbroken.contains(&true) {
            break;
        }
    }
}

/// A package URL (<https://github.com/package-url/purl-spec>), or "" for a name the spec
/// refuses (empty).
fn purl(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let Ok(mut purl) = packageurl::PackageUrl::new(ty, name) else {
        return String::new();
    };
    if let Some(namespace) = namespace.filter(|ns| !ns.is_empty()) {
        let _ = purl.with_namespace(namespace);
    }
    let _ = purl.with_version(version);
    for (key, value) in qualifiers.iter().filter(|(_, value)| !value.is_empty()) {
        let _ = purl.add_qualifier(*key, *value);
    }
    purl.to_string()
}

/// `distro` qualifier of OS package URLs, as syft writes it: `debian-12`, `alpine-3.19.1`.
fn distro(os: Option<&OsRelease>) -> String {
    match os {
        Some(OsRelease {
            id,
            version_id: Some(version),
            ..
        }) => format!("{id}-{version}"),
        Some(os) => os.id.clone(),
        None => String::new(),
    }
}

/// Builds a package found in `file` at `path`.
fn package(
    ecosystem: &str,
    name: &str,
    version: &str,
    path: &str,
    file: &FileEntry,
    purl: String,
) -> Package {
    Package {
        ecosystem: ecosystem.to_owned(),
        name: name.to_owned(),
        version: version.to_owned(),
        source_name: None,
        source_version: None,
        layer: file.layer.clone(),
        path: path.to_owned(),
        purl,
    }
}

#[cfg(test)]
pub(crate) mod test_view;
