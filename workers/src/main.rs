//! `kiln-worker`: a build worker for a Kiln server on another machine.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kiln_worker::client::ServerClient;
use kiln_worker::fetch_policy::FetchPolicy;
use kiln_worker::protocol::{Platform, Secret};
use kiln_worker::worker_token::{self, TokenSource, WorkerTokenError};
use kiln_worker::{Agent, AgentConfig, DockerEngine};
use tokio_util::sync::CancellationToken;

/// Leases build runs from a Kiln server and builds them with the local Docker engine.
#[derive(Debug, Parser)]
#[command(name = "kiln-worker", version)]
struct Args {
    /// The Kiln server's base URL; without a scheme, http:// for loopback hosts and
    /// https:// for others.
    #[arg(
        long,
        env = "KILN_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_parser = kiln_worker::server_url::normalize
    )]
    server: String,
    /// A worker token for the server (`kiln token create --name NAME --role worker`); default:
    /// KILN_TOKEN (deprecated), else the one `kiln login` stored for --server.
    #[arg(long, env = "KILN_WORKER_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    token: Option<Secret>,
    /// Name shown in run logs; defaults to the host name.
    #[arg(long, env = "KILN_WORKER_NAME")]
    name: Option<String>,
    /// Platforms to build (repeatable); default: the engine's own.
    #[arg(
        long = "platform",
        env = "KILN_WORKER_PLATFORMS",
        value_delimiter = ','
    )]
    platforms: Vec<Platform>,
    /// The Docker engine: unix:///path, tcp://host:port; default DOCKER_HOST or the local socket.
    #[arg(long, env = "KILN_DOCKER_HOST")]
    docker_host: Option<String>,
    /// Refuse git contexts, submodules and tarballs on loopback, link-local, private and
    /// CGNAT addresses (turn on for shared or multi-tenant build hosts).
    #[arg(long, env = "KILN_DENY_PRIVATE_ADDRESSES")]
    deny_private_addresses: bool,
    /// On SIGTERM or Ctrl-C: seconds the run in progress may still take. After it, a run that
    /// has not started building goes back to the queue and one that has ends as Error. Keep
    /// it under the service manager's stop timeout (systemd: 90 s).
    #[arg(long, env = "KILN_DRAIN_TIMEOUT", default_value_t = 60)]
    drain_timeout: u64,
    /// Where `kiln login` stores tokens per server, read when no token is given (default:
    /// $XDG_CONFIG_HOME/kiln/credentials.json, else ~/.config/kiln/credentials.json).
    #[arg(long, env = "KILN_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
}

fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// `--token`/`KILN_WORKER_TOKEN`, else the deprecated `KILN_TOKEN`, else the credentials file.
fn find_token(args: &Args) -> Result<(Secret, TokenSource), WorkerTokenError> {
    let deprecated = match &args.token {
        Some(_) => None,
        None => std::env::var(worker_token::DEPRECATED_TOKEN_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new),
    };
    worker_token::resolve(
        args.token.clone(),
        deprecated,
        &args.server,
        args.credentials_file.as_deref(),
    )
}

/// A worker that cannot work without the user's help says why and stops at once.
fn exit_with(e: WorkerTokenError) -> ! {
    eprintln!("kiln-worker: {e}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(kiln_worker::log_filter::env_filter("info"))
        .init();
    let args = Args::parse();
    let (token, from) = find_token(&args).unwrap_or_else(|e| exit_with(e));
    let client = ServerClient::new(&args.server, Some(token.clone()))?;
    if let Err(e) = worker_token::check(&client, &args.server, from).await {
        exit_with(e);
    }
    let name = args.name.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into())
    });
    let config = AgentConfig {
        server: args.server,
        token: Some(token),
        shutdown_reason: format!("worker '{name}' shut down"),
        name,
        platforms: args.platforms,
        fetch_policy: FetchPolicy {
            deny_private_addresses: args.deny_private_addresses,
        },
        drain_timeout: Duration::from_secs(args.drain_timeout),
    };
    let agent = Agent::new(config, DockerEngine::new(args.docker_host.as_deref()))?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let stop = kiln_worker::signal::stop_requested();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutting down: leasing no more runs");
        on_signal.cancel();
    });
    // Refused by the server (too old a protocol): exit non-zero rather than ask forever.
    agent.run(shutdown).await?;
    tracing::info!("worker stopped");
    Ok(())
}
