//! One step's action: which of `build`, `push` and `cmd` it is (a `cmd` naming a built-in
//! command, `acr purge …`, becomes that built-in's step), its arguments parsed, its image
//! names qualified, and the properties that only some step types take checked.

use std::collections::{BTreeMap, BTreeSet};

use kiln_worker::protocol::{
    builtin_command, check_build_args, BuildStep, Builtin, CmdStep, ImageRef, PlatformSet,
    PurgeJob, PushStep, ScanJob, StepAction, VolumeMount,
};
use kiln_worker::purge::PurgeArgs;
use kiln_worker::scan_run::ScanArgs;

use super::aliases::MICROSOFT_IMAGE_ALIASES;
use super::lower::Checker;
use super::model::RawStep;
use super::paths::{join, relative_to, WORKSPACE};
use super::{build_args, CompileInput};

/// What every step's action is checked against.
pub(crate) struct StepContext<'a> {
    pub input: &'a CompileInput,
    pub image_aliases: &'a BTreeMap<String, String>,
    pub volumes: &'a BTreeSet<&'a str>,
    pub networks: &'a BTreeSet<&'a str>,
    /// Qualified names built by earlier build steps: a cmd step may run them.
    pub built: BTreeSet<String>,
}

impl StepContext<'_> {
    /// The step's action, or `None` (with errors recorded) when it has none that works.
    pub(crate) fn action(
        &mut self,
        index: usize,
        raw: &RawStep,
        env: &[String],
        working_directory: &str,
        checker: &mut Checker<'_>,
    ) -> Option<StepAction> {
        let path = format!("steps.{index}");
        let number = index + 1;
        self.common(&path, raw, checker);
        let kinds = [raw.build.is_some(), raw.cmd.is_some(), raw.push.is_some()];
        match kinds.iter().filter(|k| **k).count() {
            0 => {
                checker.at(
                    &path,
                    format!("step {number} has none of 'build', 'cmd' or 'push'"),
                );
                return None;
            }
            1 => {}
            _ => {
                checker.at(
                    &path,
                    format!("step {number} has more than one of 'build', 'cmd' and 'push'"),
                );
                return None;
            }
        }
        if raw.cmd.is_none() {
            for (key, given) in [
                ("pull", raw.pull.is_some()),
                ("user", raw.user.is_some()),
                ("entryPoint", raw.entry_point.is_some()),
                ("ports", raw.ports.is_some()),
                ("expose", raw.expose.is_some()),
                ("volumeMounts", raw.volume_mounts.is_some()),
                ("privileged", raw.privileged.is_some()),
            ] {
                if given {
                    checker.at_key(
                        &format!("{path}.{key}"),
                        format!("'{key}' applies to cmd steps only"),
                    );
                }
            }
        }
        if raw.cache.is_some() && raw.build.is_none() {
            checker.at_key(
                &format!("{path}.cache"),
                "'cache' applies to build steps only",
            );
        }
        let action = if let Some(args) = &raw.build {
            StepAction::Build(self.build(
                &format!("{path}.build"),
                args,
                env,
                working_directory,
                checker,
            )?)
        } else if let Some(images) = &raw.push {
            StepAction::Push(self.push(&format!("{path}.push"), images, checker)?)
        } else {
            let cmd = raw.cmd.as_deref().unwrap_or_default();
            self.cmd(&path, cmd, raw, checker)?
        };
        Some(action)
    }

    /// Properties every step type takes.
    fn common(&self, path: &str, raw: &RawStep, checker: &mut Checker<'_>) {
        if raw.isolation.is_some() {
            checker.at_key(
                &format!("{path}.isolation"),
                "'isolation' is for Windows containers, which Kiln does not run",
            );
        }
        if let Some(cache) = &raw.cache {
            if cache != "enabled" && cache != "disabled" {
                checker.at(
                    &format!("{path}.cache"),
                    format!("cache must be 'enabled' or 'disabled', not '{cache}'"),
                );
            }
        }
        if raw.privileged == Some(true) && !self.input.allow_privileged {
            checker.at_key(
                &format!("{path}.privileged"),
                "privileged steps are not allowed by this Kiln server",
            );
        }
        if let Some(network) = &raw.network {
            if !self.networks.contains(network.as_str()) {
                checker.at(
                    &format!("{path}.network"),
                    format!("network '{network}' is not declared in the task's 'networks'"),
                );
            }
        }
    }

    fn registry(&self) -> Option<&str> {
        self.input
            .default_registry
            .as_deref()
            .or(self.input.run.registry.as_deref())
    }

    /// Parses and qualifies an image a step builds or pushes.
    fn image(&self, name: &str) -> Result<ImageRef, String> {
        let image = ImageRef::parse(name).map_err(|e| e.to_string())?;
        Ok(match self.registry() {
            Some(registry) => image.with_default_registry(registry),
            None => image,
        })
    }

    fn build(
        &mut self,
        path: &str,
        args: &str,
        env: &[String],
        working_directory: &str,
        checker: &mut Checker<'_>,
    ) -> Option<BuildStep> {
        let parsed = match build_args::parse(args, env) {
            Ok(parsed) => parsed,
            Err(message) => {
                checker.at(path, message);
                return None;
            }
        };
        let mut errors = Vec::new();
        let context = join(working_directory, &parsed.context);
        let context_dir = relative_to(&context, WORKSPACE).unwrap_or_else(|| {
            errors.push(format!(
                "build context '{}' is outside /workspace",
                parsed.context
            ));
            ".".into()
        });
        let dockerfile = match &parsed.dockerfile {
            None => "Dockerfile".to_owned(),
            Some(file) => {
                relative_to(&join(working_directory, file), &context).unwrap_or_else(|| {
                    errors.push(format!(
                        "Dockerfile '{file}' must be inside the build context '{}'",
                        parsed.context
                    ));
                    "Dockerfile".into()
                })
            }
        };
        let platforms = match &parsed.platform {
            None => self.input.platforms.clone(),
            Some(p) => p.parse::<PlatformSet>().unwrap_or_else(|e| {
                errors.push(format!("invalid --platform '{p}': {e}"));
                self.input.platforms.clone()
            }),
        };
        if let Err(e) = check_build_args(&parsed.build_args) {
            errors.push(e);
        }
        let mut images = Vec::new();
        for tag in &parsed.tags {
            match self.image(tag) {
                Ok(image) if image.digest().is_some() => errors.push(format!(
                    "invalid image '{tag}': a built image needs a tag, not a digest"
                )),
                Ok(image) if !images.contains(&image) => {
                    self.built.insert(image.to_string());
                    images.push(image);
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            errors.into_iter().for_each(|e| checker.at(path, e));
            return None;
        }
        Some(BuildStep {
            context_dir,
            dockerfile,
            build_args: parsed.build_args,
            target: parsed.target,
            platforms,
            no_cache: parsed.no_cache,
            images,
        })
    }

    fn push(&self, path: &str, names: &[String], checker: &mut Checker<'_>) -> Option<PushStep> {
        if names.is_empty() {
            checker.at(path, "a push step needs at least one image");
            return None;
        }
        let mut images: Vec<ImageRef> = Vec::new();
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            match self.image(name) {
                Ok(image) => {
                    // ACR pushes `:latest` when no tag is given; normalise so duplicates fold.
                    let image = if image.tag().is_none() && image.digest().is_none() {
                        self.image(&format!("{name}:latest")).unwrap_or(image)
                    } else {
                        image
                    };
                    if !images.contains(&image) {
                        images.push(image);
                    }
                }
                Err(e) => {
                    checker.at(&format!("{path}.{i}"), e);
                    ok = false;
                }
            }
        }
        ok.then_some(PushStep { images })
    }

    fn cmd(
        &self,
        path: &str,
        cmd: &str,
        raw: &RawStep,
        checker: &mut Checker<'_>,
    ) -> Option<StepAction> {
        let at = format!("{path}.cmd");
        let mut words = match shell_words::split(cmd) {
            Ok(words) => words,
            Err(e) => {
                checker.at(&at, format!("cannot split cmd: {e}"));
                return None;
            }
        };
        // An alias the file defines names an image: the file's word wins over a built-in.
        let aliased = words
            .first()
            .is_some_and(|w| self.image_aliases.contains_key(w));
        if let Some(builtin) = builtin_command(&words).filter(|_| !aliased) {
            return builtin_step(&at, builtin, checker);
        }
        if let Some(alias) = words.first().and_then(|w| self.image_aliases.get(w)) {
            let rest = shell_words::join(&words[1..]);
            words = shell_words::split(&format!("{alias} {rest}")).unwrap_or_default();
        } else if let Some(first) = words
            .first()
            .filter(|w| MICROSOFT_IMAGE_ALIASES.contains(&w.as_str()))
        {
            checker.at(
                &at,
                format!(
                    "'{first}' is an ACR image alias for a Microsoft image, which Kiln does not provide: \
                     name an image, or define '{first}' in alias.values"
                ),
            );
            return None;
        }
        let Some((image, args)) = words.split_first() else {
            checker.at(&at, "a cmd step needs an image");
            return None;
        };
        let image = match self.image(image) {
            Ok(qualified) if self.built.contains(&qualified.to_string()) => qualified.to_string(),
            Ok(_) => image.clone(),
            Err(e) => {
                checker.at(&at, e);
                return None;
            }
        };
        let mut mounts = Vec::new();
        let mut mount_paths = BTreeSet::new();
        for (i, m) in raw.volume_mounts.iter().flatten().enumerate() {
            let mpath = format!("{path}.volumeMounts.{i}");
            if !self.volumes.contains(m.name.as_str()) {
                checker.at(
                    &format!("{mpath}.name"),
                    format!(
                        "volume '{}' is not declared in the task's 'volumes'",
                        m.name
                    ),
                );
            }
            if !m.mount_path.starts_with('/') {
                checker.at(
                    &format!("{mpath}.mountPath"),
                    format!("mountPath '{}' must be absolute", m.mount_path),
                );
            } else if !mount_paths.insert(m.mount_path.as_str()) {
                checker.at(
                    &format!("{mpath}.mountPath"),
                    format!("mountPath '{}' is used twice in this step", m.mount_path),
                );
            }
            mounts.push(VolumeMount {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
            });
        }
        Some(StepAction::Cmd(CmdStep {
            image,
            args: args.to_vec(),
            pull: raw.pull.unwrap_or(false),
            user: raw.user.clone(),
            entry_point: raw.entry_point.clone(),
            ports: raw.ports.clone().unwrap_or_default(),
            expose: raw.expose.clone().unwrap_or_default(),
            volume_mounts: mounts,
            privileged: raw.privileged.unwrap_or(false) && self.input.allow_privileged,
        }))
    }
}

/// The step of a built-in command: its arguments are checked here, so a mistake is an error
/// at the step's `cmd`. The registry stays as the command gives it (empty: the run's
/// default); the server settles it and checks the submitter's rights before queueing.
fn builtin_step(at: &str, builtin: Builtin, checker: &mut Checker<'_>) -> Option<StepAction> {
    match builtin {
        Builtin::Purge(words) => match PurgeArgs::from_words(&words) {
            Ok(args) => Some(StepAction::Purge(PurgeJob {
                words,
                registry: args.registry.unwrap_or_default(),
                kiln: false,
            })),
            Err(e) => {
                checker.at(at, format!("invalid purge command: {e}"));
                None
            }
        },
        Builtin::Scan(words) => match ScanArgs::from_words(&words) {
            Ok(args) => Some(StepAction::Scan(ScanJob {
                words,
                registry: args.registry.unwrap_or_default(),
                kiln: false,
            })),
            Err(e) => {
                checker.at(at, format!("invalid scan command: {e}"));
                None
            }
        },
    }
}
