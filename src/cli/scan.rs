//! `kiln scan`: an image's packages and known vulnerabilities, as a run. The arguments are
//! sent to the server as the words given (so the server reads them exactly as a task's
//! `kiln scan …` step); then the run's log streams live and the command exits with its
//! result, as `kiln purge`. `kiln scan show` prints the stored reports without scanning.

use clap::{ArgMatches, Args, Subcommand};
use kiln_worker::image_ref::ImageRef;
use kiln_worker::scan_run::report::{report_lines, summary_table};
use kiln_worker::scan_run::ScanArgs;

use super::client::KilnClient;
use super::format::print_json;
use super::purge::follow_own_run;
use super::words::given_words;
use super::{CliError, OutputFormat, ReconnectArgs, ServerArgs};
use crate::wire::CreateScanRun;

/// `kiln scan IMAGE…` or `kiln scan show IMAGE`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScanCmd {
    #[command(subcommand)]
    pub command: Option<ScanCommand>,
    #[command(flatten)]
    pub scan: ScanArgs,
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

#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Print the stored report of an image (every platform of an index) without scanning it
    /// again.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `REPO:TAG` or `REPO@DIGEST` in Kiln's registry.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Queues the scan, follows it and exits with its result; or shows stored reports. `matches`
/// are the `scan` subcommand's, from which the words are taken as given.
pub async fn run(cmd: ScanCmd, matches: &ArgMatches) -> Result<(), CliError> {
    if let Some(ScanCommand::Show(show_args)) = cmd.command {
        return show(show_args, &cmd.server).await;
    }
    let client = KilnClient::new(&cmd.server)?;
    let run = client
        .create_scan_run(&CreateScanRun {
            words: given_words::<ScanArgs>(matches),
            timeout_secs: cmd.timeout,
            queue_timeout_secs: None,
        })
        .await?;
    follow_own_run(&client, &run, cmd.no_wait, cmd.reconnect).await
}

async fn show(args: ShowArgs, server: &ServerArgs) -> Result<(), CliError> {
    let image = ImageRef::parse(&args.image).map_err(|e| CliError::Input(e.to_string()))?;
    let reference = image
        .digest()
        .unwrap_or_else(|| image.tag_or_latest())
        .to_owned();
    let client = KilnClient::new(server)?;
    let reports = client.scan_reports(image.repository(), &reference).await?;
    if args.output == OutputFormat::Json {
        return print_json(&reports);
    }
    for report in &reports {
        for line in report_lines(report) {
            println!("{line}");
        }
        println!();
    }
    for line in summary_table(&reports) {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        cmd: ScanCmd,
    }

    #[test]
    fn the_words_sent_read_back_as_the_arguments_given() {
        let matches = Cli::command().get_matches_from([
            "scan",
            "127.0.0.1:5000/ci/tool:3",
            "--severity-threshold",
            "high",
            "ci/other@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "--allow-missing-db",
            "--output",
            "sarif",
            "--timeout",
            "60",
            "--server",
            "http://127.0.0.1:1",
        ]);
        Cli::from_arg_matches(&matches).unwrap();
        let words = given_words::<ScanArgs>(&matches);
        assert_eq!(
            words,
            [
                "--severity-threshold=high",
                "--allow-missing-db",
                "--output=sarif",
                "127.0.0.1:5000/ci/tool:3",
                "ci/other@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ]
        );
        let args = ScanArgs::from_words(&words).unwrap();
        assert_eq!(args.images.len(), 2);
    }

    #[test]
    fn show_is_a_subcommand() {
        let matches = Cli::command().get_matches_from(["scan", "show", "app/web:v1"]);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        match cli.cmd.command {
            Some(ScanCommand::Show(show)) => assert_eq!(show.image, "app/web:v1"),
            None => panic!("not read as show"),
        }
    }
}
