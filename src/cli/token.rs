//! `kiln token create | list | revoke`.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::client::KilnClient;
use super::format::{print_json, table, timestamp};
use super::{CliError, OutputArgs, OutputFormat, ServerArgs};
use crate::access::{RepoPattern, Role, TokenName};
use crate::wire::{CreateToken, Token};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret, which is shown this once.
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List(OutputArgs),
    /// Revoke a token: its secret and the registry tokens issued from it stop working at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The token's name, also its username for `docker login`.
    #[arg(long, value_parser = parse_name)]
    pub name: TokenName,
    /// pull, push (pull + push), delete (pull + delete), owner (everything), worker (a build
    /// host) or tasks (pull + managing saved tasks); repeatable.
    #[arg(long = "role", required = true)]
    pub roles: Vec<Role>,
    /// Repositories the roles apply to, `*` matching anything (`app/*`); repeatable.
    #[arg(long = "repository")]
    pub repositories: Vec<RepoPattern>,
    /// Lifetime, e.g. 30d, 12h, 90m; default: no expiry.
    #[arg(long, value_parser = parse_expiry)]
    pub expires: Option<Duration>,
    /// `json` prints the token with its secret as JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

fn parse_name(s: &str) -> Result<TokenName, String> {
    TokenName::try_from(s.to_string())
}

/// `30d`, `12h`, `90m`, `45s`.
fn parse_expiry(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid expiry '{s}': use e.g. 30d, 12h or 90m");
    // Stricter than other durations: the unit is required and nothing surrounds the value.
    if s.ends_with(|c: char| c.is_ascii_digit()) || s.trim() != s {
        return Err(bad());
    }
    crate::config::parse_duration(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

pub async fn run(cmd: TokenCommand) -> Result<(), CliError> {
    match cmd {
        TokenCommand::Create(args) => create(args).await,
        TokenCommand::List(args) => list(args).await,
        TokenCommand::Revoke(args) => {
            KilnClient::new(&args.server)?
                .revoke_token(&args.name)
                .await?;
            eprintln!("Revoked token '{}'.", args.name);
            Ok(())
        }
    }
}

async fn create(args: CreateArgs) -> Result<(), CliError> {
    let client = KilnClient::new(&args.server)?;
    let created = client
        .create_token(&CreateToken {
            name: args.name,
            roles: args.roles,
            repositories: args.repositories,
            expires_in_secs: args.expires.map(|d| d.as_secs()),
        })
        .await?;
    if args.output == OutputFormat::Json {
        return print_json(&created);
    }
    let t = &created.token;
    eprintln!(
        "Created token '{}': {} on {}, expires {}.",
        t.name,
        roles_cell(t),
        repositories_cell(t),
        t.expires_at.map(timestamp).unwrap_or("never".into())
    );
    eprintln!("Its secret follows; it is not shown again:");
    println!("{}", created.secret.expose());
    eprintln!("{}", usage_hint(client.server(), t));
    Ok(())
}

/// How to use a new token: a worker token starts a worker; the others log a machine in, and
/// then Docker.
fn usage_hint(server: &str, t: &Token) -> String {
    if t.roles.contains(&Role::Worker) {
        return format!(
            "Start a worker with it on a build host:              KILN_WORKER_TOKEN=<the secret> kiln-worker --server {server} --name {}",
            t.name
        );
    }
    format!(
        "Use it on another machine: kiln login {server} --token-stdin,          then `kiln registry login` for docker push and pull"
    )
}

async fn list(args: OutputArgs) -> Result<(), CliError> {
    let list = KilnClient::new(&args.server)?.list_tokens().await?;
    if args.output == OutputFormat::Json {
        return print_json(&list);
    }
    let rows: Vec<[String; 6]> = list
        .tokens
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                roles_cell(t),
                repositories_cell(t),
                timestamp(t.created_at),
                t.expires_at.map(timestamp).unwrap_or("never".into()),
                t.last_used_at.map(timestamp).unwrap_or("-".into()),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "ROLES",
        "REPOSITORIES",
        "CREATED",
        "EXPIRES",
        "LAST USED",
    ];
    print!("{}", table(header, &rows));
    Ok(())
}

fn roles_cell(t: &Token) -> String {
    let roles: Vec<&str> = t.roles.iter().map(|r| r.as_str()).collect();
    roles.join(",")
}

fn repositories_cell(t: &Token) -> String {
    if t.repositories.is_empty() {
        return if t.roles.contains(&Role::Owner) {
            "all repositories".into()
        } else {
            "-".into()
        };
    }
    let patterns: Vec<&str> = t.repositories.iter().map(|p| p.as_str()).collect();
    patterns.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse() {
        assert_eq!(parse_expiry("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_expiry("90m"), Ok(Duration::from_secs(5_400)));
        for bad in ["", "30", "d", "0h", "3w", "-1d"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
