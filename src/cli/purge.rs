//! `kiln purge`: Kiln's `acr purge` as a run. The flags are `acr purge`'s, sent to the server
//! as the words given (so the server reads them exactly as a task's `acr purge …` step);
//! then the run's log streams live and the command exits with its result, as `kiln build`.

use clap::{ArgMatches, Args};
use kiln_worker::purge::PurgeArgs;

use super::build::{follow_queued, Follow};
use super::client::KilnClient;
use super::words::given_words;
use super::{CliError, OutputFormat, ReconnectArgs, ServerArgs};
use crate::wire::{CreatePurgeRun, Run};

#[derive(Debug, Args)]
pub struct PurgeCmd {
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// Run timeout in seconds (default: the server's, 3600).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Print the run ID once queued and return.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Queues the purge, follows it and exits with its result. `matches` are the `purge`
/// subcommand's, from which the words are taken as given.
pub async fn run(cmd: PurgeCmd, matches: &ArgMatches) -> Result<(), CliError> {
    let client = KilnClient::new(&cmd.server)?;
    let run = client
        .create_purge_run(&CreatePurgeRun {
            words: purge_words(matches),
            timeout_secs: cmd.timeout,
            queue_timeout_secs: None,
        })
        .await?;
    follow_own_run(&client, &run, cmd.no_wait, cmd.reconnect).await
}

/// Follows a purge or scan run queued just now, as `kiln build` follows its run.
pub(super) async fn follow_own_run(
    client: &KilnClient,
    run: &Run,
    no_wait: bool,
    reconnect: ReconnectArgs,
) -> Result<(), CliError> {
    eprintln!("Queued a {} run with ID: {}", run.kind.as_str(), run.id);
    let follow = Follow {
        no_logs: false,
        no_wait,
        output: OutputFormat::Table,
        reconnect,
    };
    follow_queued(client, run, &follow).await
}

/// The purge flags given on the command line, as `--flag` or `--flag=value` words (one per
/// value, in order), which `PurgeArgs::from_words` reads back the same.
pub fn purge_words(matches: &ArgMatches) -> Vec<String> {
    given_words::<PurgeArgs>(matches)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        cmd: PurgeCmd,
    }

    #[test]
    fn the_words_sent_read_back_as_the_flags_given() {
        let matches = Cli::command().get_matches_from([
            "purge",
            "--filter",
            "app/.*:^dev-",
            "-f",
            "lib:x",
            "--ago",
            "2d3h",
            "--keep",
            "5",
            "--untagged",
            "--dry-run",
            "--registry",
            "127.0.0.1:5000",
            "--timeout",
            "60",
            "--server",
            "http://127.0.0.1:1",
        ]);
        Cli::from_arg_matches(&matches).unwrap();
        let words = purge_words(&matches);
        assert_eq!(
            words,
            [
                "--registry=127.0.0.1:5000",
                "--filter=app/.*:^dev-",
                "--filter=lib:x",
                "--ago=2d3h",
                "--keep=5",
                "--untagged",
                "--dry-run",
            ]
        );
        let args = PurgeArgs::from_words(&words).unwrap();
        assert_eq!(args.filters.len(), 2);
        assert_eq!((args.keep, args.dry_run), (5, true));
    }
}
