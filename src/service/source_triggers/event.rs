//! A delivery's payload read into one `GitEvent`, whichever host sent it. GitHub, Gitea and
//! Forgejo share GitHub's shapes; GitLab has its own.

use serde::Deserialize;

use super::provider::Provider;

/// What happened in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Commits pushed to a branch (or a branch created or deleted).
    Push,
    /// A tag pushed or deleted.
    Tag,
    PullRequest,
    /// GitHub's `ping`, sent when a webhook is added.
    Ping,
    /// Anything else the host may send (issues, releases...): never runs anything.
    Other,
}

/// A delivery, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEvent {
    pub kind: EventKind,
    /// A push's branch, or a pull request's source branch.
    pub branch: Option<String>,
    /// A tag push's tag.
    pub tag: Option<String>,
    /// The commit to build: a push's `after`, a pull request's head.
    pub commit: Option<String>,
    /// A branch or tag deleted.
    pub deleted: bool,
    /// The paths a push's commits touched; `None` when the payload does not list them all.
    pub changed_paths: Option<Vec<String>>,
    /// A pull request's action, as GitHub names them: `opened`, `reopened`, `synchronize`...
    pub action: Option<String>,
    /// A pull request's target branch.
    pub target_branch: Option<String>,
    pub number: Option<u64>,
    pub draft: bool,
    /// The repository's default branch, when the payload names it.
    pub default_branch: Option<String>,
}

impl GitEvent {
    fn of(kind: EventKind) -> GitEvent {
        GitEvent {
            kind,
            branch: None,
            tag: None,
            commit: None,
            deleted: false,
            changed_paths: None,
            action: None,
            target_branch: None,
            number: None,
            draft: false,
            default_branch: None,
        }
    }
}

/// Reads a payload that has already passed its signature check. `Err` says what is wrong.
pub fn parse(provider: Provider, event: &str, body: &[u8]) -> Result<GitEvent, String> {
    let event = event.to_ascii_lowercase();
    let kind = match (provider.github_shaped(), event.as_str()) {
        (true, "push") | (false, "push hook" | "tag push hook") => EventKind::Push,
        (true, "pull_request") | (false, "merge request hook") => EventKind::PullRequest,
        (true, "ping") => EventKind::Ping,
        _ => EventKind::Other,
    };
    // Even an event that runs nothing must be JSON: a host sends nothing else.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let read =
        |e: serde_json::Error| format!("the {event} payload is not what {provider:?} sends: {e}");
    match (kind, provider.github_shaped()) {
        (EventKind::Push, true) => push(
            serde_json::from_value::<GithubPush>(value)
                .map_err(read)?
                .into(),
        ),
        (EventKind::Push, false) => push(
            serde_json::from_value::<GitlabPush>(value)
                .map_err(read)?
                .into(),
        ),
        (EventKind::PullRequest, true) => Ok(serde_json::from_value::<GithubPullRequest>(value)
            .map_err(read)?
            .into()),
        (EventKind::PullRequest, false) => Ok(serde_json::from_value::<GitlabMergeRequest>(value)
            .map_err(read)?
            .into()),
        (kind, _) => Ok(GitEvent::of(kind)),
    }
}

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// What every push says, whoever sent it.
struct Push {
    git_ref: String,
    after: String,
    deleted: bool,
    changed_paths: Option<Vec<String>>,
    default_branch: Option<String>,
}

fn push(p: Push) -> Result<GitEvent, String> {
    let deleted = p.deleted || p.after.is_empty() || p.after == ZERO_SHA;
    let mut e = if let Some(tag) = p.git_ref.strip_prefix("refs/tags/") {
        GitEvent {
            tag: Some(tag.to_owned()),
            ..GitEvent::of(EventKind::Tag)
        }
    } else if let Some(branch) = p.git_ref.strip_prefix("refs/heads/") {
        GitEvent {
            branch: Some(branch.to_owned()),
            ..GitEvent::of(EventKind::Push)
        }
    } else {
        return Err(format!(
            "a push to '{}', which is neither a branch nor a tag",
            p.git_ref
        ));
    };
    e.deleted = deleted;
    e.commit = (!deleted).then_some(p.after);
    e.changed_paths = p.changed_paths;
    e.default_branch = p.default_branch;
    Ok(e)
}

#[derive(Deserialize)]
struct Commit {
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
}

/// Every path the commits touched; `None` when there are none to tell (a new branch at an
/// old commit) or the host cut the list short.
fn changed_paths(commits: Vec<Commit>, complete: bool) -> Option<Vec<String>> {
    if commits.is_empty() || !complete {
        return None;
    }
    let mut paths: Vec<String> = commits
        .into_iter()
        .flat_map(|c| c.added.into_iter().chain(c.removed).chain(c.modified))
        .collect();
    paths.sort();
    paths.dedup();
    Some(paths)
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct GithubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    commits: Option<Vec<Commit>>,
    #[serde(default)]
    repository: Option<Repository>,
}

impl From<GithubPush> for Push {
    fn from(p: GithubPush) -> Push {
        Push {
            git_ref: p.git_ref,
            after: p.after,
            deleted: p.deleted,
            // GitHub lists up to 2,048 commits: a push of more is rare enough to build.
            changed_paths: changed_paths(p.commits.unwrap_or_default(), true),
            default_branch: p.repository.and_then(|r| r.default_branch),
        }
    }
}

#[derive(Deserialize)]
struct GitlabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    commits: Vec<Commit>,
    #[serde(default)]
    total_commits_count: usize,
    #[serde(default)]
    project: Option<Repository>,
}

impl From<GitlabPush> for Push {
    fn from(p: GitlabPush) -> Push {
        // GitLab lists at most the 20 newest commits of a push.
        let complete = p.total_commits_count <= p.commits.len();
        Push {
            git_ref: p.git_ref,
            after: p.after,
            deleted: false,
            changed_paths: changed_paths(p.commits, complete),
            default_branch: p.project.and_then(|r| r.default_branch),
        }
    }
}

#[derive(Deserialize)]
struct GithubPullRequest {
    action: String,
    #[serde(default)]
    number: Option<u64>,
    pull_request: GithubPull,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct GithubPull {
    head: GithubRef,
    base: GithubRef,
    #[serde(default)]
    draft: bool,
}

#[derive(Deserialize)]
struct GithubRef {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
}

impl From<GithubPullRequest> for GitEvent {
    fn from(p: GithubPullRequest) -> GitEvent {
        let action = match p.action.as_str() {
            // Gitea and Forgejo's name for GitHub's `synchronize`.
            "synchronized" => "synchronize".to_owned(),
            _ => p.action,
        };
        GitEvent {
            branch: Some(p.pull_request.head.git_ref),
            commit: Some(p.pull_request.head.sha),
            action: Some(action),
            target_branch: Some(p.pull_request.base.git_ref),
            number: p.number,
            draft: p.pull_request.draft,
            default_branch: p.repository.and_then(|r| r.default_branch),
            ..GitEvent::of(EventKind::PullRequest)
        }
    }
}

#[derive(Deserialize)]
struct GitlabMergeRequest {
    object_attributes: GitlabMergeAttributes,
    #[serde(default)]
    project: Option<Repository>,
}

#[derive(Deserialize)]
struct GitlabMergeAttributes {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    iid: Option<u64>,
    source_branch: String,
    target_branch: String,
    last_commit: GitlabCommitId,
    /// Present on `update` only when the update pushed commits.
    #[serde(default)]
    oldrev: Option<String>,
    #[serde(default)]
    draft: bool,
}

#[derive(Deserialize)]
struct GitlabCommitId {
    id: String,
}

impl From<GitlabMergeRequest> for GitEvent {
    fn from(m: GitlabMergeRequest) -> GitEvent {
        let a = m.object_attributes;
        // GitLab's actions under GitHub's names: an update that pushed commits is a
        // `synchronize`; one that only edited the request is not.
        let action = match (a.action.as_deref().unwrap_or_default(), &a.oldrev) {
            ("open", _) => "opened".to_owned(),
            ("reopen", _) => "reopened".to_owned(),
            ("update", Some(_)) => "synchronize".to_owned(),
            ("update", None) => "edited".to_owned(),
            (other, _) => other.to_owned(),
        };
        GitEvent {
            branch: Some(a.source_branch),
            commit: Some(a.last_commit.id),
            action: Some(action),
            target_branch: Some(a.target_branch),
            number: a.iid,
            draft: a.draft,
            default_branch: m.project.and_then(|r| r.default_branch),
            ..GitEvent::of(EventKind::PullRequest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/webhooks/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_github_push_names_its_branch_head_and_paths() {
        let e = parse(Provider::GitHub, "push", &fixture("github_push")).unwrap();
        assert_eq!(e.kind, EventKind::Push);
        assert_eq!(e.branch.as_deref(), Some("main"));
        assert_eq!(
            e.commit.as_deref(),
            Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e")
        );
        assert!(!e.deleted);
        assert_eq!(
            e.changed_paths,
            Some(vec!["README.md".to_owned(), "svc/main.go".to_owned()])
        );
        assert_eq!(e.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn a_deleted_tag_is_a_deleted_tag_event_with_no_commit() {
        let e = parse(
            Provider::GitHub,
            "push",
            &fixture("github_push_tag_deleted"),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Tag);
        assert_eq!(e.tag.as_deref(), Some("simple-tag"));
        assert!(e.deleted);
        assert_eq!(e.commit, None);
        assert_eq!(e.changed_paths, None);
    }

    #[test]
    fn a_github_pull_request_names_its_head_and_target() {
        let e = parse(
            Provider::GitHub,
            "pull_request",
            &fixture("github_pull_request"),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::PullRequest);
        assert_eq!(e.action.as_deref(), Some("opened"));
        assert_eq!(e.branch.as_deref(), Some("changes"));
        assert_eq!(
            e.commit.as_deref(),
            Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821")
        );
        assert_eq!(e.target_branch.as_deref(), Some("master"));
        assert_eq!(e.number, Some(2));
    }

    #[test]
    fn ping_and_unknown_events_run_nothing_but_must_be_json() {
        let e = parse(Provider::GitHub, "ping", &fixture("github_ping")).unwrap();
        assert_eq!(e.kind, EventKind::Ping);
        let e = parse(Provider::GitHub, "issues", b"{}").unwrap();
        assert_eq!(e.kind, EventKind::Other);
        assert!(parse(Provider::GitHub, "ping", b"{not json").is_err());
        assert!(parse(Provider::GitHub, "push", br#"{"after": "abc"}"#).is_err());
    }

    #[test]
    fn a_gitlab_push_with_more_commits_than_listed_has_unknown_paths() {
        let e = parse(Provider::GitLab, "Push Hook", &fixture("gitlab_push")).unwrap();
        assert_eq!(e.kind, EventKind::Push);
        assert_eq!(e.branch.as_deref(), Some("master"));
        assert_eq!(
            e.commit.as_deref(),
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
        );
        // total_commits_count is 4, two are listed: what the others touched is unknown.
        assert_eq!(e.changed_paths, None);
        assert_eq!(e.default_branch.as_deref(), Some("master"));
    }

    #[test]
    fn a_gitlab_tag_push_is_a_tag() {
        let e = parse(
            Provider::GitLab,
            "Tag Push Hook",
            &fixture("gitlab_tag_push"),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Tag);
        assert_eq!(e.tag.as_deref(), Some("v1.0.0"));
        assert!(!e.deleted);
    }

    #[test]
    fn a_gitlab_merge_request_reads_as_a_pull_request() {
        let body = fixture("gitlab_merge_request");
        let e = parse(Provider::GitLab, "Merge Request Hook", &body).unwrap();
        assert_eq!(e.kind, EventKind::PullRequest);
        assert_eq!(e.action.as_deref(), Some("opened"));
        assert_eq!(e.branch.as_deref(), Some("ms-viewport"));
        assert_eq!(e.target_branch.as_deref(), Some("master"));
        assert_eq!(
            e.commit.as_deref(),
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
        );

        let mut update: serde_json::Value = serde_json::from_slice(&body).unwrap();
        update["object_attributes"]["action"] = "update".into();
        let e = parse(
            Provider::GitLab,
            "Merge Request Hook",
            update.to_string().as_bytes(),
        );
        assert_eq!(e.unwrap().action.as_deref(), Some("edited"));
        update["object_attributes"]["oldrev"] = "95790bf891e76fee5e1747ab589903a6a1f80f22".into();
        let e = parse(
            Provider::GitLab,
            "Merge Request Hook",
            update.to_string().as_bytes(),
        );
        assert_eq!(e.unwrap().action.as_deref(), Some("synchronize"));
    }

    #[test]
    fn gitea_s_synchronized_is_github_s_synchronize() {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("github_pull_request")).unwrap();
        body["action"] = "synchronized".into();
        let e = parse(Provider::Gitea, "pull_request", body.to_string().as_bytes()).unwrap();
        assert_eq!(e.action.as_deref(), Some("synchronize"));
    }
}
