//! Fetching one commit of a repository into a folder: list the remote's refs, resolve the
//! reference, download as little history as the server allows, check out, submodules.

use std::path::Path;

use git2::{AutotagOption, Direction, Oid, Remote, Repository};

use super::auth::{self, Credentials};
use super::resolve::{self, RemoteRef, Target};
use super::source::redact_url;
use super::{subdir, submodules, Checkout, GitError, GitSource};
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
/// repository's own server only. Blocking: async callers use `spawn_blocking`.
pub fn fetch(
    source: &GitSource,
    token: Option<&Secret>,
    dest: &Path,
) -> Result<Checkout, GitError> {
    let url = source.url.as_str();
    let local = |e: git2::Error| GitError::local(&e, url);
    let creds = Credentials::new(url, token);

    let repo = Repository::init(dest).map_err(local)?;
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
    submodules::update(&repo, &creds, url)?;
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

#[cfg(test)]
mod tests {
    use super::super::test_repo::TestRepo;
    use super::*;

    fn source(url: &str, reference: Option<&str>, subdir: Option<&str>) -> GitSource {
        GitSource {
            url: url.into(),
            reference: reference.map(Into::into),
            subdir: subdir.map(Into::into),
        }
    }

    fn fetch_into(source: &GitSource) -> (tempfile::TempDir, Result<Checkout, GitError>) {
        let dest = tempfile::tempdir().unwrap();
        let result = fetch(source, None, dest.path());
        (dest, result)
    }

    #[test]
    fn fetches_the_default_branch_over_file_urls() {
        let repo = TestRepo::new();
        repo.commit(&[("Dockerfile", "FROM scratch\n")]);
        let head = repo.commit(&[("app/Dockerfile", "FROM busybox\n")]);

        let (dest, checkout) = fetch_into(&source(&repo.url(), None, None));
        let checkout = checkout.unwrap();
        assert_eq!(checkout.commit, head);
        assert_eq!(checkout.branch.as_deref(), Some("main"));
        assert_eq!(checkout.context_dir, dest.path());
        assert!(dest.path().join("app/Dockerfile").is_file());
    }

    #[test]
    fn fetches_tags_old_commits_and_short_shas() {
        let repo = TestRepo::new();
        let first = repo.commit(&[("v", "1")]);
        repo.git(&["tag", "-a", "v1", "-m", "release 1"]);
        let second = repo.commit(&[("v", "2")]);
        repo.commit(&[("v", "3")]);

        for (reference, commit) in [
            ("v1", &first),
            (first.as_str(), &first),
            (&second[..9], &second),
        ] {
            let (dest, checkout) = fetch_into(&source(&repo.url(), Some(reference), None));
            let checkout = checkout.unwrap();
            assert_eq!(&checkout.commit, commit, "{reference}");
            assert_eq!(checkout.branch, None, "{reference}");
            let contents = std::fs::read_to_string(dest.path().join("v")).unwrap();
            assert_eq!(contents, if commit == &first { "1" } else { "2" });
        }
    }

    #[test]
    fn fetches_a_branch_into_a_subdir() {
        let repo = TestRepo::new();
        repo.commit(&[("README", "main")]);
        repo.git(&["checkout", "-q", "-b", "feature"]);
        let feature = repo.commit(&[("docker/Dockerfile", "FROM scratch\n")]);
        repo.git(&["checkout", "-q", "main"]);

        let (dest, checkout) = fetch_into(&source(&repo.url(), Some("feature"), Some("docker")));
        let checkout = checkout.unwrap();
        assert_eq!(checkout.commit, feature);
        assert_eq!(checkout.branch.as_deref(), Some("feature"));
        assert_eq!(checkout.context_dir, dest.path().join("docker"));
        assert!(checkout.context_dir.join("Dockerfile").is_file());
    }

    #[test]
    fn reports_missing_refs_repositories_and_subdirs() {
        let repo = TestRepo::new();
        repo.commit(&[("README", "hi")]);

        let (_dest, missing_ref) = fetch_into(&source(&repo.url(), Some("nope"), None));
        match &missing_ref {
            Err(GitError::RefNotFound { reference, .. }) => assert_eq!(reference, "nope"),
            other => panic!("{other:?}"),
        }
        let (_dest, missing_sha) = fetch_into(&source(&repo.url(), Some("deadbeef"), None));
        assert!(
            matches!(missing_sha, Err(GitError::RefNotFound { .. })),
            "{missing_sha:?}"
        );
        let gone = format!("{}/nope", repo.url());
        let (_dest, missing_repo) = fetch_into(&source(&gone, None, None));
        assert!(
            matches!(missing_repo, Err(GitError::RepositoryNotFound { .. })),
            "{missing_repo:?}"
        );
        let (_dest, missing_dir) = fetch_into(&source(&repo.url(), None, Some("docker")));
        assert!(
            matches!(missing_dir, Err(GitError::SubdirNotFound { .. })),
            "{missing_dir:?}"
        );
    }
}
