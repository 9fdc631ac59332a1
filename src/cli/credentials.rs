//! The credentials file, shared with `kiln-worker`: see `kiln_worker::credentials`.

pub use kiln_worker::credentials::{path, remove, store, token_for, CredentialsError};

/// A file the user can fix: bad input, exit code 2.
impl From<CredentialsError> for super::CliError {
    fn from(e: CredentialsError) -> super::CliError {
        super::CliError::Input(e.to_string())
    }
}
