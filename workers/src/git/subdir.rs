//! The build context folder inside a checkout, kept from leading outside it.

use std::path::{Component, Path, PathBuf};

use super::GitError;

/// Whether `subdir` climbs above its root by its `..` components or is absolute, before
/// any symlink is looked at.
pub(crate) fn escapes_lexically(subdir: &str) -> bool {
    let mut depth = 0usize;
    for component in Path::new(subdir).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

/// The folder `subdir` names inside the checkout at `root`, with symlinks resolved, as a
/// path under `root`. A repository is untrusted input: a symlink in it may point anywhere
/// on the worker, so both paths are canonicalized and compared.
pub(crate) fn resolve(root: &Path, subdir: Option<&str>) -> Result<PathBuf, GitError> {
    let Some(subdir) = subdir
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
    else {
        return Ok(root.to_path_buf());
    };
    let escapes = || GitError::SubdirEscapes {
        subdir: subdir.to_string(),
    };
    let not_found = || GitError::SubdirNotFound {
        subdir: subdir.to_string(),
    };
    if escapes_lexically(subdir) {
        return Err(escapes());
    }
    let real_root = root.canonicalize().map_err(|_| not_found())?;
    let real = root.join(subdir).canonicalize().map_err(|_| not_found())?;
    let inside = real.strip_prefix(&real_root).map_err(|_| escapes())?;
    if !real.is_dir() {
        return Err(not_found());
    }
    Ok(root.join(inside))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn lexical_escapes() {
        for escaping in ["..", "../x", "a/../..", "/etc", "a/./../../b"] {
            assert!(escapes_lexically(escaping), "{escaping}");
        }
        for inside in ["", ".", "a", "a/..", "a/b/../c", "./a"] {
            assert!(!escapes_lexically(inside), "{inside}");
        }
    }

    #[test]
    fn resolves_folders_and_rejects_the_rest() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("app/docker")).unwrap();
        fs::write(root.join("README"), "hi").unwrap();
        symlink("app/docker", root.join("ctx")).unwrap();
        symlink(outside.path(), root.join("out")).unwrap();
        symlink("..", root.join("up")).unwrap();

        assert_eq!(resolve(root, None).unwrap(), root);
        assert_eq!(resolve(root, Some("/")).unwrap(), root);
        assert_eq!(
            resolve(root, Some("app/docker/")).unwrap(),
            root.join("app/docker")
        );
        assert_eq!(resolve(root, Some("ctx")).unwrap(), root.join("app/docker"));
        for missing in ["nope", "README", "app/nope/.."] {
            assert!(
                matches!(
                    resolve(root, Some(missing)),
                    Err(GitError::SubdirNotFound { .. })
                ),
                "{missing}"
            );
        }
        for escaping in ["../", "out", "up", "app/../../x"] {
            assert!(
                matches!(
                    resolve(root, Some(escaping)),
                    Err(GitError::SubdirEscapes { .. })
                ),
                "{escaping}"
            );
        }
    }
}
