//! Task files (ACR task YAML) and `--cmd` compiled into a rendered `StepsJob`.
//!
//! A placeholder with the final signatures: it compiles `--cmd` into one `cmd` step and refuses
//! task files. The task YAML parser, validator and renderer replace this module.

use std::collections::BTreeMap;
use std::fmt;

use kiln_worker::protocol::{CmdStep, PlatformSet, Secret, Step, StepAction, StepsJob};

use crate::template::RunVars;

/// What a task file or `--cmd` is rendered with.
#[derive(Debug, Clone)]
pub struct CompileInput {
    /// `.Run.*`.
    pub run: RunVars,
    /// `.Values.*`.
    pub values: Values,
    /// The run's platforms (`--platform`).
    pub platforms: PlatformSet,
    /// `kiln serve --allow-privileged-steps`: otherwise `privileged: true` is an error.
    pub allow_privileged: bool,
    /// Prefixed to image names that name no registry.
    pub default_registry: String,
}

/// `--set`/`--values` and `--set-secret` values.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub plain: BTreeMap<String, String>,
    pub secret: BTreeMap<String, Secret>,
}

/// One error in a task file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every error found in a task file; nothing is queued when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFileErrors {
    pub errors: Vec<TaskFileError>,
}

impl fmt::Display for TaskFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}:{}:{}: {}", e.file, e.line, e.column, e.message))
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for TaskFileErrors {}

/// ACR's default step timeout, in seconds.
const STEP_TIMEOUT_SECS: u64 = 600;

fn error(file: &str, message: &str) -> TaskFileErrors {
    TaskFileErrors {
        errors: vec![TaskFileError {
            file: file.into(),
            line: 1,
            column: 1,
            message: message.into(),
        }],
    }
}

/// Compiles a task file's text.
pub fn compile(
    file_name: &str,
    _text: &str,
    _input: &CompileInput,
) -> Result<StepsJob, TaskFileErrors> {
    Err(error(file_name, "task files are not supported yet"))
}

/// Compiles `--cmd 'IMAGE ARGS…'` into a job of one `cmd` step.
pub fn compile_cmd(cmd: &str, input: &CompileInput) -> Result<StepsJob, TaskFileErrors> {
    let mut words = cmd.split_whitespace().map(str::to_string);
    let Some(image) = words.next() else {
        return Err(error(
            "--cmd",
            "a cmd needs an image: --cmd 'IMAGE [ARGS...]'",
        ));
    };
    Ok(StepsJob {
        context: None,
        platforms: input.platforms.clone(),
        steps: vec![Step {
            id: "acb_step_0".into(),
            when: Vec::new(),
            action: StepAction::Cmd(CmdStep {
                image,
                args: words.collect(),
                pull: false,
                user: None,
                entry_point: None,
                ports: Vec::new(),
                expose: Vec::new(),
                volume_mounts: Vec::new(),
                privileged: false,
            }),
            timeout_secs: STEP_TIMEOUT_SECS,
            start_delay_secs: 0,
            retries: 0,
            retry_delay_secs: 0,
            retry_on_errors: Vec::new(),
            repeat: 0,
            ignore_errors: false,
            detach: false,
            keep: false,
            exited_with: Vec::new(),
            exited_without: Vec::new(),
            env: Vec::new(),
            working_directory: "/workspace".into(),
            disable_working_directory_override: false,
            network: None,
        }],
        networks: Vec::new(),
        volumes: Vec::new(),
        masked: input.values.secret.values().cloned().collect(),
    })
}
