//! The distribution, from `/etc/os-release`, else `/usr/lib/os-release` (os-release(5)).

use crate::scan::inventory::OsRelease;
use crate::scan::view::FileView;

const PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

pub(super) fn wants(path: &str) -> bool {
    PATHS.contains(&path)
}

/// The first os-release file the image has, symlinks followed.
pub fn detect(view: &FileView) -> Option<OsRelease> {
    PATHS
        .iter()
        .filter_map(|path| view.resolve(path))
        .find_map(|(_, file)| parse(&String::from_utf8_lossy(file.content.text()?)))
}

fn parse(text: &str) -> Option<OsRelease> {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        let slot = match key {
            "ID" => {
                os.id = value;
                continue;
            }
            "VERSION_ID" => &mut os.version_id,
            "VERSION_CODENAME" => &mut os.codename,
            "PRETTY_NAME" => &mut os.pretty,
            _ => continue,
        };
        *slot = Some(value).filter(|v| !v.is_empty());
    }
    (!os.id.is_empty()).then_some(os)
}

/// A shell-style value: in double or single quotes, with backslash escapes in double ones.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' {
                chars.next().unwrap_or('\\')
            } else {
                c
            });
        }
        out
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.to_owned()
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::catalogers::test_view::TestView;

    /// Debian 12's /usr/lib/os-release, as shipped by base-files 12.4+deb12u5.
    const DEBIAN_12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn reads_os_release_through_the_etc_symlink() {
        let view = TestView::new()
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("usr/lib/os-release", DEBIAN_12)
            .build();
        let os = detect(&view).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.codename.as_deref(), Some("bookworm"));
        assert_eq!(os.pretty.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    #[test]
    fn etc_wins_over_usr_lib_and_alpine_has_no_codename() {
        let view = TestView::new()
            .file(
                "etc/os-release",
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
            )
            .file("usr/lib/os-release", DEBIAN_12)
            .build();
        let os = detect(&view).unwrap();
        assert_eq!(
            (os.id.as_str(), os.version_id.as_deref(), os.codename),
            ("alpine", Some("3.19.1"), None)
        );
    }

    #[test]
    fn no_os_release_means_no_os() {
        assert_eq!(
            detect(&TestView::new().file("etc/hostname", "x").build()),
            None
        );
    }
}
