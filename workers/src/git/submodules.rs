//! Submodules, initialized and checked out recursively like `git submodule update --init
//! --recursive`, with the same credentials as the repository itself (which `auth` sends
//! to the repository's own server only). `.gitmodules` is the repository author's to write,
//! so every submodule URL passes the fetch policy, after relative URLs resolve.

use git2::{Repository, Submodule, SubmoduleUpdateOptions};

use super::allowed;
use super::auth::Credentials;
use super::GitError;
use crate::fetch_policy::FetchPolicy;

/// Deeper nesting than this is almost certainly a repository that includes itself.
const MAX_DEPTH: usize = 8;

/// Clones and checks out every submodule of `repo`, then theirs. `url` is the repository's
/// URL, named in errors that are not about one submodule.
pub(crate) fn update(
    repo: &Repository,
    creds: &Credentials<'_>,
    policy: &FetchPolicy,
    url: &str,
) -> Result<(), GitError> {
    update_nested(repo, creds, policy, url, 0)
}

fn update_nested(
    repo: &Repository,
    creds: &Credentials<'_>,
    policy: &FetchPolicy,
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
        // init writes the absolute URL (relative ones resolve against origin) to the config,
        // and update clones exactly that URL.
        submodule
            .init(false)
            .map_err(|e| in_submodule(&submodule, GitError::local(&e, url)))?;
        let what = format!("submodule '{}'", submodule.path().display());
        let sub_url = resolved_url(repo, &submodule).ok_or_else(|| GitError::Fetch {
            url: super::source::redact_url(url),
            message: format!("{what} has no URL"),
        })?;
        allowed::check(policy, &what, &sub_url)?;
        let mut options = SubmoduleUpdateOptions::new();
        options.fetch(creds.fetch_options());
        submodule
            .update(true, Some(&mut options))
            .map_err(|e| in_submodule(&submodule, GitError::from_git2(&e, &sub_url)))?;
        let nested = submodule
            .open()
            .map_err(|e| in_submodule(&submodule, GitError::local(&e, &sub_url)))?;
        update_nested(&nested, creds, policy, &sub_url, depth + 1)?;
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

#[cfg(test)]
mod tests {
    use super::super::test_repo::TestRepo;
    use super::*;

    const DENY: FetchPolicy = FetchPolicy {
        deny_private_addresses: true,
    };

    /// A repository whose one submodule, at `lib`, has the URL `url` in `.gitmodules`.
    fn with_submodule(url: &str) -> TestRepo {
        let repo = TestRepo::new();
        let gitmodules = format!("[submodule \"lib\"]\n\tpath = lib\n\turl = {url}\n");
        let head = repo.commit(&[(".gitmodules", &gitmodules)]);
        repo.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},lib"),
        ]);
        repo.git(&["commit", "-q", "-m", "submodule"]);
        repo
    }

    /// Updates the submodules of `repo` as if it had been fetched from `origin`.
    fn update_from(repo: &TestRepo, origin: &str, policy: FetchPolicy) -> Result<(), GitError> {
        let git = Repository::open(repo.path()).unwrap();
        git.remote("origin", origin).unwrap();
        let creds = Credentials::new(origin, None, &policy);
        update(&git, &creds, &policy, origin)
    }

    #[test]
    fn refuses_every_submodule_url_but_network_ones() {
        for (url, origin, reason) in [
            ("file:///etc", "http://127.0.0.1:9/app.git", "own disk"),
            ("/etc", "http://127.0.0.1:9/app.git", "local paths"),
            ("../lib.git", "file:///srv/app.git", "own disk"),
            ("git@host:org/lib.git", "http://127.0.0.1:9/app.git", "SSH"),
            (
                "ssh://host/lib.git",
                "http://127.0.0.1:9/app.git",
                "only https://",
            ),
            (
                "ext::sh%20-c%20id",
                "http://127.0.0.1:9/app.git",
                "transport helpers",
            ),
        ] {
            let repo = with_submodule(url);
            let err = update_from(&repo, origin, FetchPolicy::default()).unwrap_err();
            assert!(matches!(err, GitError::Refused { .. }), "{url}: {err:?}");
            let message = err.to_string();
            assert!(message.starts_with("submodule 'lib' "), "{url}: {message}");
            assert!(message.contains(reason), "{url}: {message}");
            assert!(
                !repo.path().join("lib/.git").exists(),
                "{url}: nothing cloned"
            );
        }
    }

    #[test]
    fn refuses_a_private_submodule_host_only_when_denied() {
        // Relative URLs resolve against the origin first: ../lib.git is on 127.0.0.1 too.
        for url in ["http://localhost:9/lib.git", "../lib.git"] {
            let repo = with_submodule(url);
            let err = update_from(&repo, "http://127.0.0.1:9/app.git", DENY).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, GitError::Refused { .. }), "{url}: {err:?}");
            assert!(
                message.contains("is a loopback address and this worker denies private addresses"),
                "{url}: {message}"
            );
            // Allowed, it is fetched, and fails only because nothing listens on port 9.
            let repo = with_submodule(url);
            let err = update_from(&repo, "http://127.0.0.1:9/app.git", FetchPolicy::default());
            assert!(
                !matches!(err, Err(GitError::Refused { .. })),
                "{url}: {err:?}"
            );
        }
    }
}
