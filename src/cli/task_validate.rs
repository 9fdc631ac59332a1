//! `kiln task validate FILE`: checks a task YAML offline, as the server would before queueing
//! it (schema, semantics, templates with placeholder run values), without a server.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;
use crate::taskfile::{validate_with_values, Values};

/// `kiln task validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The task file (`-` reads standard input).
    pub file: PathBuf,
    /// A YAML file of values for `{{.Values.name}}`.
    #[arg(long = "values")]
    pub values: Option<PathBuf>,
    /// A value for `{{.Values.name}}`, as `name=value` (repeatable; beats --values).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// A secret value, as `name=value` (repeatable).
    #[arg(long = "set-secret", value_name = "NAME=VALUE")]
    pub set_secret: Vec<String>,
}

/// Prints `FILE: valid (N steps)`, or fails with every error at its line and column (exit 2).
/// Values the command is not given are accepted: the run gives them.
pub fn run(args: ValidateArgs) -> Result<(), CliError> {
    let values = Values::load(args.values.as_deref(), &args.set, &args.set_secret)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let (name, text) = if args.file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Input(format!("cannot read standard input: {e}")))?;
        ("<stdin>".to_owned(), text)
    } else {
        let text = std::fs::read_to_string(&args.file)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", args.file.display())))?;
        (args.file.display().to_string(), text)
    };
    // `alias.src` paths are relative to the context; offline, the file's folder stands in.
    let folder = args.file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let read = move |path: &str| std::fs::read_to_string(folder.join(path)).ok();
    let job = validate_with_values(&name, &text, &values, Some(&read))
        .map_err(|errors| CliError::Input(errors.to_string()))?;
    let n = job.steps.len();
    println!("{name}: valid ({n} step{})", if n == 1 { "" } else { "s" });
    Ok(())
}
