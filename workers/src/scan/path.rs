//! Paths inside an image, as the view keys them: relative to the root, without `./`, `.` or
//! `..` components and without a trailing slash (`etc/os-release`).

/// Normalises a tar entry's path (`./etc/`, `/etc/os-release`, `usr/../etc`) to the view's
/// form. `..` never climbs above the root, as on a real file system.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// The directory holding `path` ("" for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `name` inside `dir`, `dir` being "" for the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The last component of `path`.
pub fn file_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dots_slashes_and_parents() {
        assert_eq!(normalize("./etc/"), "etc");
        assert_eq!(normalize("/etc/os-release"), "etc/os-release");
        assert_eq!(normalize("usr/lib/../../etc//os-release"), "etc/os-release");
        assert_eq!(normalize("../../etc"), "etc");
        assert_eq!(normalize("./"), "");
    }

    #[test]
    fn parent_join_and_file_name() {
        assert_eq!(parent("etc/os-release"), "etc");
        assert_eq!(parent("etc"), "");
        assert_eq!(join("", "etc"), "etc");
        assert_eq!(join("usr/lib", "os-release"), "usr/lib/os-release");
        assert_eq!(file_name("usr/lib/os-release"), "os-release");
    }
}
