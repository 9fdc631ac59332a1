//! `kiln run list | show | logs | cancel`, and `kiln run -f FILE | --cmd CMD CONTEXT`
//! (`run_steps.rs`) to start a run.

use clap::{Args, Subcommand};
use kiln_worker::protocol::{RunId, RunStatus};

use super::build::interrupted;
use super::client::KilnClient;
use super::follow::print_log;
use super::format::{print_json, run_details, run_table};
use super::run_steps::{self, StartArgs};
use super::{CliError, OutputFormat, ReconnectArgs, ServerArgs};
use crate::wire::ListQuery;

/// `kiln run`: a subcommand, or `-f`/`--cmd` and a context to start a run.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RunArgs {
    #[command(subcommand)]
    pub command: Option<RunCommand>,
    #[command(flatten)]
    pub start: StartArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// Show one run.
    Show(ShowArgs),
    /// Print a run's log; --follow streams it until the run ends.
    Logs(LogsArgs),
    /// Cancel a queued or running run. Its build is stopped on the worker.
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs with this status.
    #[arg(long)]
    pub status: Option<RunStatus>,
    /// Only runs with an image in this repository (`repo`, any tag) or with this exact
    /// `repo:tag`; without a registry, the server's default registry is assumed.
    #[arg(long)]
    pub image: Option<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 15)]
    pub top: u32,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub run_id: String,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub run_id: String,
    /// Keep streaming until the run ends; exit with the run's result.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    pub run_id: String,
}

pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let server = &args.server;
    match args.command {
        Some(RunCommand::List(a)) => list(a, server).await,
        Some(RunCommand::Show(a)) => show(a, server).await,
        Some(RunCommand::Logs(a)) => logs(a, server).await,
        Some(RunCommand::Cancel(a)) => cancel(a, server).await,
        None => run_steps::start(args.start, server).await,
    }
}

async fn list(a: ListArgs, server: &ServerArgs) -> Result<(), CliError> {
    let client = KilnClient::new(server)?;
    let list = client
        .list_runs(&ListQuery {
            status: a.status,
            top: Some(a.top),
            image: a.image,
        })
        .await?;
    match a.output {
        OutputFormat::Json => print_json(&list),
        OutputFormat::Table => {
            print!("{}", run_table(&list.runs));
            Ok(())
        }
    }
}

async fn show(a: ShowArgs, server: &ServerArgs) -> Result<(), CliError> {
    let run = KilnClient::new(server)?.run(&a.run_id).await?;
    match a.output {
        OutputFormat::Json => print_json(&run),
        OutputFormat::Table => {
            print!("{}", run_details(&run));
            Ok(())
        }
    }
}

async fn logs(a: LogsArgs, server: &ServerArgs) -> Result<(), CliError> {
    let client = KilnClient::new(server)?;
    // Resolve first, so an unknown run is a clear 404 rather than an empty log.
    let run = client.run(&a.run_id).await?;
    let id: RunId = run.id;
    let mut stdout = std::io::stdout();
    let printed = tokio::select! {
        r = print_log(&client, id, a.follow, a.reconnect.reconnect_timeout, &mut stdout) => r,
        _ = tokio::signal::ctrl_c(), if a.follow => return Err(interrupted(&run)),
    };
    printed?;
    if a.follow {
        // Following ends with the run, so the exit code can say how it went, as build's does.
        return super::build::finish(&client.run(&a.run_id).await?, true);
    }
    Ok(())
}

async fn cancel(a: CancelArgs, server: &ServerArgs) -> Result<(), CliError> {
    let run = KilnClient::new(server)?.cancel(&a.run_id).await?;
    if run.status == RunStatus::Canceled {
        eprintln!("Run {} canceled", run.id);
    } else {
        eprintln!(
            "Cancel requested for run {}; its worker is stopping the build",
            run.id
        );
    }
    Ok(())
}
