//! Go programs: the module build info the linker embeds (Go ≥ 1.18's inline format): the
//! main module (unless `(devel)`), every dependency (a `=>` replacement wins: its code is what
//! was built), and the standard library as package `stdlib` at the toolchain's version, as
//! OSV's Go ecosystem names it.

use super::{package, purl, Found};
use crate::scan::binary::GoBuildInfo;
use crate::scan::view::{Content, FileEntry, FileView};

pub(super) fn catalog(view: &FileView, found: &mut Found) {
    for (path, file) in view.files() {
        let Content::Binary(binary) = &file.content else {
            continue;
        };
        match &binary.go {
            None => {}
            Some(GoBuildInfo::Inline {
                go_version,
                modinfo,
            }) => modules(go_version, modinfo, path, file, found),
            Some(GoBuildInfo::PointerFormat) => found.unreadable(
                path,
                file,
                "Go build info in the pre-1.18 format, which is not read",
            ),
            Some(GoBuildInfo::Malformed) => found.unreadable(path, file, "malformed Go build info"),
        }
    }
}

fn modules(go_version: &str, modinfo: &str, path: &str, file: &FileEntry, found: &mut Found) {
    // (path, version) of `mod` and `dep` lines, a `=>` line replacing the one before it.
    let mut modules: Vec<(&str, &str)> = Vec::new();
    for line in modinfo.lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("mod" | "dep"), Some(module), version) => {
                modules.push((module, version.unwrap_or_default()))
            }
            (Some("=>"), Some(module), version) => {
                if let Some(last) = modules.last_mut() {
                    *last = (module, version.unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    for (module, version) in modules {
        // `(devel)`: a main module built from a checkout; no version: a local replacement
        // (`=> ../lib`). Neither is a published module version.
        if version.is_empty() || version == "(devel)" || module.starts_with(['.', '/']) {
            continue;
        }
        push(found, module, version, path, file);
    }
    match stdlib_version(go_version) {
        Some(version) => push(found, "stdlib", &version, path, file),
        None => found.unreadable(
            path,
            file,
            format!("unrecognised Go version {go_version:?}"),
        ),
    }
}

fn push(found: &mut Found, module: &str, version: &str, path: &str, file: &FileEntry) {
    let (namespace, name) = match module.rsplit_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, module),
    };
    let purl = purl("golang", namespace, name, version, &[]);
    found
        .packages
        .push(package("Go", module, version, path, file, purl));
}

/// `go1.22.1` → `v1.22.1`, `go1.20` → `v1.20.0`, `go1.21rc2` → `v1.21.0-rc.2`; with the `v`
/// that module versions have, so one Go comparator reads both. Experiments and build
/// suffixes (`go1.22.1 X:boringcrypto`) are dropped; `devel` toolchains have no version.
fn stdlib_version(go_version: &str) -> Option<String> {
    let version = go_version.split_whitespace().next()?.strip_prefix("go")?;
    let (release, pre) = match version.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => {
            let (release, pre) = version.split_at(at);
            let digits = pre.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            (
                release,
                Some(format!("-{}.{digits}", &pre[..pre.len() - digits.len()])),
            )
        }
        None => (version, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut numbers = parts.clone();
    numbers.resize(3, "0");
    Some(format!("v{}{}", numbers.join("."), pre.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::binary::BinaryFindings;
    use crate::scan::catalogers::test_view::{name_versions, TestView};

    fn go_binary(go_version: &str, modinfo: &str) -> BinaryFindings {
        BinaryFindings {
            go: Some(GoBuildInfo::Inline {
                go_version: go_version.into(),
                modinfo: modinfo.into(),
            }),
            cargo_auditable: None,
        }
    }

    /// The shape `go version -m` prints for a module-mode build with a replaced dependency.
    const MODINFO: &str = "go\tgo1.22.1\npath\tgithub.com/acme/tool/cmd/tool\nmod\tgithub.com/acme/tool\tv1.4.0\th1:abc=\n\
dep\tgolang.org/x/net\tv0.17.0\th1:def=\n\
dep\tgithub.com/old/yaml\tv1.0.0\n=>\tgithub.com/new/yaml\tv1.2.0\th1:ghi=\n\
dep\texample.com/local\tv0.0.0-00010101000000-000000000000\n=>\t../local\t\n\
build\t-compiler=gc\nbuild\tGOOS=linux\n";

    #[test]
    fn main_module_dependencies_replacements_and_stdlib() {
        let view = TestView::new()
            .binary("usr/local/bin/tool", go_binary("go1.22.1", MODINFO))
            .build();
        let mut found = Found::default();
        catalog(&view, &mut found);
        let got = name_versions(&found);
        assert_eq!(
            got,
            [
                ("github.com/acme/tool", "v1.4.0"),
                ("golang.org/x/net", "v0.17.0"),
                ("github.com/new/yaml", "v1.2.0"),
                ("stdlib", "v1.22.1"),
            ]
        );
        assert!(found
            .packages
            .iter()
            .all(|p| p.ecosystem == "Go" && p.path == "usr/local/bin/tool"));
        assert_eq!(
            found.packages[1].purl,
            "pkg:golang/golang.org/x/net@v0.17.0"
        );
        assert_eq!(found.packages[3].purl, "pkg:golang/stdlib@v1.22.1");
    }

    #[test]
    fn devel_main_module_is_skipped_and_old_format_is_unreadable() {
        let view = TestView::new()
            .binary(
                "app",
                go_binary("go1.19.8", "path\tx/app\nmod\tx/app\t(devel)\t\n"),
            )
            .binary(
                "old",
                BinaryFindings {
                    go: Some(GoBuildInfo::PointerFormat),
                    cargo_auditable: None,
                },
            )
            .build();
        let mut found = Found::default();
        catalog(&view, &mut found);
        let got = name_versions(&found);
        assert_eq!(got, [("stdlib", "v1.19.8")]);
        assert_eq!(found.unreadable.len(), 1);
        assert_eq!(found.unreadable[0].path, "old");
    }

    #[test]
    fn go_versions_become_module_style_versions() {
        assert_eq!(stdlib_version("go1.22.1").as_deref(), Some("v1.22.1"));
        assert_eq!(stdlib_version("go1.20").as_deref(), Some("v1.20.0"));
        assert_eq!(stdlib_version("go1.21rc2").as_deref(), Some("v1.21.0-rc.2"));
        assert_eq!(
            stdlib_version("go1.22.1 X:boringcrypto").as_deref(),
            Some("v1.22.1")
        );
        assert_eq!(stdlib_version("devel go1.23-abcdef"), None);
    }
}
