//! Alpine: apk's `/lib/apk/db/installed` (`P:` name, `V:` version, `o:` origin, the source
//! package that Alpine's advisories name, `A:` architecture).

use super::{distro, package, purl, trace_introduction, Found};
use crate::scan::inventory::OsRelease;
use crate::scan::view::FileView;

const INSTALLED: &str = "lib/apk/db/installed";

pub(super) fn wants(path: &str) -> bool {
    path == INSTALLED
}

pub(super) fn catalog(view: &FileView, os: Option<&OsRelease>, found: &mut Found) {
    let Some(file) = view.get(INSTALLED) else {
        return;
    };
    let Some(text) = file.content.text() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let distro = distro(os);
    let first = found.packages.len();
    for record in text.split("\n\n") {
        let field = |key| field(record, key);
        let (Some(name), Some(version)) = (field("P"), field("V")) else {
            continue;
        };
        let origin = field("o").unwrap_or(name);
        let arch = field("A").unwrap_or_default();
        let upstream = if origin == name { "" } else { origin };
        let purl = purl(
            "apk",
            Some("alpine"),
            name,
            version,
            &[("arch", arch), ("distro", &distro), ("upstream", upstream)],
        );
        let mut package = package("Alpine", name, version, INSTALLED, file, purl);
        package.source_name = Some(origin.to_owned());
        package.source_version = Some(version.to_owned());
        found.packages.push(package);
    }
    trace_introduction(&mut found.packages[first..], file, |text| {
        text.split("\n\n")
            .filter_map(|record| {
                Some((
                    field(record, "P")?.to_owned(),
                    field(record, "V")?.to_owned(),
                ))
            })
            .collect()
    });
}

/// The value of a record's `key:` line.
fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::catalogers::test_view::TestView;

    /// Two records as apk writes them on Alpine 3.19 (fields trimmed to a sample).
    const INSTALLED_SAMPLE: &str = "C:Q1/7qk2wFsJXKzBoP4dSAdpLMMXMz8=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407278\nI:667648\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\nt:1701960283\nc:ee12edcf4ec5faff9e4a01e0f3ee5f36a8ea1e0e\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\n\
C:Q1lrVyFfN8HsrEq0qxqb7xpnsSSZo=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nS:1714148\nI:4354048\nT:Crypto library from openssl\nU:https://www.openssl.org/\nL:Apache-2.0\no:openssl\nm:Ariadne Conill <ariadne@dereferenced.org>\nt:1707232108\nc:0e2b1b6c2f6f3e1b4d5d0f4e5c5b2a1a0b0c0d0e\nD:so:libc.musl-x86_64.so.1\nF:lib\nR:libcrypto.so.3\n\n";

    #[test]
    fn installed_db_gives_packages_with_their_origin() {
        let os = OsRelease {
            id: "alpine".into(),
            version_id: Some("3.19.1".into()),
            ..Default::default()
        };
        let view = TestView::new().file(INSTALLED, INSTALLED_SAMPLE).build();
        let mut found = Found::default();
        catalog(&view, Some(&os), &mut found);
        let got: Vec<_> = found
            .packages
            .iter()
            .map(|p| {
                (
                    p.ecosystem.as_str(),
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Alpine", "musl", "1.2.4_git20230717-r4", "musl"),
                ("Alpine", "libcrypto3", "3.1.4-r5", "openssl")
            ]
        );
        assert_eq!(
            found.packages[1].purl,
            "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
        );
    }
}
