//! What a run builds: its context, its build spec, and the images it produced.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, ImageRef, Platform, PlatformSet};

/// Where a run's build context comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum ContextSource {
    /// An archive uploaded to the server, stored by digest.
    Upload { digest: Digest },
    /// A git repository, cloned by the worker: `reference` is a branch, tag, commit SHA or
    /// `pull/<n>/head` (default: the remote's default branch); `subdir` the context folder in it.
    Git {
        url: String,
        #[serde(default)]
        reference: Option<String>,
        #[serde(default)]
        subdir: Option<String>,
    },
    /// A tar or tar.gz archive the worker downloads.
    Tarball { url: String },
}

impl ContextSource {
    /// Points a git source at `commit` (its folder kept), so every fetch of it gets exactly
    /// that commit; `false`, and nothing changed, for sources that have no commits.
    pub fn pin(&mut self, commit: &str) -> bool {
        match self {
            ContextSource::Git { reference, .. } => {
                *reference = Some(commit.to_string());
                true
            }
            _ => false,
        }
    }

    /// The source as a user would write it, with any credentials in URLs masked.
    pub fn describe(&self) -> String {
        match self {
            ContextSource::Upload { digest } => format!("upload {digest}"),
            ContextSource::Git {
                url,
                reference,
                subdir,
            } => {
                let mut s = redact_url(url);
                if reference.is_some() || subdir.is_some() {
                    s.push('#');
                    s.push_str(reference.as_deref().unwrap_or(""));
                    if let Some(sub) = subdir {
                        s.push(':');
                        s.push_str(sub);
                    }
                }
                s
            }
            ContextSource::Tarball { url } => redact_url(url),
        }
    }
}

/// `https://user:pass@host/x` → `https://****@host/x`: URLs may carry credentials. The
/// scp-like `user@host:path` is covered too, and a query string is masked, since presigned
/// download URLs carry their signature there.
pub fn redact_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?****"),
        None => (url, ""),
    };
    let (prefix, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The userinfo ends at the last '@' before the path starts.
    let authority_end = if prefix.is_empty() {
        rest.find([':', '/']).unwrap_or(rest.len())
    } else {
        rest.find(['/', '#']).unwrap_or(rest.len())
    };
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}****{}{query}", &rest[at..]),
        None => format!("{url}{query}"),
    }
}

/// Everything a worker needs to build and push one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    pub context: ContextSource,
    /// The Dockerfile's path inside the context archive.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Several platforms make one image index under each tag.
    pub platforms: PlatformSet,
    pub no_cache: bool,
    /// Rendered, fully qualified image references; pushed when `push` is set.
    pub images: Vec<ImageRef>,
    pub push: bool,
}

/// What the server measured when a context was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextStats {
    pub size: u64,
    pub files: u64,
    pub upload_ms: u64,
}

/// One pushed tag and the manifest digest the registry stored for it: an image index when
/// the run built several platforms, with each platform's own manifest in `platforms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputImage {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDigest {
    pub platform: Platform,
    pub digest: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_descriptions() {
        assert_eq!(
            redact_url("https://u:tok@git.example.com/a.git"),
            "https://****@git.example.com/a.git"
        );
        assert_eq!(redact_url("https://host/a@b.git"), "https://host/a@b.git");
        assert_eq!(
            redact_url("https://bucket.example.com/ctx.tar.gz?X-Amz-Signature=abc"),
            "https://bucket.example.com/ctx.tar.gz?****"
        );
        let git = ContextSource::Git {
            url: "https://tok@host/r.git".into(),
            reference: Some("main".into()),
            subdir: Some("app".into()),
        };
        assert_eq!(git.describe(), "https://****@host/r.git#main:app");
    }
}
