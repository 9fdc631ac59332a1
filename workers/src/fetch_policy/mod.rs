//! One rule for every URL a worker fetches: git contexts, each of their submodules, remote
//! tarballs and every redirect on the way.
//!
//! - Schemes: `https://` and `http://`, and for git also `git://`. Never `file://`, a local
//!   path, SSH (`ssh://`, `git@host:path`) or a transport helper (`ext::`): a context comes
//!   from the network, and anything else would read the build host's own disk.
//! - Credentials (the git token, a URL's userinfo) go only to the context's own origin,
//!   `scheme://host:port`; two servers on one machine with different ports are different
//!   hosts. `git::auth` and reqwest's redirect handling apply this.
//! - With [`FetchPolicy::deny_private_addresses`], hosts that resolve to loopback,
//!   link-local, private, unspecified or shared (CGNAT) addresses are refused, so a build
//!   host inside a network cannot be made to probe it.
//!
//! The scheme rule is pure and shared with the server, which checks it at submission.

mod address;
mod http;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

pub use address::{classify, AddressClass};
pub use http::{http_client, refusal};

use crate::protocol::redact_url;

/// What a worker fetches, which decides the schemes it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetcher {
    /// A git repository or submodule: `https://`, `http://` or `git://`.
    Git,
    /// A tarball download: `https://` or `http://`.
    Http,
}

impl Fetcher {
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Fetcher::Git => &["https", "http", "git"],
            Fetcher::Http => &["https", "http"],
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Fetcher::Git => "https://, http:// and git://",
            Fetcher::Http => "https:// and http://",
        }
    }
}

/// Where a URL that passed the scheme rule connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written, without IPv6 brackets.
    pub host: String,
    /// Set when the host is an IP address rather than a name.
    pub ip: Option<IpAddr>,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
}

/// Why a URL is not fetched. The messages are safe to show: URLs are redacted, and nothing
/// the refused host might have answered is in them, because it was never asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The URL is not one a worker fetches from (scheme, local path, SSH, ...).
    #[error("refused: {url} is not fetched: {why}")]
    Url { url: String, why: String },
    /// The host is, or resolves to, an address inside a network.
    #[error("refused: {shown} is {class} and this worker denies private addresses")]
    Address { shown: String, class: AddressClass },
    /// The host's name did not resolve, so its addresses could not be checked.
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
}

/// The operator's choices about what a worker may fetch from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Refuse hosts on loopback, link-local, private, unspecified and shared (CGNAT)
    /// addresses. Off by default: self-hosted build hosts commonly build from git
    /// servers and artifact stores on their own network and machine.
    pub deny_private_addresses: bool,
}

/// Checks the scheme rule for a URL fetched by `fetcher`, and says where it connects to.
pub fn check_url(url: &str, fetcher: Fetcher) -> Result<Target, PolicyError> {
    let refuse = |why: String| PolicyError::Url {
        url: format!("'{}'", redact_url(url)),
        why,
    };
    let allowed = fetcher.allowed();
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(refuse(
            "it contains whitespace, control characters or backslashes".into(),
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(refuse(without_scheme(url, allowed)));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "file" {
        return Err(refuse(format!(
            "file:// would read the build host's own disk; only {allowed} URLs are fetched"
        )));
    }
    if !fetcher.schemes().contains(&scheme.as_str()) {
        return Err(refuse(format!("only {allowed} URLs are fetched")));
    }
    // The URL parser would read `http:///x` as host `x`; git reads it as no host at all.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .is_empty()
    {
        return Err(refuse("the host is missing".into()));
    }
    let parsed = url::Url::parse(url).map_err(|e| refuse(e.to_string()))?;
    let (host, ip) = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => (name.to_string(), None),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
        _ => return Err(refuse("the host is missing".into())),
    };
    let port = parsed.port().unwrap_or(match scheme.as_str() {
        "https" => 443,
        "git" => 9418,
        _ => 80,
    });
    Ok(Target { host, ip, port })
}

/// Why a string without `scheme://` is refused, named for what it looks like.
fn without_scheme(url: &str, allowed: &str) -> String {
    let what = if url.starts_with('/') || url.starts_with('.') || url.starts_with('~') {
        "local paths are never fetched"
    } else if url.contains("::") {
        "git transport helpers (ext::, fd::) are never used"
    } else if url.contains(':') {
        "SSH addresses (host:path) are not supported"
    } else {
        "it is not a URL"
    };
    format!("{what}; only {allowed} URLs are fetched")
}

impl FetchPolicy {
    /// Checks one address the host `host` is, or resolves to.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), PolicyError> {
        if !self.deny_private_addresses {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(class) => Err(PolicyError::Address {
                shown: if host == ip.to_string() {
                    host.to_string()
                } else {
                    format!("{host} ({ip})")
                },
                class,
            }),
        }
    }

    /// Checks an IP address written in the URL; names are left to [`check_resolved`]
    /// or to the resolver of [`http_client`].
    ///
    /// [`check_resolved`]: FetchPolicy::check_resolved
    pub fn check_literal(&self, target: &Target) -> Result<(), PolicyError> {
        match target.ip {
            Some(ip) => self.check_ip(&target.host, ip),
            None => Ok(()),
        }
    }

    /// Checks every address of `addrs`, those `host` resolved to.
    pub fn check_addrs(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), PolicyError> {
        addrs
            .iter()
            .try_for_each(|addr| self.check_ip(host, addr.ip()))
    }

    /// Resolves the target's host now and checks all its addresses (a name with one
    /// private address among public ones is refused). Blocking. Only a check: whoever
    /// connects resolves again, see the git fetch for what that leaves open.
    pub fn check_resolved(&self, target: &Target) -> Result<(), PolicyError> {
        if !self.deny_private_addresses {
            return Ok(());
        }
        if target.ip.is_some() {
            return self.check_literal(target);
        }
        let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| PolicyError::Resolve {
                host: target.host.clone(),
                message: e.to_string(),
            })?
            .collect();
        self.check_addrs(&target.host, &addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY: FetchPolicy = FetchPolicy {
        deny_private_addresses: true,
    };

    #[test]
    fn accepts_network_urls_and_says_where_they_go() {
        for (url, fetcher, host, port) in [
            (
                "https://github.com/org/repo.git",
                Fetcher::Git,
                "github.com",
                443,
            ),
            ("HTTP://Host:8080/x.git", Fetcher::Git, "host", 8080),
            ("git://127.0.0.1/x.git", Fetcher::Git, "127.0.0.1", 9418),
            ("https://u:p@[::1]:8443/a.tgz", Fetcher::Http, "::1", 8443),
            ("http://example.com/a.tar", Fetcher::Http, "example.com", 80),
        ] {
            let target = check_url(url, fetcher).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((target.host.as_str(), target.port), (host, port), "{url}");
        }
    }

    #[test]
    fn refuses_every_other_kind_of_url_with_the_reason() {
        for (url, fetcher, reason) in [
            ("file:///srv/secret", Fetcher::Git, "own disk"),
            ("FILE:///srv/secret", Fetcher::Git, "own disk"),
            ("file:///srv/ctx.tar", Fetcher::Http, "own disk"),
            ("/srv/secret.git", Fetcher::Git, "local paths"),
            ("../lib.git", Fetcher::Git, "local paths"),
            ("ssh://git@host/org/repo.git", Fetcher::Git, "only https://"),
            ("git@github.com:org/repo.git", Fetcher::Git, "SSH addresses"),
            ("ext::sh -c touch% /tmp/pwned", Fetcher::Git, "whitespace"),
            ("ext::ssh%20host", Fetcher::Git, "transport helpers"),
            (
                "git://host/repo.git",
                Fetcher::Http,
                "only https:// and http://",
            ),
            ("ftp://host/ctx.tar", Fetcher::Http, "only https://"),
            ("http:///repo.git", Fetcher::Git, "host is missing"),
            ("https://me@/repo.git", Fetcher::Git, "host is missing"),
            ("http://host\\@evil/x", Fetcher::Http, "backslashes"),
            ("repo", Fetcher::Git, "not a URL"),
        ] {
            let err = check_url(url, fetcher).unwrap_err().to_string();
            assert!(err.starts_with("refused: "), "{url}: {err}");
            assert!(err.contains(reason), "{url}: {err}");
        }
    }

    #[test]
    fn never_shows_userinfo() {
        let err = check_url("file://me:hunter2@host/x", Fetcher::Git).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn denies_private_addresses_only_when_asked() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            FetchPolicy::default().check_ip("127.0.0.1", loopback),
            Ok(())
        );
        assert_eq!(
            DENY.check_ip("127.0.0.1", loopback)
                .unwrap_err()
                .to_string(),
            "refused: 127.0.0.1 is a loopback address and this worker denies private addresses"
        );
        assert_eq!(
            DENY.check_ip("localhost", loopback).unwrap_err().to_string(),
            "refused: localhost (127.0.0.1) is a loopback address and this worker denies private addresses"
        );
        assert_eq!(DENY.check_ip("one.one", "1.1.1.1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn resolves_names_before_judging_them() {
        let target = check_url("http://localhost:1/x.git", Fetcher::Git).unwrap();
        let err = DENY.check_resolved(&target).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::Address {
                    class: AddressClass::Loopback,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(FetchPolicy::default().check_resolved(&target), Ok(()));
        for literal in [
            "http://[::ffff:169.254.169.254]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
        ] {
            // Spelled as a number, an address is still the address libgit2 and reqwest reach.
            let target = check_url(literal, Fetcher::Http).unwrap();
            assert!(DENY.check_literal(&target).is_err(), "{literal}");
        }
    }
}
