//! `kiln task …`: saved tasks and their files.

use clap::Subcommand;

use super::{task_validate, CliError};

/// The `task` command group.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Check a task YAML offline: unknown keys, types, steps, templates (errors with line:column).
    Validate(task_validate::ValidateArgs),
}

/// Runs one `task` subcommand.
pub async fn run(cmd: TaskCommand) -> Result<(), CliError> {
    match cmd {
        TaskCommand::Validate(args) => task_validate::run(args),
    }
}
