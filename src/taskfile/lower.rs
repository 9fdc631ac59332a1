//! From the parsed task to the `StepsJob` a worker runs: every semantic check (each error at
//! the line and column of its node) and every default of acr-tasks §4.
//!
//! Checks collect errors rather than stopping at the first, so one `kiln task validate` shows
//! everything wrong with a file.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use kiln_worker::protocol::{NetworkSpec, Secret, Step, StepsJob, VolumeSpec};

use super::errors::{Collector, Position};
use super::model::{RawStep, RawTask};
use super::positions::Positions;
use super::steps::StepContext;
use super::CompileInput;

/// ACR's default `stepTimeout`, in seconds.
pub(crate) const DEFAULT_STEP_TIMEOUT: u64 = 600;
/// ACR's `retryDelay` when none (or 0) is given, in seconds.
pub(crate) const DEFAULT_RETRY_DELAY: u64 = 5;
/// The versions ACR accepts (case-insensitive).
const VERSIONS: &[&str] = &["1.0-preview-1", "v1.0.0", "v1.1.0"];
/// The id ACR reserves for the DAG's root.
const RESERVED_ID: &str = "acb_root";

/// Where errors go and where nodes are.
pub(crate) struct Checker<'a> {
    pub positions: &'a Positions,
    pub errors: Collector<'a>,
}

impl Checker<'_> {
    /// An error at the value of `path`.
    pub(crate) fn at(&mut self, path: &str, message: impl Into<String>) {
        let at = self.positions.value(path);
        self.errors.push(at, message);
    }

    /// An error at the key of `path` (for keys that are wrong whatever their value).
    pub(crate) fn at_key(&mut self, path: &str, message: impl Into<String>) {
        let at: Position = self.positions.key(path);
        self.errors.push(at, message);
    }
}

/// Checks `task` and builds the job; `image_aliases` maps a cmd's first token to an image.
pub(crate) fn lower(
    task: RawTask,
    checker: &mut Checker<'_>,
    input: &CompileInput,
    image_aliases: &BTreeMap<String, String>,
) -> StepsJob {
    if let Some(version) = &task.version {
        if !VERSIONS.iter().any(|v| v.eq_ignore_ascii_case(version)) {
            checker.at(
                "version",
                format!(
                    "invalid version '{version}': use one of {}",
                    VERSIONS.join(", ")
                ),
            );
        }
    }
    if task.secrets.is_some() {
        checker.at_key(
            "secrets",
            "Key Vault secrets are not supported by Kiln; pass the value with --set-secret and use {{.Values.name}}",
        );
    }
    if task.alias.is_some() {
        checker.at_key("alias", "'alias' needs 'version: v1.1.0' or later");
    }
    if task.steps.is_empty() {
        checker.at("steps", "a task needs at least one step");
    }
    let task_env = task_env(&task.env, checker);
    let networks = networks(&task, checker);
    let (volumes, mut masked) = volumes(&task, checker);
    masked.extend(input.values.secret.values().cloned());

    let step_timeout = task
        .step_timeout
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_STEP_TIMEOUT);
    let volume_names: BTreeSet<&str> = task.volumes.iter().map(|v| v.name.as_str()).collect();
    let network_names: BTreeSet<&str> = task.networks.iter().map(|n| n.name.as_str()).collect();
    let ids = step_ids(&task.steps, checker);

    let mut ctx = StepContext {
        input,
        image_aliases,
        volumes: &volume_names,
        networks: &network_names,
        built: BTreeSet::new(),
    };
    let mut steps = Vec::with_capacity(task.steps.len());
    for (index, raw) in task.steps.iter().enumerate() {
        let path = format!("steps.{index}");
        let when = when(index, raw, &ids, checker);
        let env = merge_env(&task_env, &raw.env, &format!("{path}.env"), checker);
        let working_directory = super::paths::working_directory(
            raw.working_directory
                .as_deref()
                .or(task.working_directory.as_deref()),
        );
        let Some(action) = ctx.action(index, raw, &env, &working_directory, checker) else {
            continue;
        };
        steps.push(Step {
            id: ids[index].clone(),
            when,
            action,
            timeout_secs: raw.timeout.filter(|t| *t > 0).unwrap_or(step_timeout),
            start_delay_secs: raw.start_delay,
            retries: raw.retries,
            retry_delay_secs: raw
                .retry_delay
                .filter(|d| *d > 0)
                .unwrap_or(DEFAULT_RETRY_DELAY),
            retry_on_errors: raw.retry_on_errors.clone(),
            repeat: raw.repeat,
            ignore_errors: raw.ignore_errors,
            detach: raw.detach,
            keep: raw.keep,
            exited_with: raw.exited_with.clone(),
            exited_without: raw.exited_without.clone(),
            env,
            working_directory,
            disable_working_directory_override: raw.disable_working_directory_override,
            network: raw.network.clone(),
        });
    }
    masked.retain(|s| !s.expose().is_empty());
    masked.sort_by(|a, b| {
        b.expose()
            .len()
            .cmp(&a.expose().len())
            .then(a.expose().cmp(b.expose()))
    });
    masked.dedup();
    StepsJob {
        context: None,
        platforms: input.platforms.clone(),
        steps,
        networks,
        volumes,
        masked,
        deferred: None,
    }
}

/// Task-level env: entries are split on `,` first (as ACR does), each must be `K=V`.
fn task_env(env: &[String], checker: &mut Checker<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, entry) in env.iter().enumerate() {
        for part in entry.split(',') {
            if part.split_once('=').is_some_and(|(k, _)| !k.is_empty()) {
                out.push(part.to_owned());
            } else {
                checker.at(
                    &format!("env.{i}"),
                    format!("env entry '{part}' is not KEY=VALUE"),
                );
            }
        }
    }
    out
}

/// The task env with the step's entries over it (the step wins per key).
fn merge_env(
    task: &[String],
    step: &[String],
    path: &str,
    checker: &mut Checker<'_>,
) -> Vec<String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut set = |entry: &str| {
        let (k, v) = entry.split_once('=').expect("checked by the caller");
        match merged.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_owned(),
            None => merged.push((k.to_owned(), v.to_owned())),
        }
    };
    task.iter().for_each(|e| set(e));
    for (i, entry) in step.iter().enumerate() {
        if entry.split_once('=').is_some_and(|(k, _)| !k.is_empty()) {
            set(entry);
        } else {
            checker.at(
                &format!("{path}.{i}"),
                format!("env entry '{entry}' is not KEY=VALUE"),
            );
        }
    }
    merged
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn networks(task: &RawTask, checker: &mut Checker<'_>) -> Vec<NetworkSpec> {
    let mut seen = BTreeSet::new();
    let last_default = task.networks.iter().rposition(|n| n.is_default);
    let mut out = Vec::new();
    for (i, n) in task.networks.iter().enumerate() {
        if !valid_name(&n.name) {
            checker.at(
                &format!("networks.{i}.name"),
                format!("invalid network name '{}'", n.name),
            );
        } else if !seen.insert(n.name.as_str()) {
            checker.at(
                &format!("networks.{i}.name"),
                format!("network '{}' is declared twice", n.name),
            );
        }
        out.push(NetworkSpec {
            name: n.name.clone(),
            driver: n.driver.clone(),
            ipv6: n.ipv6,
            skip_creation: n.skip_creation,
            // ACR: the last `isDefault` network is the default.
            is_default: Some(i) == last_default,
        });
    }
    out
}

/// Volumes with their files decoded, and the decoded contents (secrets, masked in logs).
fn volumes(task: &RawTask, checker: &mut Checker<'_>) -> (Vec<VolumeSpec>, Vec<Secret>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen = BTreeSet::new();
    let (mut out, mut masked) = (Vec::new(), Vec::new());
    for (i, v) in task.volumes.iter().enumerate() {
        let path = format!("volumes.{i}");
        if !valid_name(&v.name) || v.name.contains('.') {
            checker.at(
                &format!("{path}.name"),
                format!(
                    "invalid volume name '{}': use letters, digits, '-' and '_'",
                    v.name
                ),
            );
        } else if !seen.insert(v.name.as_str()) {
            checker.at(
                &format!("{path}.name"),
                format!("volume '{}' is declared twice", v.name),
            );
        }
        let mut files = BTreeMap::new();
        for (file, content) in &v.secret {
            let at = format!("{path}.secret.{file}");
            if !valid_name(file) {
                checker.at_key(
                    &at,
                    format!("invalid file name '{file}': use letters, digits, '-', '_' and '.'"),
                );
            }
            let decoded = b64
                .decode(content.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            match decoded {
                Some(text) => {
                    masked.push(Secret::new(text.clone()));
                    files.insert(file.clone(), Secret::new(text));
                }
                None => checker.at(
                    &at,
                    format!("the content of '{file}' must be base64 text (use {{{{ .Values.x | b64enc }}}})"),
                ),
            }
        }
        out.push(VolumeSpec {
            name: v.name.clone(),
            files,
        });
    }
    (out, masked)
}

/// Letters, digits, `-`, `_` and `.`, starting with a letter or digit (Docker's names).
pub(crate) fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Every step's id (`acb_step_<index>` when none is given, as ACR), checked.
fn step_ids(steps: &[RawStep], checker: &mut Checker<'_>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut ids = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let path = format!("steps.{index}.id");
        let id = step
            .id
            .clone()
            .unwrap_or_else(|| format!("acb_step_{index}"));
        if id.contains(char::is_whitespace) {
            checker.at(&path, format!("step id '{id}' contains spaces"));
        } else if id == RESERVED_ID {
            checker.at(&path, format!("step id '{RESERVED_ID}' is reserved"));
        } else if !valid_name(&id) {
            checker.at(
                &path,
                format!("invalid step id '{id}': use letters, digits, '-', '_' and '.', starting with a letter or digit"),
            );
        } else if !seen.insert(id.clone()) {
            checker.at(&path, format!("duplicate step id '{id}'"));
        }
        ids.push(id);
    }
    ids
}

/// The ids a step waits for: `["-"]` none, no `when` the previous step, else the ids given,
/// which must name earlier steps.
fn when(index: usize, step: &RawStep, ids: &[String], checker: &mut Checker<'_>) -> Vec<String> {
    let Some(when) = &step.when else {
        return index
            .checked_sub(1)
            .map(|i| vec![ids[i].clone()])
            .unwrap_or_default();
    };
    let path = format!("steps.{index}.when");
    if when.iter().any(|w| w == "-") {
        if when.len() > 1 {
            checker.at(&path, "'when' cannot mix \"-\" with step ids");
        }
        return Vec::new();
    }
    if when.is_empty() {
        checker.at(
            &path,
            "'when' is empty: use [\"-\"] to start at once, or name earlier steps",
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (j, name) in when.iter().enumerate() {
        let at = format!("{path}.{j}");
        if *name == ids[index] {
            checker.at(&at, format!("step '{name}' cannot wait for itself"));
        } else if ids[index + 1..].contains(name) {
            checker.at(
                &at,
                format!(
                    "'when' names '{name}', a later step: a step may only wait for earlier steps"
                ),
            );
        } else if !ids[..index].contains(name) {
            checker.at(
                &at,
                format!("'when' names '{name}', which is not a step of this task"),
            );
        } else if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}
