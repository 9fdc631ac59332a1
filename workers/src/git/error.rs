//! What can go wrong fetching a git context, and how libgit2's failures map onto it.

use git2::ErrorCode;

use super::source::redact_url;
use crate::fetch_policy::PolicyError;

/// Why a git build context could not be fetched. Every URL in here has its userinfo
/// redacted (`https://****@host/...`), so the messages are safe to show and log.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The context string does not follow `<url>#<ref>:<subdir>`; says why.
    #[error("invalid git URL {0}")]
    InvalidUrl(String),
    /// The server says there is no such repository (GitHub says so for private ones too).
    #[error("git repository {url} was not found; check the URL, and that the token can read it")]
    RepositoryNotFound { url: String },
    /// The server wants credentials and the token is missing, wrong or lacks access.
    #[error("authentication to {url} failed: give a git token that can read the repository")]
    AuthenticationFailed { url: String },
    /// The reference is neither a branch, a tag, a ref nor a commit of the repository.
    #[error("'{reference}' is not a branch, tag, commit or ref of {url}")]
    RefNotFound { url: String, reference: String },
    /// The subdirectory does not exist at the fetched commit, or is not a folder.
    #[error("the build context folder '{subdir}' is not a folder of the repository")]
    SubdirNotFound { subdir: String },
    /// The subdirectory leads outside the checkout, with `..` or through a symlink.
    #[error("the build context folder '{subdir}' points outside the repository")]
    SubdirEscapes { subdir: String },
    /// The fetch policy refused a URL (the context's or a submodule's) before anything was
    /// fetched from it. `what` names it, with its userinfo redacted.
    #[error("{what}: {reason}")]
    Refused { what: String, reason: PolicyError },
    /// Any other failure talking to the server or writing the checkout.
    #[error("fetching {url} failed: {message}")]
    Fetch { url: String, message: String },
}

impl GitError {
    /// Maps a libgit2 failure while talking to the server at `url` onto the variant a user
    /// can act on. libgit2 reports HTTP statuses only in its messages, hence the matching.
    pub(crate) fn from_git2(err: &git2::Error, url: &str) -> GitError {
        let message = scrub(err.message(), url);
        let lower = message.to_ascii_lowercase();
        let url = redact_url(url);
        let auth = err.code() == ErrorCode::Auth
            || lower.contains("status code: 401")
            || lower.contains("status code: 403")
            || lower.contains("authentication");
        // git daemon says "access denied or repository not exported" for a missing path;
        // a local path that is not there fails to resolve.
        let missing = lower.contains("status code: 404")
            || lower.contains("repository not found")
            || lower.contains("not exported")
            || lower.contains("could not find repository")
            || lower.contains("failed to resolve path");
        if auth {
            GitError::AuthenticationFailed { url }
        } else if missing {
            GitError::RepositoryNotFound { url }
        } else {
            GitError::Fetch { url, message }
        }
    }

    /// Whether trying again another way (a full instead of a shallow fetch) cannot help.
    pub(crate) fn is_final(&self) -> bool {
        matches!(
            self,
            GitError::AuthenticationFailed { .. } | GitError::RepositoryNotFound { .. }
        )
    }

    /// A failure on the local side (the checkout, its config), not the server's.
    pub(crate) fn local(err: &git2::Error, url: &str) -> GitError {
        GitError::Fetch {
            url: redact_url(url),
            message: scrub(err.message(), url),
        }
    }
}

/// libgit2 messages sometimes quote the URL; never let its userinfo through.
fn scrub(message: &str, url: &str) -> String {
    let redacted = redact_url(url);
    if redacted == url {
        message.to_string()
    } else {
        message.replace(url, &redacted)
    }
}

#[cfg(test)]
mod tests {
    use git2::{Error, ErrorClass};

    use super::*;

    const URL: &str = "https://me:hunter2@host/repo.git";

    fn map(code: ErrorCode, message: &str) -> GitError {
        GitError::from_git2(&Error::new(code, ErrorClass::Http, message), URL)
    }

    #[test]
    fn maps_http_statuses_and_messages() {
        for (code, message) in [
            (
                ErrorCode::Auth,
                "authentication required but no callback set",
            ),
            (ErrorCode::GenericError, "unexpected http status code: 403"),
            (
                ErrorCode::GenericError,
                "too many redirects or authentication replays",
            ),
        ] {
            assert!(
                matches!(map(code, message), GitError::AuthenticationFailed { .. }),
                "{message}"
            );
        }
        for message in [
            "unexpected http status code: 404",
            "remote error: Repository not found.",
            "remote error: access denied or repository not exported: /x.git",
        ] {
            assert!(
                matches!(
                    map(ErrorCode::GenericError, message),
                    GitError::RepositoryNotFound { .. }
                ),
                "{message}"
            );
        }
        assert!(matches!(
            map(ErrorCode::GenericError, "early EOF"),
            GitError::Fetch { message, .. } if message == "early EOF"
        ));
    }

    #[test]
    fn never_shows_the_userinfo() {
        let err = map(ErrorCode::GenericError, &format!("cannot reach {URL}"));
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("https://****@host/repo.git"), "{text}");
    }
}
