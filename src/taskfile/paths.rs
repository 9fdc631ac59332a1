//! Paths inside a run: every step sees the workspace at `/workspace`.

/// Where the workspace is mounted in every step.
pub(crate) const WORKSPACE: &str = "/workspace";

/// A step's working directory: absolute as written, relative ones under `/workspace`,
/// with `.` and `..` resolved.
pub(crate) fn working_directory(dir: Option<&str>) -> String {
    match dir {
        None | Some("") => WORKSPACE.to_owned(),
        Some(d) if d.starts_with('/') => normalize(d),
        Some(d) => normalize(&format!("{WORKSPACE}/{d}")),
    }
}

/// Resolves `.` and `..` in an absolute path (never above `/`).
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `path` relative to the folder `base` (both absolute, normalised), if it is inside it.
pub(crate) fn relative_to(path: &str, base: &str) -> Option<String> {
    if path == base {
        return Some(".".to_owned());
    }
    let base = base.trim_end_matches('/');
    path.strip_prefix(base)?
        .strip_prefix('/')
        .map(str::to_owned)
}

/// Joins `path` to the folder `dir` (absolute), unless `path` is absolute.
pub(crate) fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        normalize(path)
    } else {
        normalize(&format!("{dir}/{path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_directories_live_under_the_workspace() {
        assert_eq!(working_directory(None), "/workspace");
        assert_eq!(working_directory(Some("src/./app")), "/workspace/src/app");
        assert_eq!(working_directory(Some("/tmp")), "/tmp");
        assert_eq!(
            relative_to("/workspace/a/b", "/workspace"),
            Some("a/b".into())
        );
        assert_eq!(relative_to("/workspace", "/workspace"), Some(".".into()));
        assert_eq!(relative_to("/workspacex", "/workspace"), None);
        assert_eq!(join("/workspace/a", "../b"), "/workspace/b");
    }
}
