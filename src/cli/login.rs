//! `kiln login <server>` and `kiln logout [<server>]`: the credentials file's entries, for
//! using a server from another machine.

use std::io::{BufRead as _, IsTerminal as _};

use clap::Args;
use kiln_worker::protocol::Secret;

use super::client::KilnClient;
use super::{credentials, CliError, ServerArgs};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL, e.g. http://buildhost:8080; without a scheme, http:// for loopback
    /// hosts (`127.0.0.1:8080`) and https:// for others.
    #[arg(value_parser = kiln_worker::server_url::normalize)]
    pub url: String,
    /// Read the token from standard input, even when --token or KILN_TOKEN is set.
    #[arg(long)]
    pub token_stdin: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The server to forget; default: --server.
    #[arg(value_parser = kiln_worker::server_url::normalize)]
    pub url: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    let token = match &args.server.token {
        Some(token) if !args.token_stdin => token.clone(),
        _ => read_token()?,
    };
    let target = ServerArgs {
        server: args.url,
        token: Some(token.clone()),
        credentials_file: args.server.credentials_file.clone(),
    };
    let me = KilnClient::new(&target)?.check_token().await?;
    let path = credentials::path(args.server.credentials_file.as_deref())?;
    credentials::store(&path, &target.server, &token)?;
    let roles: Vec<&str> = me.roles.iter().map(|r| r.as_str()).collect();
    eprintln!(
        "Logged in to {} as token '{}' ({}). Stored in {}.",
        target.server,
        me.name,
        roles.join(","),
        path.display()
    );
    Ok(())
}

pub fn logout(args: LogoutArgs) -> Result<(), CliError> {
    let server = args.url.as_deref().unwrap_or(&args.server.server);
    let path = credentials::path(args.server.credentials_file.as_deref())?;
    if credentials::remove(&path, server)? {
        eprintln!("Forgot the token for {server}.");
    } else {
        eprintln!("No token was stored for {server}.");
    }
    Ok(())
}

/// One line from standard input, with a prompt when a person is typing.
fn read_token() -> Result<Secret, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Token: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Input(format!("cannot read the token from standard input: {e}")))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(CliError::Input(
            "no token on standard input: pipe in a secret from `kiln token create`".into(),
        ));
    }
    Ok(Secret::new(token))
}
