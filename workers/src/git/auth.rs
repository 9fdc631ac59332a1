//! HTTP basic credentials for libgit2: the run's git token, sent only to the repository's
//! own server.

use git2::{
    Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions, ProxyOptions, RemoteCallbacks,
    RemoteRedirect,
};

use crate::fetch_policy::FetchPolicy;
use crate::protocol::Secret;

/// How often one network operation may ask for credentials. libgit2 asks again each time
/// the server rejects them and would loop forever; the token does not change, so trying it
/// again only adds failed logins (which servers rate-limit). The second try allows for a
/// challenge after a redirect.
const MAX_ATTEMPTS: usize = 2;

/// The username sent with a token when the URL names none; GitHub, GitLab and Gitea all
/// accept it for access tokens.
const TOKEN_USERNAME: &str = "x-access-token";

/// The token of one fetch and the server it belongs to.
pub(crate) struct Credentials<'a> {
    token: Option<&'a Secret>,
    /// `scheme://host[:port]` of the repository; submodules elsewhere get no token.
    origin: Option<String>,
    /// Decides whether the server may redirect the first request to another host.
    policy: FetchPolicy,
}

impl<'a> Credentials<'a> {
    pub(crate) fn new(url: &str, token: Option<&'a Secret>, policy: &FetchPolicy) -> Self {
        Credentials {
            token,
            origin: origin(url),
            policy: *policy,
        }
    }

    /// Callbacks for one network operation (each gets a fresh attempt count).
    pub(crate) fn callbacks(&self) -> RemoteCallbacks<'a> {
        let token = self.token;
        let home = self.origin.clone();
        let mut attempts = 0;
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |url, username, allowed| {
            attempts += 1;
            let token = match token {
                Some(token) if home.is_some() && home == origin(url) => token,
                _ => {
                    return Err(auth_error(
                        "the server asks for credentials and no git token applies",
                    ))
                }
            };
            if attempts > MAX_ATTEMPTS {
                return Err(auth_error("the server rejected the git token"));
            }
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return Err(auth_error(
                    "the server wants credentials other than a token",
                ));
            }
            Cred::userpass_plaintext(username.unwrap_or(TOKEN_USERNAME), token.expose())
        });
        callbacks
    }

    /// Fetch options carrying these credentials, the proxy settings and the redirect rule.
    pub(crate) fn fetch_options(&self) -> FetchOptions<'a> {
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks())
            .proxy_options(proxy_options())
            .follow_redirects(redirects(&self.policy));
        options
    }
}

/// libgit2 checks no addresses, so a worker that denies private ones does not follow a
/// redirect to another host (which could be inside the network); the same host's
/// redirects still work. libgit2 only ever redirects to http(s), so the scheme rule holds
/// either way.
pub(crate) fn redirects(policy: &FetchPolicy) -> RemoteRedirect {
    if policy.deny_private_addresses {
        RemoteRedirect::None
    } else {
        RemoteRedirect::Initial
    }
}

/// Proxy settings as the git CLI finds them: `http.proxy`, then the environment.
pub(crate) fn proxy_options<'a>() -> ProxyOptions<'a> {
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    proxy
}

fn auth_error(message: &str) -> git2::Error {
    git2::Error::new(ErrorCode::Auth, ErrorClass::Http, message)
}

/// `scheme://host[:port]`, lowercase, without userinfo or a default port; `None` for URLs
/// without a scheme (which never ask for HTTP credentials).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    let host = default_port
        .and_then(|port| host.strip_suffix(port))
        .unwrap_or(&host);
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_ignore_userinfo_case_paths_and_default_ports() {
        assert_eq!(
            origin("https://me:tok@GitHub.com:443/org/repo.git").as_deref(),
            Some("https://github.com")
        );
        assert_eq!(
            origin("https://github.com/other/lib.git"),
            origin("https://github.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/x.git").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_ne!(origin("http://host/x.git"), origin("https://host/x.git"));
        assert_eq!(origin("git@github.com:org/repo.git"), None);
    }
}
