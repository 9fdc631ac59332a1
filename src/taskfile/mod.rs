//! ACR-compatible task YAML (acr-tasks §4, §5): parsed strictly, checked, templated and turned
//! into the `StepsJob` a worker runs. Pure logic: no I/O beyond what the caller hands in, so
//! the server (before queueing), the CLI (`kiln task validate`) and tests share it.
//!
//! Order, as ACR's `acb exec`: comment lines dropped, the `alias:` block cut out and aliases
//! substituted (v1.1.0+), templates rendered with `.Run.*` and `.Values.*`, strict YAML
//! parsing, semantic checks, defaults. Removed lines are left blank so every error still
//! points at the line and column the user wrote.

mod aliases;
mod build_args;
mod errors;
mod lower;
mod model;
mod parse;
mod paths;
mod positions;
mod steps;
mod values;

use chrono::Utc;
use kiln_worker::protocol::{PlatformSet, StepsJob};

use crate::template::RunVars;

pub use errors::{Position, TaskFileError, TaskFileErrors};
pub use values::{parse_pairs, Values, ValuesError};

/// Reads a file of the context by relative path (`alias.src`); `None` when there is none.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Everything a task file is compiled with besides its text.
#[derive(Debug, Clone)]
pub struct CompileInput {
    /// `.Run.*`.
    pub run: RunVars,
    /// `.Values.*`.
    pub values: Values,
    /// What build steps build (unless `--platform`) and what cmd steps run on.
    pub platforms: PlatformSet,
    /// Whether the server lets steps run `privileged`.
    pub allow_privileged: bool,
    /// The registry unqualified image names of build and push steps go to (Kiln's own
    /// unless configured); `None`: `.Run.Registry`, else left unqualified.
    pub default_registry: Option<String>,
}

/// Compiles a task file; `alias.src` files cannot be read (see [`compile_with_files`]).
pub fn compile(
    file_name: &str,
    text: &str,
    input: &CompileInput,
) -> Result<StepsJob, TaskFileErrors> {
    compile_with_files(file_name, text, input, &|_| None)
}

/// Compiles a task file, reading `alias.src` files (paths relative to the context) with
/// `read_file`; [`alias_sources`] lists the ones a file names.
pub fn compile_with_files(
    file_name: &str,
    text: &str,
    input: &CompileInput,
    read_file: ReadFile<'_>,
) -> Result<StepsJob, TaskFileErrors> {
    let options = parse::Options {
        lenient_values: false,
        read_alias_file: Some(read_file),
    };
    parse::compile(file_name, text, input, &options)
}

/// `--cmd 'IMAGE ARGS'`: a job of one cmd step (aliases such as `$Registry` work).
pub fn compile_cmd(cmd: &str, input: &CompileInput) -> Result<StepsJob, TaskFileErrors> {
    parse::compile_cmd(cmd, input)
}

/// Checks a task file offline: placeholder run values, every `.Values.*` accepted.
pub fn validate(file_name: &str, text: &str) -> Result<(), TaskFileErrors> {
    validate_with_values(file_name, text, &Values::default(), None).map(drop)
}

/// As [`validate`], rendering with `values` (missing ones still accepted: the run gives
/// them) and reading `alias.src` files with `read_alias_file` (skipped when `None`);
/// returns the compiled job so callers can report its steps.
pub fn validate_with_values(
    file_name: &str,
    text: &str,
    values: &Values,
    read_alias_file: Option<ReadFile<'_>>,
) -> Result<StepsJob, TaskFileErrors> {
    let input = CompileInput {
        run: placeholder_run(),
        values: values.clone(),
        platforms: PlatformSet::default(),
        allow_privileged: true,
        default_registry: None,
    };
    let options = parse::Options {
        lenient_values: true,
        read_alias_file,
    };
    parse::compile(file_name, text, &input, &options)
}

/// The relative `alias.src` files a task file names (URLs are refused when compiling).
pub fn alias_sources(text: &str) -> Vec<String> {
    parse::alias_sources(text)
}

/// Run values for offline checks: any value renders to a valid image name.
fn placeholder_run() -> RunVars {
    RunVars {
        id: "ca1".into(),
        registry: Some("kiln.example.com".into()),
        date: Utc::now(),
        os: "linux".into(),
        architecture: "amd64".into(),
        commit: Some("0".repeat(40)),
        branch: Some("main".into()),
        task_name: Some("task".into()),
        shared_volume: Some("kiln_vol_ca1".into()),
    }
}

#[cfg(test)]
mod tests;
