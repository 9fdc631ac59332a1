//! Fetching one commit of a repository into a folder: list the remote's refs, resolve the
//! reference, download as little history as the server allows, check out, submodules.

use std::path::Path;

use git2::{AutotagOption, Direction, Oid, Remote, Repository};

use super::allowed;
use super::auth::{self, Credentials};
use super::resolve::{self, RemoteRef, Target};
use super::source::redact_url;
use super::{subdir, submodules, Checkout, GitError, GitSource};
use crate::fetch_policy::FetchPolicy;
use crate::protocol::Secret;

/// Where fetched branches go, as in a clone, so the checkout looks familiar.
const BRANCH_PREFIX: &str = "refs/heads/";
const TRACKING_PREFIX: &str = "refs/remotes/origin/";
/// What a full fetch takes when a commit cannot be asked for directly.
const ALL_BRANCHES_AND_TAGS: [&str; 2] = [
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/tags/*:refs/tags/*",
];
const FULL_SHA_LEN: usize = 40;
/// libgit2's depth for "all of history".
const FULL_DEPTH: i32 = 0;

/// Fetches `source` into `dest` (an empty folder) and checks out the commit it names,
/// detached, with its submodules. `token` is sent as HTTP basic credentials, to the
/// repository's own server only. `policy` is checked for the repository and for every
/// submodule before anything is fetched from it. Blocking: async callers use
/// `spawn_blocking`.
pub fn fetch(
    source: &GitSource,
    token: Option<&Secret>,
    policy: &FetchPolicy,
    dest: &Path,
) -> Result<Checkout, GitError> {
    let url = source.url.as_str();
    let local = |e: git2::Error| GitError::local(&e, url);
    allowed::check(policy, "git context", url)?;
    let creds = Credentials::new(url, token, policy);

    let repo = Repository::init(dest).map_err(local)?;
    if policy.deny_private_addresses {
        // Listing the refs connects without fetch options, so it takes the redirect
        // rule from the repository's config.
        repo.config()
            .and_then(|mut config| config.set_bool("http.followRedirects", false))
            .map_err(local)?;
    }
    // A named remote (not an anonymous one): submodules with relative URLs resolve
    // against origin.
    let mut remote = repo.remote("origin", url).map_err(local)?;
    let (refs, default_branch) =
        list(&mut remote, &creds).map_err(|e| GitError::from_git2(&e, url))?;

    let target = resolve::resolve(
        &refs,
        default_branch.as_deref(),
        source.reference.as_deref(),
    )
    .ok_or_else(|| match &source.reference {
        Some(reference) => GitError::RefNotFound {
            url: redact_url(url),
            reference: reference.clone(),
        },
        None => GitError::Fetch {
            url: redact_url(url),
            message: "the repository has no default branch; is it empty?".into(),
        },
    })?;
    let (oid, branch) = match target {
        Target::Ref { name, oid, branch } => {
            let spec = format!("+{name}:{}", local_ref_name(&name));
            fetch_shallow_or_full(&mut remote, &creds, &[spec.as_str()], url)?;
            (oid, branch)
        }
        Target::Commit(sha) => (fetch_commit(&repo, &mut remote, &creds, &sha, url)?, None),
    };

    let commit = check_out(&repo, oid).map_err(local)?;
    submodules::update(&repo, &creds, policy, url)?;
    let context_dir = subdir::resolve(dest, source.subdir.as_deref())?;
    Ok(Checkout {
        context_dir,
        commit: commit.to_string(),
        branch,
    })
}

/// Checks out the commit `oid` is or points at (a tag), detached; returns the commit.
fn check_out(repo: &Repository, oid: Oid) -> Result<Oid, git2::Error> {
    let commit = repo.find_object(oid, None)?.peel_to_commit()?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    repo.checkout_tree(commit.as_object(), Some(checkout.force()))?;
    repo.set_head_detached(commit.id())?;
    Ok(commit.id())
}

/// The remote's refs and its default branch (`refs/heads/...`), from one connection.
fn list(
    remote: &mut Remote<'_>,
    creds: &Credentials<'_>,
) -> Result<(Vec<RemoteRef>, Option<String>), git2::Error> {
    let connection = remote.connect_auth(
        Direction::Fetch,
        Some(creds.callbacks()),
        Some(auth::proxy_options()),
    )?;
    let refs = connection
        .list()?
        .iter()
        .map(|head| RemoteRef {
            name: head.name().to_string(),
            oid: head.oid(),
        })
        .collect();
    // Fails only when the remote advertises no HEAD, as an empty repository does.
    let default_branch = connection
        .default_branch()
        .ok()
        .and_then(|name| name.as_str().ok().map(str::to_string));
    Ok((refs, default_branch))
}

/// Branches land under `refs/remotes/origin/`, everything else under its own name.
fn local_ref_name(name: &str) -> String {
    match name.strip_prefix(BRANCH_PREFIX) {
        Some(branch) => format!("{TRACKING_PREFIX}{branch}"),
        None => name.to_string(),
    }
}

/// Fetches `specs` at depth 1, or all of their history when that fails: local (`file://`)
/// remotes and some servers cannot do shallow fetches.
fn fetch_shallow_or_full(
    remote: &mut Remote<'_>,
    creds: &Credentials<'_>,
    specs: &[&str],
    url: &str,
) -> Result<(), GitError> {
    let Err(shallow) = download(remote, creds, specs, 1) else {
        return Ok(());
    };
    let shallow = GitError::from_git2(&shallow, url);
    if shallow.is_final() {
        return Err(shallow);
    }
    tracing::debug!(error = %shallow, "shallow fetch failed; fetching full history");
    download(remote, creds, specs, FULL_DEPTH).map_err(|e| GitError::from_git2(&e, url))
}

/// A commit no ref points at: asked for directly at depth 1 (servers that allow it, such
/// as GitHub), else found locally after fetching every branch and tag.
fn fetch_commit(
    repo: &Repository,
    remote: &mut Remote<'_>,
    creds: &Credentials<'_>,
    sha: &str,
    url: &str,
) -> Result<Oid, GitError> {
    if let Some(oid) = Oid::from_str(sha)
        .ok()
        .filter(|_| sha.len() == FULL_SHA_LEN)
    {
        match download(remote, creds, &[sha], 1) {
            Ok(()) if repo.find_commit(oid).is_ok() => return Ok(oid),
            Ok(()) => {}
            Err(e) => {
                let err = GitError::from_git2(&e, url);
                if err.is_final() {
                    return Err(err);
                }
                tracing::debug!(error = %err, "commit refused by SHA; fetching all history");
            }
        }
    }
    download(remote, creds, &ALL_BRANCHES_AND_TAGS, FULL_DEPTH)
        .map_err(|e| GitError::from_git2(&e, url))?;
    match repo
        .revparse_single(sha)
        .and_then(|object| object.peel_to_commit())
    {
        Ok(commit) => Ok(commit.id()),
        Err(e) if e.code() == git2::ErrorCode::Ambiguous => Err(GitError::Fetch {
            url: redact_url(url),
            message: format!("the abbreviated commit '{sha}' is ambiguous; give more of its SHA"),
        }),
        Err(_) => Err(GitError::RefNotFound {
            url: redact_url(url),
            reference: sha.to_string(),
        }),
    }
}

/// One fetch of `specs` at `depth` (0 = full), without following tags: the build needs
/// the commit, not the repository's every release.
fn download(
    remote: &mut Remote<'_>,
    creds: &Credentials<'_>,
    specs: &[&str],
    depth: i32,
) -> Result<(), git2::Error> {
    let mut options = creds.fetch_options();
    options.depth(depth).download_tags(AutotagOption::None);
    remote.fetch(specs, Some(&mut options), None)
}

// Fetching itself is tested against real git servers in tests/git_fetch.rs.
#[cfg(test)]
mod tests {
    use super::super::test_repo::TestRepo;
    use super::*;

    #[test]
    fn refuses_local_repositories_before_reading_them() {
        let repo = TestRepo::new();
        repo.commit(&[("secret.txt", "hunter2")]);
        for url in [repo.url(), repo.path().display().to_string()] {
            let source = GitSource {
                url: url.clone(),
                reference: None,
                subdir: None,
            };
            let dest = tempfile::tempdir().unwrap();
            let err = fetch(&source, None, &FetchPolicy::default(), dest.path()).unwrap_err();
            assert!(matches!(err, GitError::Refused { .. }), "{url}: {err:?}");
            assert!(err.to_string().contains("refused"), "{err}");
            let written = std::fs::read_dir(dest.path()).unwrap().count();
            assert_eq!(written, 0, "{url}: nothing is fetched");
        }
    }
}
