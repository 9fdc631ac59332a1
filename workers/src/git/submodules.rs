//! Submodules, initialized and checked out recursively like `git submodule update --init
//! --recursive`, with the same credentials as the repository itself.

use git2::{Repository, Submodule, SubmoduleUpdateOptions};

use super::auth::Credentials;
use super::GitError;

/// Deeper nesting than this is almost certainly a repository that includes itself.
const MAX_DEPTH: usize = 8;

/// Clones and checks out every submodule of `repo`, then theirs. `url` is the repository's
/// URL, named in errors that are not about one submodule.
pub(crate) fn update(
    repo: &Repository,
    creds: &Credentials<'_>,
    url: &str,
) -> Result<(), GitError> {
    update_nested(repo, creds, url, 0)
}

fn update_nested(
    repo: &Repository,
    creds: &Credentials<'_>,
    url: &str,
    depth: usize,
) -> Result<(), GitError> {
    let submodules = repo.submodules().map_err(|e| GitError::local(&e, url))?;
    if !submodules.is_empty() && depth >= MAX_DEPTH {
        return Err(GitError::Fetch {
            url: super::source::redact_url(url),
            message: format!("submodules nest more than {MAX_DEPTH} levels deep"),
        });
    }
    for mut submodule in submodules {
        // init writes the absolute URL (relative ones resolve against origin) to the config.
        submodule
            .init(false)
            .map_err(|e| in_submodule(&submodule, GitError::local(&e, url)))?;
        let sub_url = resolved_url(repo, &submodule).unwrap_or_else(|| url.to_string());
        let mut options = SubmoduleUpdateOptions::new();
        options.fetch(creds.fetch_options());
        submodule
            .update(true, Some(&mut options))
            .map_err(|e| in_submodule(&submodule, GitError::from_git2(&e, &sub_url)))?;
        let nested = submodule
            .open()
            .map_err(|e| in_submodule(&submodule, GitError::local(&e, &sub_url)))?;
        update_nested(&nested, creds, &sub_url, depth + 1)?;
    }
    Ok(())
}

/// The submodule's URL after `init`, which resolved a relative one like `../lib.git`.
fn resolved_url(repo: &Repository, submodule: &Submodule<'_>) -> Option<String> {
    let key = format!("submodule.{}.url", submodule.name().ok()?);
    repo.config().ok()?.get_string(&key).ok()
}

/// Says which submodule a generic failure is about; the specific variants name its URL.
fn in_submodule(submodule: &Submodule<'_>, err: GitError) -> GitError {
    match err {
        GitError::Fetch { url, message } => GitError::Fetch {
            url,
            message: format!("submodule '{}': {message}", submodule.path().display()),
        },
        other => other,
    }
}
