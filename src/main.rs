use std::io::IsTerminal;

use clap::{CommandFactory, FromArgMatches};
use kiln::cli::{build, login, purge, registry, run, task, token, Cli, CliError, Command};
use kiln::server::Server;

fn init_tracing(default: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(kiln_worker::log_filter::env_filter(default))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // KILN_LOG_FORMAT=json for log shippers; readable text otherwise.
    if std::env::var("KILN_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: kiln::config::ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let grace = args.shutdown_grace;
    let stop = kiln_worker::signal::stop_requested();
    let server = Server::start(args, listener).await?;
    stop.await;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: finishing requests and builds in progress"
    );
    // A second signal stops at once.
    tokio::select! {
        () = server.shutdown() => {}
        () = kiln_worker::signal::stop_requested() => tracing::warn!("stopped at once on a second signal"),
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    // The matches too: `kiln purge` sends its flags as given.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match cli.command {
        Command::Serve(args) => {
            init_tracing("info,tower_http=warn,sqlx=warn");
            match serve(args).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            }
        }
        Command::Build(args) => {
            init_tracing("warn");
            report(build::run(args).await)
        }
        Command::Run(cmd) => {
            init_tracing("warn");
            report(run::run(cmd).await)
        }
        Command::Registry(cmd) => {
            init_tracing("warn");
            report(registry::run(cmd).await)
        }
        Command::Token(cmd) => {
            init_tracing("warn");
            report(token::run(cmd).await)
        }
        Command::Login(args) => {
            init_tracing("warn");
            report(login::login(args).await)
        }
        Command::Logout(args) => report(login::logout(args)),
        Command::Task(cmd) => {
            init_tracing("warn");
            report(task::run(cmd).await)
        }
        Command::Webhook(cmd) => {
            init_tracing("warn");
            report(kiln::cli::webhook::run(cmd).await)
        }
        Command::Purge(cmd) => {
            init_tracing("warn");
            let purge = matches.subcommand_matches("purge");
            report(purge::run(cmd, purge.unwrap_or(&matches)).await)
        }
        Command::Scan(cmd) => {
            init_tracing("warn");
            let scan = matches.subcommand_matches("scan");
            report(kiln::cli::scan::run(cmd, scan.unwrap_or(&matches)).await)
        }
        Command::Vulndb(cmd) => {
            init_tracing("warn");
            report(kiln::cli::vulndb::run(cmd).await)
        }
    };
    std::process::exit(code);
}

fn report(result: Result<(), CliError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            match e {
                CliError::RunEnded { .. } | CliError::Interrupted(_) => eprintln!("{e}"),
                _ => eprintln!("error: {e}"),
            }
            e.exit_code()
        }
    }
}
