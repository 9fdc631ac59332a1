//! Python: installed distributions' `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an
//! `*.egg-info` file holding the same headers): `Name` and `Version`.

use super::{control, package, purl, Found};
use crate::scan::view::FileView;

pub(super) fn wants(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || path.ends_with(".egg-info")
}

pub(super) fn catalog(view: &FileView, found: &mut Found) {
    for (path, file) in view.files().filter(|(path, _)| wants(path)) {
        let Some(text) = file.content.text() else {
            continue;
        };
        let text = String::from_utf8_lossy(text);
        // The headers end at the first blank line; the description follows.
        let headers = control::fields(text.split("\n\n").next().unwrap_or_default());
        match (
            control::get(&headers, "Name"),
            control::get(&headers, "Version"),
        ) {
            (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => {
                let purl = purl("pypi", None, name, version, &[]);
                found
                    .packages
                    .push(package("PyPI", name, version, path, file, purl));
            }
            _ => found.unreadable(path, file, "no Name or Version header"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::catalogers::test_view::TestView;

    #[test]
    fn dist_info_and_egg_info_give_name_and_version() {
        let view = TestView::new()
            .file(
                "usr/local/lib/python3.13/site-packages/pip-24.2.dist-info/METADATA",
                include_str!("testdata/pip-24.2.METADATA"),
            )
            .file(
                "usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info/PKG-INFO",
                include_str!("testdata/PyJWT-2.6.0.PKG-INFO"),
            )
            .file(
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
                "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n",
            )
            .file(
                "usr/lib/python3/dist-packages/Broken_Pkg-1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\n",
            )
            .file(
                "usr/lib/python3/dist-packages/README.md",
                "Name: not-a-package\nVersion: 1\n",
            )
            .build();
        let mut found = Found::default();
        catalog(&view, &mut found);
        let got: Vec<_> = found
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("PyJWT", "2.6.0", "pkg:pypi/pyjwt@2.6.0"),
                ("six", "1.16.0", "pkg:pypi/six@1.16.0"),
                ("pip", "24.2", "pkg:pypi/pip@24.2"),
            ]
        );
        assert!(found.packages.iter().all(|p| p.ecosystem == "PyPI"));
        assert_eq!(found.unreadable.len(), 1);
        assert!(found.unreadable[0]
            .path
            .ends_with("Broken_Pkg-1.0.dist-info/METADATA"));
    }
}
