//! Saved tasks: create, list, show, update and delete, and the rules a task must meet.
//! Running a task and listing its runs is in `task_runs.rs`.
//!
//! Who may do what: owners and tokens with the tasks role manage tasks; any token that may
//! read sees them; running one needs push rights on what it pushes, as `kiln build` does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_worker::git::{looks_like_git, GitSource};
use kiln_worker::protocol::{redact_url, ContextSource, Secret};
use tokio::sync::Notify;

use super::auth::AuthService;
use super::runs::RunService;
use super::source_triggers::settings as source_triggers;
use super::task_values::{render_values, Values};
use super::triggers::base_images::shown_base_image;
use super::{to_time, ServiceError};
use crate::access::{Action, Principal};
use crate::store::{Store, TaskRow, TaskSpec, TaskWrite};
use crate::wire::base_images::BaseImageTrigger;
use crate::wire::tasks::{CreateTask, Task, TaskKind, TaskList, TaskStatus, UpdateTask, MASK};
use crate::wire::CreateRun;

/// The context of a task that runs one command and needs no files.
pub const NO_CONTEXT: &str = "/dev/null";

pub struct TaskService {
    pub(super) store: Store,
    pub(super) runs: Arc<RunService>,
    /// Resolves the token a task's triggered runs act as.
    pub(super) auth: Arc<AuthService>,
    // Timers (issue 11).
    /// Wakes the timer scheduler when timers change: a wake-up, not state.
    pub(super) timers_changed: Arc<Notify>,
}

impl TaskService {
    pub fn new(store: Store, runs: Arc<RunService>, auth: Arc<AuthService>) -> TaskService {
        TaskService {
            store,
            runs,
            auth,
            timers_changed: Arc::default(),
        }
    }

    /// What the timer scheduler waits on besides the clock.
    pub fn timer_wakeup(&self) -> Arc<Notify> {
        self.timers_changed.clone()
    }

    /// Whether `who` may create, change and delete tasks: the API asks before it reads a body.
    pub fn may_manage(&self, who: &Principal) -> Result<(), ServiceError> {
        Ok(who.require_tasks()?)
    }

    pub async fn create(&self, req: CreateTask, who: &Principal) -> Result<Task, ServiceError> {
        self.may_manage(who)?;
        let mut spec = TaskSpec {
            context: req.context,
            file: req.file,
            cmd: req.cmd,
            images: req.images,
            args: req.args,
            target: req.target,
            push: !req.no_push,
            no_cache: req.no_cache,
            platform: req.platform.unwrap_or_default(),
            values: req.values,
            values_file: req.values_file,
            timeout_secs: req
                .timeout_secs
                .unwrap_or(self.runs.settings.default_timeout_secs),
            secrets: Default::default(),
            source_triggers: Default::default(),
            base_image_trigger: BaseImageTrigger::default()
                .with(req.base_image_trigger_enabled, req.base_image_trigger_type),
        };
        spec.secrets.secret_args = expose(req.secret_args);
        spec.secrets.secret_values = expose(req.secret_values);
        spec.secrets.git_token = req.git_access_token.map(|t| t.expose().to_string());
        let webhook_secret = source_triggers::apply(&mut spec, &req.source_triggers, true)?;
        self.check(&mut spec)?;
        let timers = self.schedule_timers(&req.schedules)?;
        let by = who.subject().map(|s| s.describe());
        let write = TaskWrite {
            status: req.status.as_str(),
            spec: &spec,
            now: self.runs.now_ms(),
            by: by.as_deref(),
            token_id: who.token_id(),
            timers: Some(&timers),
        };
        match self.store.insert_task(req.name.as_str(), write).await? {
            Some(row) => {
                tracing::info!(task = %row.name, "task created");
                self.timers_written();
                let id = row.id;
                self.with_timers(id, with_secret(view(row), webhook_secret)?)
                    .await
            }
            None => Err(ServiceError::Conflict(format!(
                "task '{}' already exists: change it with 'kiln task update' or pick another name",
                req.name
            ))),
        }
    }

    pub async fn list(&self, who: &Principal) -> Result<TaskList, ServiceError> {
        who.require_any(Action::Pull)?;
        let tasks = self.store.list_tasks().await?;
        Ok(TaskList {
            tasks: tasks.into_iter().map(view).collect::<Result<_, _>>()?,
        })
    }

    pub async fn show(&self, name: &str, who: &Principal) -> Result<Task, ServiceError> {
        who.require_any(Action::Pull)?;
        let row = self.row(name).await?;
        let base_images = self.store.task_base_images(row.id).await?;
        let mut task = self.with_timers(row.id, view(row)?).await?;
        task.base_images = base_images.into_iter().map(shown_base_image).collect();
        Ok(task)
    }

    /// Changes only what `req` gives; see [`UpdateTask`].
    pub async fn update(
        &self,
        name: &str,
        req: UpdateTask,
        who: &Principal,
    ) -> Result<Task, ServiceError> {
        self.may_manage(who)?;
        let task = self.row(name).await?;
        let mut spec = task.spec.clone();
        apply(&mut spec, req.clone())?;
        let webhook_secret = source_triggers::apply(&mut spec, &req.source_triggers, false)?;
        self.check(&mut spec)?;
        let timers = req
            .schedules
            .as_deref()
            .map(|s| self.schedule_timers(s))
            .transpose()?;
        let status = match req.status {
            Some(s) => s.as_str(),
            None => &task.status,
        };
        let by = who.subject().map(|s| s.describe());
        let write = TaskWrite {
            status,
            spec: &spec,
            now: self.runs.now_ms(),
            by: by.as_deref(),
            token_id: None,
            timers: timers.as_deref(),
        };
        let row = self
            .store
            .update_task(task.id, write)
            .await?
            .ok_or_else(|| not_found(name))?;
        tracing::info!(task = %row.name, "task updated");
        self.timers_written();
        let id = row.id;
        self.with_timers(id, with_secret(view(row), webhook_secret)?)
            .await
    }

    pub async fn delete(&self, name: &str, who: &Principal) -> Result<(), ServiceError> {
        self.may_manage(who)?;
        let task = self.row(name).await?;
        if !self.store.delete_task(task.id).await? {
            return Err(not_found(name));
        }
        tracing::info!(task = %task.name, "task deleted");
        Ok(())
    }

    pub(super) async fn row(&self, name: &str) -> Result<TaskRow, ServiceError> {
        self.store
            .get_task(name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// The rules of a whole task, after a create or an update: one of a Dockerfile, a task
    /// file or a command; a context that parses and that workers may fetch; build flags only
    /// for builds; a values file that parses; and everything a run of it would be refused for
    /// that does not depend on values given at run time.
    fn check(&self, spec: &mut TaskSpec) -> Result<(), ServiceError> {
        let invalid = |m: &str| Err(ServiceError::Invalid(m.to_string()));
        let source = context_source(&spec.context)?;
        if spec.cmd.is_some() && spec.file.is_some() {
            return invalid("--cmd and --file cannot go together: a task runs one or the other");
        }
        if spec.cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return invalid("--cmd needs an image to run, e.g. --cmd 'busybox echo hi'");
        }
        if spec.cmd.is_none() && source.is_none() {
            return invalid("a task with the /dev/null context runs a command: give --cmd");
        }
        if spec.cmd.is_none() && spec.file.is_none() {
            spec.file = Some("Dockerfile".into());
        }
        let kind = kind_of(spec);
        let build_only = !spec.images.is_empty()
            || !spec.args.is_empty()
            || !spec.secrets.secret_args.is_empty()
            || spec.target.is_some()
            || spec.no_cache;
        if kind != TaskKind::Build && build_only {
            return invalid(
                "-t/--image, --arg, --secret-arg, --target and --no-cache only go with a \
                 Dockerfile (a build task)",
            );
        }
        let values = values_of(spec, &BTreeMap::new())?;
        // Values may still be given when the task runs: check the names with a stand-in.
        let images = match kind {
            TaskKind::Build => spec
                .images
                .iter()
                .map(|t| render_values(t, &values, Some("x")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServiceError::Invalid)?,
            _ => Vec::new(),
        };
        let run = CreateRun {
            context: match source {
                Some(source) => source,
                None if spec.secrets.git_token.is_some() => {
                    return invalid("a git access token only goes with a git context")
                }
                // Nothing to fetch: check the rest against a stand-in.
                None => ContextSource::Tarball {
                    url: "https://example.com/c.tar.gz".into(),
                },
            },
            dockerfile: spec.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            images,
            build_args: build_args(spec),
            target: spec.target.clone(),
            platform: Some(spec.platform.clone()),
            push: spec.push,
            no_cache: spec.no_cache,
            timeout_secs: Some(spec.timeout_secs),
            git_access_token: spec.secrets.git_token.clone().map(Secret::new),
            queue_timeout_secs: None,
        };
        self.runs.check_request(&run)
    }
}

pub(super) fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("task '{name}' not found"))
}

/// What a task runs: a command, a task file (`.yaml`/`.yml`) or a Dockerfile.
pub(super) fn kind_of(spec: &TaskSpec) -> TaskKind {
    let file = spec
        .file
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if spec.cmd.is_some() {
        TaskKind::Cmd
    } else if file.ends_with(".yaml") || file.ends_with(".yml") {
        TaskKind::Steps
    } else {
        TaskKind::Build
    }
}

/// A task's context as a run's: `None` for `/dev/null`.
pub(super) fn context_source(context: &str) -> Result<Option<ContextSource>, ServiceError> {
    if context == NO_CONTEXT {
        return Ok(None);
    }
    if looks_like_git(context) {
        let git = GitSource::parse(context)
            .map_err(|e| ServiceError::Invalid(format!("invalid git context: {e}")))?;
        return Ok(Some(ContextSource::Git {
            url: git.url,
            reference: git.reference,
            subdir: git.subdir,
        }));
    }
    let lower = context.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(Some(ContextSource::Tarball {
            url: context.to_string(),
        }));
    }
    Err(ServiceError::Invalid(format!(
        "invalid context '{}': give a git URL (https://host/org/repo.git#branch:subdir), a \
         tarball URL (https://host/context.tar.gz) or /dev/null",
        redact_url(context)
    )))
}

/// The task's values with `extra` (a run's `--set` and `--set-secret`) over them.
pub(super) fn values_of(
    spec: &TaskSpec,
    extra: &BTreeMap<String, String>,
) -> Result<Values, ServiceError> {
    let mut set = spec.values.clone();
    set.extend(spec.secrets.secret_values.clone());
    set.extend(extra.clone());
    Values::new(set, spec.values_file.as_deref()).map_err(ServiceError::Invalid)
}

/// Build arguments with the secret ones: the run seals them all.
pub(super) fn build_args(spec: &TaskSpec) -> BTreeMap<String, String> {
    let mut args = spec.args.clone();
    args.extend(spec.secrets.secret_args.clone());
    args
}

fn expose(secrets: BTreeMap<String, Secret>) -> BTreeMap<String, String> {
    secrets
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_string()))
        .collect()
}

/// Applies an update to a task's contents. A plain value replaces a secret one of the same
/// name and the other way round, so a name is never both.
fn apply(spec: &mut TaskSpec, req: UpdateTask) -> Result<(), ServiceError> {
    spec.base_image_trigger = spec
        .base_image_trigger
        .with(req.base_image_trigger_enabled, req.base_image_trigger_type);
    if let Some(context) = req.context {
        spec.context = context;
    }
    match (req.file, req.cmd) {
        (Some(file), cmd) => {
            spec.file = Some(file);
            spec.cmd = cmd;
        }
        (None, Some(cmd)) => {
            spec.cmd = Some(cmd);
            spec.file = None;
        }
        (None, None) => {}
    }
    if let Some(images) = req.images {
        spec.images = images;
    }
    let secrets = &mut spec.secrets;
    merge(
        &mut spec.args,
        &mut secrets.secret_args,
        req.args,
        req.secret_args,
    );
    merge(
        &mut spec.values,
        &mut secrets.secret_values,
        req.values,
        req.secret_values,
    );
    for name in &req.unset {
        let removed = [
            spec.values.remove(name).is_some(),
            secrets.secret_values.remove(name).is_some(),
            spec.args.remove(name).is_some(),
            secrets.secret_args.remove(name).is_some(),
        ];
        if !removed.contains(&true) {
            return Err(ServiceError::Invalid(format!(
                "cannot unset '{name}': the task has no value or argument of that name"
            )));
        }
    }
    if let Some(target) = req.target {
        spec.target = (!target.is_empty()).then_some(target);
    }
    if let Some(no_push) = req.no_push {
        spec.push = !no_push;
    }
    if let Some(no_cache) = req.no_cache {
        spec.no_cache = no_cache;
    }
    if let Some(platform) = req.platform {
        spec.platform = platform;
    }
    if let Some(file) = req.values_file {
        spec.values_file = (!file.is_empty()).then_some(file);
    }
    if let Some(timeout) = req.timeout_secs {
        spec.timeout_secs = timeout;
    }
    if let Some(token) = req.git_access_token {
        secrets.git_token = Some(token.expose().to_string());
    }
    Ok(())
}

fn merge(
    plain: &mut BTreeMap<String, String>,
    secret: &mut BTreeMap<String, String>,
    new_plain: BTreeMap<String, String>,
    new_secret: BTreeMap<String, Secret>,
) {
    for (k, v) in new_plain {
        secret.remove(&k);
        plain.insert(k, v);
    }
    for (k, v) in new_secret {
        plain.remove(&k);
        secret.insert(k, v.expose().to_string());
    }
}

/// A task as the API shows it: secret values masked, and URL credentials too.
fn view(row: TaskRow) -> Result<Task, ServiceError> {
    let spec = row.spec;
    let triggers = source_triggers::view(&spec);
    let masked =
        |m: &BTreeMap<String, String>| m.keys().map(|k| (k.clone(), MASK.into())).collect();
    Ok(Task {
        kind: kind_of(&spec),
        name: row.name,
        status: row
            .status
            .parse::<TaskStatus>()
            .map_err(|e| crate::store::StoreError::Corrupt(format!("task status: {e}")))?,
        context: redact_url(&spec.context),
        secret_args: masked(&spec.secrets.secret_args),
        secret_values: masked(&spec.secrets.secret_values),
        git_access_token: spec.secrets.git_token.as_ref().map(|_| MASK.into()),
        file: spec.file,
        cmd: spec.cmd,
        images: spec.images,
        args: spec.args,
        target: spec.target,
        push: spec.push,
        no_cache: spec.no_cache,
        platform: spec.platform,
        values: spec.values,
        values_file: spec.values_file,
        timeout_secs: spec.timeout_secs,
        created_at: to_time(row.created_at),
        created_by: row.created_by,
        updated_at: to_time(row.updated_at),
        updated_by: row.updated_by,
        timers: Vec::new(),
        source_triggers: triggers,
        base_image_trigger: spec.base_image_trigger,
        base_images: Vec::new(),
    })
}

/// The task, with the webhook secret a create or update just made: shown this once.
fn with_secret(
    task: Result<Task, ServiceError>,
    webhook_secret: Option<String>,
) -> Result<Task, ServiceError> {
    let mut task = task?;
    task.source_triggers.webhook_secret = webhook_secret;
    Ok(task)
}
