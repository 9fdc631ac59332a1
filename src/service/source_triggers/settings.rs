//! A task's source-trigger settings as `task create` and `task update` change them, and as
//! `task show` shows them: the webhook's hook ID and secret are made the first time a
//! trigger is enabled, and the secret is shown only then and when it is rotated.

use kiln_worker::protocol::ContextSource;

use super::decide::{check_globs, path_filter};
use crate::service::auth::random_bytes;
use crate::service::tasks::context_source;
use crate::service::ServiceError;
use crate::store::TaskSpec;
use crate::wire::hooks::{SourceTriggersView, TriggerSettings, HOOK_PATH_PREFIX};

fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

/// The context's branch and subdir, for a git context.
pub(super) fn git_parts(spec: &TaskSpec) -> Option<(Option<String>, Option<String>)> {
    match context_source(&spec.context).ok().flatten()? {
        ContextSource::Git {
            reference, subdir, ..
        } => Some((reference, subdir)),
        _ => None,
    }
}

/// Applies `s` to the task's triggers. Returns the webhook secret when one was made (the
/// first trigger enabled, or `rotate_webhook_secret`): the caller shows it once.
pub fn apply(
    spec: &mut TaskSpec,
    s: &TriggerSettings,
    creating: bool,
) -> Result<Option<String>, ServiceError> {
    let invalid = |m: String| Err(ServiceError::Invalid(m));
    if creating && s.rotate_webhook_secret {
        return invalid("--rotate-webhook-secret changes an existing task's secret: use it with 'kiln task update'".into());
    }
    let t = &mut spec.source_triggers;
    let set = |flag: &mut bool, given: Option<bool>| *flag = given.unwrap_or(*flag);
    set(&mut t.commit, s.commit_trigger_enabled);
    set(&mut t.pull_request, s.pull_request_trigger_enabled);
    set(&mut t.pull_request_push, s.pull_request_push);
    set(&mut t.tag, s.tag_trigger_enabled);
    if let Some(paths) = &s.trigger_paths {
        check_globs(paths.iter().map(String::as_str))
            .map_err(|m| ServiceError::Invalid(format!("--trigger-path: {m}")))?;
        t.paths = paths.clone();
    }
    if let Some(branch) = &s.trigger_branch {
        check_globs([branch.as_str()])
            .map_err(|m| ServiceError::Invalid(format!("--trigger-branch: {m}")))?;
        t.branch = (!branch.is_empty()).then(|| branch.clone());
    }
    let any_enabled = t.any_enabled();
    if !any_enabled && !s.rotate_webhook_secret {
        return Ok(None);
    }
    let Some(_) = git_parts(spec) else {
        return invalid(
            "source triggers need a git context (https://host/org/repo.git#branch): webhooks \
             say which commit to build"
                .into(),
        );
    };
    let t = &mut spec.source_triggers;
    if t.hook_id.is_none() {
        if !any_enabled {
            return invalid(
                "the task has no webhook to rotate the secret of: enable a trigger first \
                 (--commit-trigger-enabled true)"
                    .into(),
            );
        }
        t.hook_id = Some(random_hex::<16>());
    }
    let secrets = &mut spec.secrets;
    if secrets.webhook_secret.is_some() && !s.rotate_webhook_secret {
        return Ok(None);
    }
    let secret = random_hex::<32>();
    secrets.webhook_secret = Some(secret.clone());
    Ok(Some(secret))
}

/// The triggers as the API shows them, never with the secret.
pub fn view(spec: &TaskSpec) -> SourceTriggersView {
    let t = &spec.source_triggers;
    let subdir = git_parts(spec).and_then(|(_, subdir)| subdir);
    SourceTriggersView {
        commit_trigger_enabled: t.commit,
        pull_request_trigger_enabled: t.pull_request,
        pull_request_push: t.pull_request_push,
        tag_trigger_enabled: t.tag,
        trigger_paths: path_filter(t, subdir.as_deref()),
        trigger_branch: t.branch.clone(),
        webhook_path: t
            .hook_id
            .as_ref()
            .map(|id| format!("{HOOK_PATH_PREFIX}{id}")),
        webhook_secret: None,
    }
}
