//! Where `kiln-worker` finds its token, and a check of it before the first lease: a missing,
//! refused or non-worker token ends the process with what to do, rather than a warning every
//! few seconds forever.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;

use crate::client::{ClientError, ServerClient};
use crate::credentials::{self, CredentialsError};
use crate::protocol::{ApiErrorBody, Secret};

/// The CLI's variable, which workers used to share: still read, with a warning, for one
/// release.
pub const DEPRECATED_TOKEN_ENV: &str = "KILN_TOKEN";

const CREATE_ONE: &str =
    "an owner creates one with `kiln token create --name <host> --role worker`";

/// Where the token came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or `KILN_WORKER_TOKEN`.
    Given,
    /// `KILN_TOKEN`.
    Deprecated,
    /// The credentials file `kiln login` writes.
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Given => f.write_str("--token/KILN_WORKER_TOKEN"),
            TokenSource::Deprecated => f.write_str(DEPRECATED_TOKEN_ENV),
            TokenSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerTokenError {
    #[error(
        "no worker token for {server}: pass --token or set KILN_WORKER_TOKEN, or store one \
         with `kiln login {server}`{looked_in}; {create}",
        create = CREATE_ONE
    )]
    Missing { server: String, looked_in: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(
        "the server at {server} refused the worker token from {from}: {reason}; {create}",
        create = CREATE_ONE
    )]
    Refused {
        server: String,
        from: TokenSource,
        reason: String,
    },
    #[error(
        "token '{name}' from {from} has the role {roles}, not worker: {create} and pass it as \
         KILN_WORKER_TOKEN",
        create = CREATE_ONE
    )]
    NotWorker {
        name: String,
        roles: String,
        from: TokenSource,
    },
}

/// `--token`/`KILN_WORKER_TOKEN`, else `KILN_TOKEN` (deprecated), else the credentials file's
/// entry for `server`, found as the `kiln` CLI finds it.
pub fn resolve(
    given: Option<Secret>,
    deprecated: Option<Secret>,
    server: &str,
    credentials_file: Option<&Path>,
) -> Result<(Secret, TokenSource), WorkerTokenError> {
    if let Some(token) = given {
        return Ok((token, TokenSource::Given));
    }
    if let Some(token) = deprecated {
        tracing::warn!(
            "{DEPRECATED_TOKEN_ENV} is deprecated for kiln-worker and will be ignored in the next \
             release: set KILN_WORKER_TOKEN (KILN_TOKEN is the kiln CLI's user token)"
        );
        return Ok((token, TokenSource::Deprecated));
    }
    let missing = |looked_in: String| WorkerTokenError::Missing {
        server: server.to_string(),
        looked_in,
    };
    let path = match credentials::path(credentials_file) {
        Ok(path) => path,
        Err(CredentialsError::NoLocation) => return Err(missing(String::new())),
        Err(e) => return Err(e.into()),
    };
    match credentials::token_for(&path, server)? {
        Some(token) => Ok((token, TokenSource::File(path))),
        None => Err(missing(format!(" (none in {})", path.display()))),
    }
}

/// Asks the server who the token is. A refused or non-worker token is an error; a server
/// that cannot be asked now is not (the lease loop waits for it).
pub async fn check(
    client: &ServerClient,
    server: &str,
    from: TokenSource,
) -> Result<(), WorkerTokenError> {
    match client.whoami().await {
        Ok(me) if me.roles.iter().any(|r| r == "worker") => Ok(()),
        Ok(me) => Err(WorkerTokenError::NotWorker {
            name: me.name,
            roles: me.roles.join(","),
            from,
        }),
        Err(ClientError::Server { status, message }) if status == StatusCode::UNAUTHORIZED => {
            Err(WorkerTokenError::Refused {
                server: server.to_string(),
                from,
                reason: ApiErrorBody::without_login_hint(&message).to_string(),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the worker token yet");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_token_wins_then_the_deprecated_variable_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials.json");
        let server = "http://127.0.0.1:8080";
        credentials::store(&file, server, &Secret::new("kiln_file")).unwrap();
        let given = Some(Secret::new("kiln_given"));
        let old = Some(Secret::new("kiln_old"));
        let got = |g: Option<Secret>, d: Option<Secret>| {
            resolve(g, d, server, Some(&file)).map(|(t, s)| (t.expose().to_string(), s))
        };
        assert_eq!(
            got(given, old.clone()).unwrap(),
            ("kiln_given".into(), TokenSource::Given)
        );
        assert_eq!(
            got(None, old).unwrap(),
            ("kiln_old".into(), TokenSource::Deprecated)
        );
        assert_eq!(
            got(None, None).unwrap(),
            ("kiln_file".into(), TokenSource::File(file.clone()))
        );
        let err = resolve(None, None, "http://elsewhere:1", Some(&file)).unwrap_err();
        assert!(matches!(err, WorkerTokenError::Missing { .. }), "{err}");
    }
}
