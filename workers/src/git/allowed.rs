//! The fetch policy applied to git remotes: the context's URL and each submodule's, checked
//! before libgit2 connects to them.

use super::source::redact_url;
use super::GitError;
use crate::fetch_policy::{check_url, FetchPolicy, Fetcher};

/// Refuses `url` unless it is an http(s) or git:// URL, and, when the worker denies
/// private addresses, unless its host resolves to public addresses only. `what` names the
/// remote in the error ("git context", "submodule 'lib'").
///
/// libgit2 offers no hook into its name resolution, so this resolves the name itself
/// just before libgit2 does. That leaves open a name whose answer changes in between
/// (DNS rebinding with a short TTL), and a proxy (`http.proxy`, `HTTPS_PROXY`), which
/// resolves the name on its own. Redirects to another host are not followed while private
/// addresses are denied (`auth::redirects`).
pub(crate) fn check(policy: &FetchPolicy, what: &str, url: &str) -> Result<(), GitError> {
    check_url(url, Fetcher::Git)
        .and_then(|target| policy.check_resolved(&target))
        .map_err(|reason| GitError::Refused {
            what: format!("{what} {}", redact_url(url)),
            reason,
        })
}
