//! Debian and Ubuntu: dpkg's `/var/lib/dpkg/status`, and distroless images' one file per
//! package under `/var/lib/dpkg/status.d/`. Advisories name source packages, so each package
//! carries its `Source:` (name, and version when it differs from the binary's).

use super::{control, distro, package, purl, trace_introduction, Found};
use crate::scan::inventory::OsRelease;
use crate::scan::view::{FileEntry, FileView};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_DIR: &str = "var/lib/dpkg/status.d";

/// dpkg's status, rewritten by every layer that installs packages.
pub(super) fn is_database(path: &str) -> bool {
    path == STATUS
}

pub(super) fn wants(path: &str) -> bool {
    path == STATUS
        || path
            .strip_prefix(STATUS_DIR)
            .is_some_and(|rest| rest.starts_with('/') && !rest.ends_with(".md5sums"))
}

pub(super) fn catalog(view: &FileView, os: Option<&OsRelease>, found: &mut Found) {
    let files = view.get(STATUS).map(|file| (STATUS, file)).into_iter();
    for (path, file) in files.chain(view.files_under(STATUS_DIR)) {
        if wants(path) {
            read_status(path, file, os, found);
        }
    }
}

fn read_status(path: &str, file: &FileEntry, os: Option<&OsRelease>, found: &mut Found) {
    let Some(text) = file.content.text() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    // Ubuntu publishes its own advisories (OSV ecosystem "Ubuntu"); any other dpkg system is
    // matched as Debian.
    let (ecosystem, namespace) = match os.map(|os| os.id.as_str()) {
        Some("ubuntu") => ("Ubuntu", "ubuntu"),
        _ => ("Debian", "debian"),
    };
    let distro = distro(os);
    let first = found.packages.len();
    for fields in installed(&text) {
        let get = |key| control::get(&fields, key);
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else {
            continue;
        };
        let (source_name, source_version) = match get("Source").map(split_source) {
            Some((source, Some(source_version))) => (source, source_version),
            Some((source, None)) => (source, version),
            None => (name, version),
        };
        let arch = get("Architecture").unwrap_or_default();
        let upstream = match (source_name == name, source_version == version) {
            (true, true) => String::new(),
            (_, true) => source_name.to_owned(),
            _ => format!("{source_name}@{source_version}"),
        };
        let purl = purl(
            "deb",
            Some(namespace),
            name,
            version,
            &[("arch", arch), ("distro", &distro), ("upstream", &upstream)],
        );
        let mut package = package(ecosystem, name, version, path, file, purl);
        package.source_name = Some(source_name.to_owned());
        package.source_version = Some(source_version.to_owned());
        found.packages.push(package);
    }
    trace_introduction(&mut found.packages[first..], file, |text| {
        installed(text)
            .filter_map(|fields| {
                Some((
                    control::get(&fields, "Package")?.to_owned(),
                    control::get(&fields, "Version")?.to_owned(),
                ))
            })
            .collect()
    });
}

/// The paragraphs of installed packages. Distroless status.d files have no Status field:
/// everything they list is installed.
fn installed(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    control::paragraphs(text).filter(|fields| {
        control::get(fields, "Status").is_none_or(|status| status == "install ok installed")
    })
}

/// `glibc` or `bash (5.2.15-2)`.
fn split_source(source: &str) -> (&str, Option<&str>) {
    match source.split_once('(') {
        Some((name, version)) => (name.trim(), Some(version.trim_end_matches(')').trim())),
        None => (source.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::catalogers::test_view::TestView;

    /// Four paragraphs of this machine's (Debian 12) /var/lib/dpkg/status.
    const STATUS_SAMPLE: &str = include_str!("testdata/dpkg-status");

    fn debian_12() -> OsRelease {
        OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
            pretty: None,
        }
    }

    fn catalog_view(view: &FileView) -> Found {
        let mut found = Found::default();
        catalog(view, Some(&debian_12()), &mut found);
        found
    }

    #[test]
    fn status_gives_binary_and_source_packages() {
        let found = catalog_view(&TestView::new().file(STATUS, STATUS_SAMPLE).build());
        let summary: Vec<_> = found
            .packages
            .iter()
            .map(|p| {
                let source = (
                    p.source_name.as_deref().unwrap(),
                    p.source_version.as_deref().unwrap(),
                );
                (p.name.as_str(), p.version.as_str(), source)
            })
            .collect();
        assert_eq!(
            summary,
            [
                // Source with its own version (a binNMU: +b8).
                ("bash", "5.2.15-2+b8", ("bash", "5.2.15-2")),
                // Source without a version: the binary's.
                ("libc6", "2.36-9+deb12u14", ("glibc", "2.36-9+deb12u14")),
                (
                    "libssl3",
                    "3.0.19-1~deb12u2",
                    ("openssl", "3.0.19-1~deb12u2")
                ),
                // No Source: the package is its own source.
                ("tzdata", "2025b-0+deb12u2", ("tzdata", "2025b-0+deb12u2")),
            ]
        );
        let bash = &found.packages[0];
        assert_eq!(bash.ecosystem, "Debian");
        assert_eq!(bash.path, STATUS);
        assert_eq!(bash.purl, "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2");
        assert_eq!(
            found.packages[1].purl,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc"
        );
    }

    #[test]
    fn only_installed_packages_count() {
        let status = "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0-1\n\n\
                      Package: half\nStatus: install ok half-configured\nVersion: 2.0-1\n\n\
                      Package: here\nStatus: install ok installed\nVersion: 3.0-1\n";
        let found = catalog_view(&TestView::new().file(STATUS, status).build());
        let names: Vec<_> = found.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["here"]);
    }

    #[test]
    fn distroless_status_d_files_without_status_count_and_md5sums_do_not() {
        let view = TestView::new()
            .file("var/lib/dpkg/status.d/base-files", "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")
            .file("var/lib/dpkg/status.d/libssl3", "Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n")
            .file("var/lib/dpkg/status.d/libssl3.md5sums", "Package: bogus\nVersion: 1\n")
            .build();
        let found = catalog_view(&view);
        let names: Vec<_> = found
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.path.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("base-files", "var/lib/dpkg/status.d/base-files"),
                ("libssl3", "var/lib/dpkg/status.d/libssl3")
            ]
        );
        assert!(!wants("var/lib/dpkg/status.d/libssl3.md5sums"));
        assert!(!wants("var/lib/dpkg/status-old"));
    }

    #[test]
    fn ubuntu_packages_are_in_the_ubuntu_ecosystem() {
        let ubuntu = OsRelease {
            id: "ubuntu".into(),
            version_id: Some("22.04".into()),
            ..Default::default()
        };
        let mut found = Found::default();
        let view = TestView::new().file(STATUS, "Package: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.11.dfsg-2ubuntu9.2\nArchitecture: amd64\n").build();
        catalog(&view, Some(&ubuntu), &mut found);
        assert_eq!(found.packages[0].ecosystem, "Ubuntu");
        assert!(
            found.packages[0]
                .purl
                .starts_with("pkg:deb/ubuntu/zlib1g@1:1.2.11.dfsg-2ubuntu9.2?"),
            "{}",
            found.packages[0].purl
        );
    }
}
