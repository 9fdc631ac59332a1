//! Git context URLs: parsing `<url>#<ref>:<subdir>`, telling git URLs apart from tarball
//! URLs and folders, and redacting the credentials a URL may carry.

use std::fmt;

use super::subdir;
use super::GitError;
use crate::fetch_policy::{self, Fetcher, PolicyError};

/// A git repository, optionally a reference in it and a folder inside it, written as
/// `https://host/org/repo.git#<ref>:<subdir>` (docker build's git URL grammar).
///
/// `Debug` redacts the URL's userinfo; serialization keeps it, because the worker needs it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// The repository: an `https://`, `http://` or `git://` URL (the fetch policy's rule).
    pub url: String,
    /// A branch, tag, full or abbreviated commit SHA, or a ref such as `pull/1/head`.
    /// `None` means the remote's default branch.
    pub reference: Option<String>,
    /// The build context folder, relative to the repository root. `None` means the root.
    pub subdir: Option<String>,
}

impl GitSource {
    /// Parses `<url>[#[<ref>][:<subdir>]]`: `#main`, `#v1.0:docker`, `#:docker`, or no
    /// fragment at all. A leading `/` in the subdirectory still means the repository root.
    pub fn parse(s: &str) -> Result<GitSource, GitError> {
        let invalid = |why: String| GitError::InvalidUrl(format!("'{}': {why}", redact_url(s)));
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains whitespace".into()));
        }
        let (url, fragment) = match s.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (s, None),
        };
        check_url(url).map_err(invalid)?;

        let (reference, subdir) = match fragment {
            Some(fragment) => fragment.split_once(':').unwrap_or((fragment, "")),
            None => ("", ""),
        };
        if !reference.is_empty() && !git2::Reference::is_valid_name(&format!("refs/{reference}")) {
            return Err(invalid(format!(
                "'{reference}' is not a valid branch, tag, commit or ref name"
            )));
        }
        let subdir = subdir.trim_matches('/');
        if subdir::escapes_lexically(subdir) {
            return Err(GitError::SubdirEscapes {
                subdir: subdir.to_string(),
            });
        }
        Ok(GitSource {
            url: url.to_string(),
            reference: (!reference.is_empty()).then(|| reference.to_string()),
            subdir: (!subdir.is_empty()).then(|| subdir.to_string()),
        })
    }
}

impl fmt::Debug for GitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &redact_url(&self.url))
            .field("reference", &self.reference)
            .field("subdir", &self.subdir)
            .finish()
    }
}

/// Checks the repository part of a git URL; the error says what is wrong with it. The
/// worker's libgit2 is built without SSH, so SSH URLs get the https URL to use instead;
/// everything else follows the fetch policy's scheme rule.
fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("the repository URL is empty".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        // scp-like syntax, as in git@github.com:org/repo.git, is SSH.
        return match url.split_once(':') {
            Some((login, path))
                if !login.is_empty() && !login.contains('/') && !path.is_empty() =>
            {
                let host = login.rsplit_once('@').map_or(login, |(_, host)| host);
                Err(ssh_unsupported(host, path))
            }
            _ => Err("expected a URL such as https://host/org/repo.git".into()),
        };
    };
    if scheme.eq_ignore_ascii_case("ssh") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let host = host.split(':').next().unwrap_or(host);
        return Err(ssh_unsupported(host, path));
    }
    match fetch_policy::check_url(url, Fetcher::Git) {
        Ok(_) => {}
        Err(PolicyError::Url { why, .. }) => return Err(why),
        Err(other) => return Err(other.to_string()),
    }
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    if path.trim_matches('/').is_empty() {
        return Err("the repository path is missing".into());
    }
    Ok(())
}

fn ssh_unsupported(host: &str, path: &str) -> String {
    format!(
        "SSH URLs are not supported: use https://{host}/{} with a git token",
        path.trim_start_matches('/')
    )
}

/// Whether a build-context argument names a git repository: `git://…`, `git@…`, `ssh://…`,
/// or http(s) URLs whose path ends in `.git` (optionally followed by `#…`). Other http(s)
/// URLs are tarballs; anything else is a local folder.
pub fn looks_like_git(s: &str) -> bool {
    if ["git://", "git@", "ssh://"]
        .iter()
        .any(|prefix| starts_with_ignore_case(s, prefix))
    {
        return true;
    }
    if !starts_with_ignore_case(s, "http://") && !starts_with_ignore_case(s, "https://") {
        return false;
    }
    let without_fragment = s.split_once('#').map_or(s, |(url, _)| url);
    without_fragment.ends_with(".git")
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

pub(crate) use crate::protocol::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> GitSource {
        GitSource::parse(s).unwrap()
    }

    fn source(url: &str, reference: Option<&str>, subdir: Option<&str>) -> GitSource {
        GitSource {
            url: url.into(),
            reference: reference.map(Into::into),
            subdir: subdir.map(Into::into),
        }
    }

    #[test]
    fn parses_the_fragment_forms() {
        let url = "https://github.com/org/repo.git";
        assert_eq!(parse(url), source(url, None, None));
        assert_eq!(
            parse(&format!("{url}#main")),
            source(url, Some("main"), None)
        );
        assert_eq!(
            parse(&format!("{url}#v1.0:docker/app")),
            source(url, Some("v1.0"), Some("docker/app"))
        );
        assert_eq!(
            parse(&format!("{url}#:docker")),
            source(url, None, Some("docker"))
        );
        assert_eq!(parse(&format!("{url}#")), source(url, None, None));
        assert_eq!(
            parse(&format!("{url}#main:")),
            source(url, Some("main"), None)
        );
        assert_eq!(
            parse(&format!("{url}#pull/12/head")),
            source(url, Some("pull/12/head"), None)
        );
        assert_eq!(
            parse(&format!("{url}#:/docker/")),
            source(url, None, Some("docker"))
        );
    }

    #[test]
    fn parses_every_supported_url_form() {
        for url in [
            "http://127.0.0.1:8080/repo.git",
            "https://github.com/org/repo",
            "git://host/repo.git",
            "https://user:secret@host/repo.git",
        ] {
            assert_eq!(parse(&format!("{url}#dev")).url, url);
        }
    }

    #[test]
    fn rejects_bad_urls_with_the_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("#main", "empty"),
            ("ftp://host/repo.git", "only https://, http:// and git://"),
            ("file:///srv/git/repo.git", "own disk"),
            ("https:///repo.git", "host is missing"),
            ("https://host", "path is missing"),
            ("https://host/", "path is missing"),
            ("just-a-folder", "expected a URL"),
            ("./dir/x:y", "expected a URL"),
            (
                "git@github.com:org/repo.git#main",
                "not supported: use https://github.com/org/repo.git",
            ),
            (
                "ssh://git@host:2222/org/repo.git",
                "not supported: use https://host/org/repo.git",
            ),
            ("https://host/repo.git#a b", "whitespace"),
            ("https://host/repo.git#bad..ref", "not a valid"),
        ] {
            let err = GitSource::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn rejects_a_subdir_that_climbs_out() {
        assert!(matches!(
            GitSource::parse("https://host/repo.git#main:../etc"),
            Err(GitError::SubdirEscapes { .. })
        ));
        assert!(matches!(
            GitSource::parse("https://host/repo.git#:a/../../b"),
            Err(GitError::SubdirEscapes { .. })
        ));
        assert_eq!(
            parse("https://host/repo.git#:a/../b").subdir.as_deref(),
            Some("a/../b")
        );
    }

    #[test]
    fn tells_git_urls_from_tarballs_and_folders() {
        for git in [
            "git://host/repo",
            "git@github.com:org/repo.git",
            "ssh://host/repo",
            "https://github.com/org/repo.git",
            "HTTP://host/repo.git#main:dir",
            "https://host/repo.git#:dir",
        ] {
            assert!(looks_like_git(git), "{git}");
        }
        for other in [
            "https://host/context.tar.gz",
            "https://github.com/org/repo",
            "https://host/repo.git/archive.tar",
            ".",
            "./repo.git",
            "/srv/repo.git",
            "github.com/org/repo.git",
        ] {
            assert!(!looks_like_git(other), "{other}");
        }
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_url("https://user:tok@host/org/repo.git"),
            "https://****@host/org/repo.git"
        );
        assert_eq!(
            redact_url("https://tok@host:8443/a@b.git"),
            "https://****@host:8443/a@b.git"
        );
        assert_eq!(
            redact_url("git@github.com:org/repo.git"),
            "****@github.com:org/repo.git"
        );
        assert_eq!(redact_url("https://host/a@b.git"), "https://host/a@b.git");
        assert_eq!(redact_url("file:///srv/repo.git"), "file:///srv/repo.git");
    }

    #[test]
    fn debug_and_errors_hide_credentials() {
        let s = parse("https://user:hunter2@host/repo.git#main");
        assert!(!format!("{s:?}").contains("hunter2"));
        let err = GitSource::parse("https://user:hunter2@host/repo.git#a b").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
