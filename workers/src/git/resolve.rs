//! Deciding what a reference names, from the refs the remote advertises, before anything
//! is downloaded: knowing the exact ref is what makes a depth-1 fetch possible.

use git2::Oid;

/// One ref the remote advertises. Annotated tags appear twice: `refs/tags/v1` with the tag
/// object and `refs/tags/v1^{}` with the commit it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteRef {
    pub name: String,
    pub oid: Oid,
}

/// What a reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A ref the remote advertises, fetched by name. `oid` is what it points at.
    Ref {
        name: String,
        oid: Oid,
        /// The branch name, when the ref is a branch.
        branch: Option<String>,
    },
    /// A commit SHA, full or abbreviated and lowercase, that no advertised ref points at.
    Commit(String),
}

const PEELED_SUFFIX: &str = "^{}";
const BRANCH_PREFIX: &str = "refs/heads/";
/// The shortest abbreviated SHA libgit2 resolves.
const MIN_SHA_LEN: usize = 4;
const FULL_SHA_LEN: usize = 40;

/// Resolves `reference` against the advertised refs, as git does: a branch, then a tag,
/// then a full ref name (`refs/...`, or `pull/1/head` for `refs/pull/1/head`), then a
/// commit SHA. `None` as the reference means the remote's default branch. `None` as the
/// result means nothing matches.
pub(crate) fn resolve(
    refs: &[RemoteRef],
    default_branch: Option<&str>,
    reference: Option<&str>,
) -> Option<Target> {
    let Some(reference) = reference else {
        return default_branch.and_then(|name| find(refs, name));
    };
    let candidates = [
        format!("{BRANCH_PREFIX}{reference}"),
        format!("refs/tags/{reference}"),
        reference.to_string(),
        format!("refs/{reference}"),
    ];
    candidates
        .iter()
        .filter(|name| name.starts_with("refs/"))
        .find_map(|name| find(refs, name))
        .or_else(|| resolve_sha(refs, reference))
}

fn find(refs: &[RemoteRef], name: &str) -> Option<Target> {
    refs.iter().find(|r| r.name == name).map(|r| Target::Ref {
        name: r.name.clone(),
        oid: r.oid,
        branch: r.name.strip_prefix(BRANCH_PREFIX).map(str::to_string),
    })
}

/// A SHA that some ref points at is fetched through that ref, so it can be shallow even
/// when the server refuses requests for bare commits.
fn resolve_sha(refs: &[RemoteRef], reference: &str) -> Option<Target> {
    let is_sha = (MIN_SHA_LEN..=FULL_SHA_LEN).contains(&reference.len())
        && reference.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_sha {
        return None;
    }
    let sha = reference.to_ascii_lowercase();
    let mut tips = refs
        .iter()
        .filter(|r| r.name != "HEAD" && r.oid.to_string().starts_with(&sha));
    let Some(tip) = tips.next() else {
        return Some(Target::Commit(sha));
    };
    if tips.any(|other| other.oid != tip.oid) {
        // Ambiguous among the tips: let the full fetch decide (and report it).
        return Some(Target::Commit(sha));
    }
    Some(Target::Ref {
        name: tip
            .name
            .strip_suffix(PEELED_SUFFIX)
            .unwrap_or(&tip.name)
            .to_string(),
        oid: tip.oid,
        branch: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "1111111111111111111111111111111111111111";
    const DEV: &str = "2222222222222222222222222222222222222222";
    const TAG_OBJECT: &str = "3333333333333333333333333333333333333333";
    const TAGGED: &str = "4444444444444444444444444444444444444444";

    fn refs() -> Vec<RemoteRef> {
        [
            ("HEAD", MAIN),
            ("refs/heads/main", MAIN),
            ("refs/heads/dev", DEV),
            ("refs/heads/v1", DEV),
            ("refs/tags/v1", TAG_OBJECT),
            ("refs/tags/v1^{}", TAGGED),
            ("refs/pull/7/head", DEV),
        ]
        .into_iter()
        .map(|(name, oid)| RemoteRef {
            name: name.into(),
            oid: Oid::from_str(oid).unwrap(),
        })
        .collect()
    }

    fn target(name: &str, oid: &str, branch: Option<&str>) -> Option<Target> {
        Some(Target::Ref {
            name: name.into(),
            oid: Oid::from_str(oid).unwrap(),
            branch: branch.map(Into::into),
        })
    }

    #[test]
    fn default_branch() {
        let refs = refs();
        assert_eq!(
            resolve(&refs, Some("refs/heads/main"), None),
            target("refs/heads/main", MAIN, Some("main"))
        );
        assert_eq!(resolve(&refs, None, None), None);
    }

    #[test]
    fn branches_win_over_tags_then_full_names() {
        let refs = refs();
        let r = |s| resolve(&refs, Some("refs/heads/main"), Some(s));
        assert_eq!(r("dev"), target("refs/heads/dev", DEV, Some("dev")));
        assert_eq!(r("v1"), target("refs/heads/v1", DEV, Some("v1")));
        assert_eq!(r("refs/tags/v1"), target("refs/tags/v1", TAG_OBJECT, None));
        assert_eq!(r("pull/7/head"), target("refs/pull/7/head", DEV, None));
        assert_eq!(r("refs/pull/7/head"), target("refs/pull/7/head", DEV, None));
        assert_eq!(r("nope"), None);
    }

    #[test]
    fn shas_use_a_ref_that_points_at_them() {
        let refs = refs();
        let r = |s| resolve(&refs, None, Some(s));
        assert_eq!(r(MAIN), target("refs/heads/main", MAIN, None));
        assert_eq!(r("4444444"), target("refs/tags/v1", TAGGED, None));
        assert_eq!(
            r("ABCDEF0"),
            Some(Target::Commit("abcdef0".into())),
            "not a tip: fetched as a commit"
        );
        assert_eq!(r("abc"), None, "too short to be a SHA");
    }
}
