//! What a git event means for a task: a run of which commit, or nothing and why. Branch
//! globs (`release/*`) and path globs (`svc/**`) are `globset` globs in which `*` stays
//! within one path segment and `**` crosses them.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::event::{EventKind, GitEvent};
use crate::service::origin::TriggerKind;
use crate::store::SourceTriggers;

/// A task's side of the decision.
pub struct Rules<'a> {
    pub triggers: &'a SourceTriggers,
    /// `--trigger-branch`, else the context's `#branch`; `None`: the repository's default
    /// branch.
    pub branch: Option<&'a str>,
    /// The context's subdir: the default path filter.
    pub subdir: Option<&'a str>,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run {
        trigger: TriggerKind,
        commit: String,
        /// `.Run.Branch`: the pushed branch, or a pull request's source branch.
        branch: Option<String>,
        /// Whether the run pushes the task's images.
        push: bool,
        /// Whether a queued run for the same branch may take this commit instead.
        coalesce: bool,
    },
    /// Nothing runs; the reason, for the delivery log.
    Skip(String),
}

fn glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob '{pattern}': {e}"))
}

/// Checks a branch glob or path globs as a task is saved, so a bad one is refused then
/// rather than never matching.
pub fn check_globs<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    patterns.into_iter().try_for_each(|p| glob(p).map(drop))
}

/// The path globs a push must touch: the task's, else everything under its context's
/// subdir, else none (every push counts).
pub fn path_filter(triggers: &SourceTriggers, subdir: Option<&str>) -> Vec<String> {
    if !triggers.paths.is_empty() {
        return triggers.paths.clone();
    }
    match subdir
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty() && *s != ".")
    {
        Some(dir) => vec![format!("{dir}/**")],
        None => Vec::new(),
    }
}

fn branch_matches(pattern: &str, branch: &str) -> bool {
    glob(pattern).is_ok_and(|g| g.compile_matcher().is_match(branch))
}

/// The branch a task builds: its own glob, else the repository's default branch.
fn task_branch<'a>(rules: &'a Rules<'_>, e: &'a GitEvent) -> Result<&'a str, String> {
    rules.branch.or(e.default_branch.as_deref()).ok_or_else(|| {
        "the task's context names no branch and the event names no default branch".to_owned()
    })
}

pub fn decide(rules: &Rules<'_>, e: &GitEvent) -> Decision {
    match decide_or_skip(rules, e) {
        Ok(run) => run,
        Err(why) => Decision::Skip(why),
    }
}

fn decide_or_skip(rules: &Rules<'_>, e: &GitEvent) -> Result<Decision, String> {
    let t = rules.triggers;
    let commit = || {
        e.commit
            .clone()
            .ok_or("the event names no commit".to_owned())
    };
    match e.kind {
        EventKind::Ping => Err("ping: the webhook works".into()),
        EventKind::Other => Err("this event never runs a task".into()),
        EventKind::Tag => {
            let tag = e.tag.as_deref().unwrap_or_default();
            if !t.tag {
                return Err(format!("tag '{tag}' pushed: the tag trigger is disabled"));
            }
            if e.deleted {
                return Err(format!("tag '{tag}' deleted"));
            }
            Ok(Decision::Run {
                trigger: TriggerKind::Commit,
                commit: commit()?,
                branch: None,
                push: true,
                coalesce: false,
            })
        }
        EventKind::Push => {
            let branch = e.branch.as_deref().unwrap_or_default();
            if !t.commit {
                return Err(format!(
                    "push to '{branch}': the commit trigger is disabled"
                ));
            }
            if e.deleted {
                return Err(format!("branch '{branch}' deleted"));
            }
            let wanted = task_branch(rules, e)?;
            if !branch_matches(wanted, branch) {
                return Err(format!(
                    "push to '{branch}', not to the task's branch '{wanted}'"
                ));
            }
            let filter = path_filter(t, rules.subdir);
            if let (false, Some(paths)) = (filter.is_empty(), &e.changed_paths) {
                if !touches(&filter, paths) {
                    return Err(format!(
                        "push to '{branch}' touches no path matching {}",
                        filter.join(", ")
                    ));
                }
            }
            Ok(Decision::Run {
                trigger: TriggerKind::Commit,
                commit: commit()?,
                branch: Some(branch.to_owned()),
                push: true,
                coalesce: true,
            })
        }
        EventKind::PullRequest => {
            let action = e.action.as_deref().unwrap_or_default();
            if !t.pull_request {
                return Err("pull request: the pull-request trigger is disabled".into());
            }
            if !matches!(
                action,
                "opened" | "reopened" | "synchronize" | "ready_for_review"
            ) {
                return Err(format!(
                    "pull request {action}: only opened, reopened and new commits run"
                ));
            }
            if e.draft {
                return Err("draft pull request".into());
            }
            let target = e.target_branch.as_deref().unwrap_or_default();
            let wanted = task_branch(rules, e)?;
            if !branch_matches(wanted, target) {
                return Err(format!(
                    "pull request into '{target}', not into the task's branch '{wanted}'"
                ));
            }
            Ok(Decision::Run {
                trigger: TriggerKind::PullRequest,
                commit: commit()?,
                branch: e.branch.clone(),
                push: t.pull_request_push,
                coalesce: false,
            })
        }
    }
}

/// Whether any of `paths` matches any of `globs`.
fn touches(globs: &[String], paths: &[String]) -> bool {
    let mut set = GlobSetBuilder::new();
    for g in globs.iter().filter_map(|g| glob(g).ok()) {
        set.add(g);
    }
    let set: GlobSet = match set.build() {
        Ok(set) => set,
        // Globs were checked when the task was saved; one that fails now filters nothing.
        Err(_) => return true,
    };
    paths.iter().any(|p| set.is_match(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(branch: &str, paths: Option<&[&str]>) -> GitEvent {
        GitEvent {
            kind: EventKind::Push,
            branch: Some(branch.into()),
            tag: None,
            commit: Some("abc123".into()),
            deleted: false,
            changed_paths: paths.map(|p| p.iter().map(|s| s.to_string()).collect()),
            action: None,
            target_branch: None,
            number: None,
            draft: false,
            default_branch: Some("main".into()),
        }
    }

    fn pr(action: &str, target: &str) -> GitEvent {
        GitEvent {
            kind: EventKind::PullRequest,
            branch: Some("feature".into()),
            action: Some(action.into()),
            target_branch: Some(target.into()),
            ..push("x", None)
        }
    }

    fn all_on() -> SourceTriggers {
        SourceTriggers {
            commit: true,
            pull_request: true,
            tag: true,
            ..SourceTriggers::default()
        }
    }

    fn rules<'a>(
        t: &'a SourceTriggers,
        branch: Option<&'a str>,
        subdir: Option<&'a str>,
    ) -> Rules<'a> {
        Rules {
            triggers: t,
            branch,
            subdir,
        }
    }

    fn skipped(d: Decision) -> String {
        match d {
            Decision::Skip(why) => why,
            run => panic!("expected a skip, got {run:?}"),
        }
    }

    #[test]
    fn a_push_to_the_task_s_branch_runs_its_head() {
        let t = all_on();
        let d = decide(&rules(&t, Some("main"), None), &push("main", Some(&["a"])));
        assert_eq!(
            d,
            Decision::Run {
                trigger: TriggerKind::Commit,
                commit: "abc123".into(),
                branch: Some("main".into()),
                push: true,
                coalesce: true,
            }
        );
        // No branch in the context: the repository's default branch.
        assert!(matches!(
            decide(&rules(&t, None, None), &push("main", None)),
            Decision::Run { .. }
        ));
        assert!(skipped(decide(&rules(&t, None, None), &push("dev", None))).contains("'main'"));
    }

    #[test]
    fn branch_globs_stay_within_a_segment() {
        let t = all_on();
        let r = rules(&t, Some("release/*"), None);
        assert!(matches!(
            decide(&r, &push("release/1.2", None)),
            Decision::Run { .. }
        ));
        assert!(skipped(decide(&r, &push("release/1/hotfix", None)))
            .contains("not to the task's branch"));
        assert!(skipped(decide(&r, &push("main", None))).contains("'release/*'"));
    }

    #[test]
    fn deletions_disabled_triggers_and_tags_run_nothing() {
        let mut t = all_on();
        let mut gone = push("main", None);
        gone.deleted = true;
        gone.commit = None;
        assert_eq!(
            skipped(decide(&rules(&t, Some("main"), None), &gone)),
            "branch 'main' deleted"
        );

        let tag = GitEvent {
            kind: EventKind::Tag,
            tag: Some("v1".into()),
            branch: None,
            ..push("x", None)
        };
        assert!(matches!(
            decide(&rules(&t, Some("main"), None), &tag),
            Decision::Run {
                coalesce: false,
                ..
            }
        ));
        t.tag = false;
        assert!(skipped(decide(&rules(&t, Some("main"), None), &tag))
            .contains("tag trigger is disabled"));
        t.commit = false;
        assert!(
            skipped(decide(&rules(&t, Some("main"), None), &push("main", None)))
                .contains("commit trigger is disabled")
        );
    }

    #[test]
    fn a_push_must_touch_the_path_filter_or_the_context_s_subdir() {
        let mut t = all_on();
        let r = rules(&t, Some("main"), Some("svc"));
        assert!(matches!(
            decide(&r, &push("main", Some(&["svc/a/b.go"]))),
            Decision::Run { .. }
        ));
        assert!(skipped(decide(&r, &push("main", Some(&["docs/x.md"])))).contains("svc/**"));
        // Paths the payload does not list cannot rule a push out.
        assert!(matches!(
            decide(&r, &push("main", None)),
            Decision::Run { .. }
        ));

        t.paths = vec!["docs/*.md".into()];
        let r = rules(&t, Some("main"), Some("svc"));
        assert!(matches!(
            decide(&r, &push("main", Some(&["docs/x.md"]))),
            Decision::Run { .. }
        ));
        assert!(skipped(decide(&r, &push("main", Some(&["docs/a/x.md"])))).contains("docs/*.md"));
        assert_eq!(
            path_filter(&SourceTriggers::default(), Some("./")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn pull_requests_run_their_head_without_pushing_unless_asked() {
        let mut t = all_on();
        let d = decide(&rules(&t, Some("main"), None), &pr("opened", "main"));
        assert_eq!(
            d,
            Decision::Run {
                trigger: TriggerKind::PullRequest,
                commit: "abc123".into(),
                branch: Some("feature".into()),
                push: false,
                coalesce: false,
            }
        );
        t.pull_request_push = true;
        assert!(matches!(
            decide(&rules(&t, Some("main"), None), &pr("synchronize", "main")),
            Decision::Run { push: true, .. }
        ));
        assert!(skipped(decide(
            &rules(&t, Some("main"), None),
            &pr("closed", "main")
        ))
        .contains("closed"));
        assert!(
            skipped(decide(&rules(&t, Some("main"), None), &pr("opened", "dev")))
                .contains("into 'dev'")
        );
        t.pull_request = false;
        assert!(skipped(decide(
            &rules(&t, Some("main"), None),
            &pr("opened", "main")
        ))
        .contains("disabled"));
    }

    #[test]
    fn bad_globs_are_refused_when_saved() {
        assert!(check_globs(["svc/**", "release/*"]).is_ok());
        assert!(check_globs(["svc/[a"]).unwrap_err().contains("svc/[a"));
    }
}
