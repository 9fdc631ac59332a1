//! The policy applied to reqwest: every redirect is checked like the first URL, and with
//! private addresses denied, names resolve through a resolver that checks what they
//! resolve to, so the addresses checked are the ones connected to (no DNS rebinding).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::{check_url, FetchPolicy, Fetcher, PolicyError};

/// As many redirects as reqwest's own default policy follows.
const MAX_REDIRECTS: usize = 10;

/// Adds `policy` to an HTTP client under construction. reqwest itself drops the
/// `Authorization` header (from a URL's userinfo) on a redirect to another
/// `scheme://host:port`, which is the credentials rule.
///
/// IP addresses written in a URL never reach a resolver: callers check the first URL with
/// [`FetchPolicy::check_literal`]; redirects are checked here.
pub fn http_client(builder: reqwest::ClientBuilder, policy: FetchPolicy) -> reqwest::ClientBuilder {
    let builder = builder.redirect(redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let checked = check_url(attempt.url().as_str(), Fetcher::Http)
            .and_then(|target| policy.check_literal(&target));
        match checked {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    }));
    if policy.deny_private_addresses {
        builder.dns_resolver(Arc::new(CheckingResolver { policy }))
    } else {
        builder
    }
}

/// The policy's refusal inside a reqwest error (from the redirect policy or the resolver),
/// if that is what stopped the request.
pub fn refusal(err: &reqwest::Error) -> Option<PolicyError> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<PolicyError>() {
            return Some(refused.clone());
        }
        cause = e.source();
    }
    None
}

/// The system resolver, refusing names with a denied address among their addresses.
struct CheckingResolver {
    policy: FetchPolicy,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            policy.check_addrs(&host, &addrs)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
