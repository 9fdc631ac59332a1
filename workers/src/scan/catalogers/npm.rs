//! npm: installed packages' `node_modules/**/package.json` and `package-lock.json` files
//! (v1's nested `dependencies`; v2 and v3's `packages`, keyed by `node_modules/…` paths).

use serde_json::Value;

use super::{package, purl, Found};
use crate::scan::view::{FileEntry, FileView};

const NODE_MODULES: &str = "node_modules/";
const LOCKFILE: &str = "package-lock.json";

pub(super) fn wants(path: &str) -> bool {
    is_installed_manifest(path) || is_lockfile(path)
}

/// `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`: a
/// package's own manifest, not one of the many nested inside its files.
fn is_installed_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let Some(at) = dir
        .rfind(NODE_MODULES)
        .filter(|&at| at == 0 || dir[..at].ends_with('/'))
    else {
        return false;
    };
    let name = &dir[at + NODE_MODULES.len()..];
    match name.split('/').collect::<Vec<_>>()[..] {
        [name] => !name.is_empty() && !name.starts_with(['.', '@']),
        [scope, name] => scope.len() > 1 && scope.starts_with('@') && !name.is_empty(),
        _ => false,
    }
}

/// A project's lockfile; packages do not publish theirs, so none inside `node_modules`.
fn is_lockfile(path: &str) -> bool {
    crate::scan::path::file_name(path) == LOCKFILE && !path.contains(NODE_MODULES)
}

pub(super) fn catalog(view: &FileView, found: &mut Found) {
    for (path, file) in view.files() {
        let Some(text) = file.content.text() else {
            continue;
        };
        let is_manifest = is_installed_manifest(path);
        if !is_manifest && !is_lockfile(path) {
            continue;
        }
        let json: Value = match serde_json::from_slice(text) {
            Ok(json) => json,
            Err(err) => {
                found.unreadable(path, file, format!("invalid JSON: {err}"));
                continue;
            }
        };
        if is_manifest {
            // Manifests without both are not published packages (workspaces, fixtures).
            if let (Some(name), Some(version)) =
                (str_field(&json, "name"), str_field(&json, "version"))
            {
                push(found, name, version, path, file);
            }
        } else if let Some(packages) = json.get("packages").and_then(Value::as_object) {
            lockfile_packages(packages, path, file, found);
        } else if let Some(dependencies) = json.get("dependencies") {
            lockfile_v1_dependencies(dependencies, path, file, found);
        }
    }
}

/// v2/v3: `"node_modules/a/node_modules/@s/b": {"version": …}`; the root `""` is the project
/// itself, `link: true` entries point at workspace folders, and keys outside `node_modules`
/// are workspace packages.
fn lockfile_packages(
    packages: &serde_json::Map<String, Value>,
    path: &str,
    file: &FileEntry,
    found: &mut Found,
) {
    for (key, entry) in packages {
        let Some(at) = key.rfind(NODE_MODULES) else {
            continue;
        };
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        // An aliased install (`"x": "npm:real@1"`) records the real name.
        let name = str_field(entry, "name").unwrap_or(&key[at + NODE_MODULES.len()..]);
        if let Some(version) = str_field(entry, "version") {
            push(found, name, version, path, file);
        }
    }
}

/// v1: `"dependencies": {"a": {"version": …, "dependencies": {…}}}`, nested.
fn lockfile_v1_dependencies(dependencies: &Value, path: &str, file: &FileEntry, found: &mut Found) {
    let Some(dependencies) = dependencies.as_object() else {
        return;
    };
    for (name, entry) in dependencies {
        if let Some(version) = str_field(entry, "version") {
            push(found, name, version, path, file);
        }
        if let Some(nested) = entry.get("dependencies") {
            lockfile_v1_dependencies(nested, path, file, found);
        }
    }
}

fn push(found: &mut Found, name: &str, version: &str, path: &str, file: &FileEntry) {
    // `file:`, `git+https:` and tarball URLs are not registry versions OSV could name.
    if version.contains(':') || version.contains('/') {
        return;
    }
    let (namespace, short) = match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
        _ => (None, name),
    };
    let purl = purl("npm", namespace, short, version, &[]);
    found
        .packages
        .push(package("npm", name, version, path, file, purl));
}

fn str_field<'a>(json: &'a Value, key: &str) -> Option<&'a str> {
    json.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::catalogers::test_view::{name_versions, TestView};

    fn names(found: &Found) -> Vec<(&str, &str, &str)> {
        found
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.path.as_str()))
            .collect()
    }

    #[test]
    fn installed_manifests_only_at_package_roots() {
        assert!(wants("app/node_modules/express/package.json"));
        assert!(wants("node_modules/@types/node/package.json"));
        assert!(wants("app/node_modules/a/node_modules/b/package.json"));
        assert!(!wants("app/node_modules/express/lib/package.json"));
        assert!(!wants("app/package.json"));
        assert!(!wants("app/my_node_modules/x/package.json"));
        assert!(wants("app/package-lock.json"));
        assert!(!wants("app/node_modules/x/package-lock.json"));
        assert!(!wants("app/node_modules/.package-lock.json"));
    }

    #[test]
    fn manifests_give_name_and_version_and_skip_incomplete_ones() {
        let view = TestView::new()
            .file(
                "app/node_modules/@babel/core/package.json",
                r#"{"name":"@babel/core","version":"7.24.0","main":"lib/index.js"}"#,
            )
            .file(
                "app/node_modules/lodash/package.json",
                r#"{"name":"lodash","version":"4.17.21"}"#,
            )
            .file(
                "app/node_modules/private/package.json",
                r#"{"name":"private"}"#,
            )
            .file("app/node_modules/broken/package.json", "{not json")
            .build();
        let mut found = Found::default();
        catalog(&view, &mut found);
        assert_eq!(
            names(&found),
            [
                (
                    "@babel/core",
                    "7.24.0",
                    "app/node_modules/@babel/core/package.json"
                ),
                ("lodash", "4.17.21", "app/node_modules/lodash/package.json"),
            ]
        );
        assert_eq!(found.packages[0].purl, "pkg:npm/%40babel/core@7.24.0");
        assert_eq!(found.unreadable.len(), 1);
    }

    #[test]
    fn lockfile_v1_nested_dependencies() {
        let lock = r#"{"name":"app","version":"1.0.0","lockfileVersion":1,"requires":true,
          "dependencies":{
            "debug":{"version":"2.6.9","resolved":"https://registry.npmjs.org/debug/-/debug-2.6.9.tgz",
                     "dependencies":{"ms":{"version":"2.0.0"}}},
            "ms":{"version":"2.1.3"},
            "local":{"version":"file:../local"}}}"#;
        let mut found = Found::default();
        catalog(
            &TestView::new().file("app/package-lock.json", lock).build(),
            &mut found,
        );
        let got = name_versions(&found);
        assert_eq!(got, [("debug", "2.6.9"), ("ms", "2.0.0"), ("ms", "2.1.3")]);
    }

    #[test]
    fn lockfile_v3_packages_skip_root_links_and_workspaces() {
        let lock = r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,
          "packages":{
            "":{"name":"app","version":"1.0.0","dependencies":{"express":"^4.18.2"}},
            "node_modules/express":{"version":"4.18.2","resolved":"https://registry.npmjs.org/express/-/express-4.18.2.tgz"},
            "node_modules/express/node_modules/@scope/deep":{"version":"0.1.0"},
            "node_modules/alias":{"name":"real-name","version":"2.0.0"},
            "node_modules/my-workspace":{"resolved":"packages/my-workspace","link":true},
            "packages/my-workspace":{"name":"my-workspace","version":"0.0.1"}}}"#;
        let mut found = Found::default();
        catalog(
            &TestView::new().file("srv/package-lock.json", lock).build(),
            &mut found,
        );
        let mut got = name_versions(&found);
        got.sort();
        assert_eq!(
            got,
            [
                ("@scope/deep", "0.1.0"),
                ("express", "4.18.2"),
                ("real-name", "2.0.0")
            ]
        );
    }
}
