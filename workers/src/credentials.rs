//! The credentials file: `{"servers": {"<url>": {"token": "kiln_…"}}}`, readable by its
//! owner only. `kiln serve` writes the owner token there on its first start and `kiln login`
//! adds servers; every client command, and `kiln-worker` without a token, looks its `--server`
//! up there. It lives in the worker crate so that both binaries read it with the same code.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::protocol::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot use the credentials file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the credentials file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no credentials file: set KILN_CREDENTIALS_FILE, XDG_CONFIG_HOME or HOME")]
    NoLocation,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    token: Secret,
}

/// The file to use: the given one, else `$XDG_CONFIG_HOME/kiln/credentials.json`, else
/// `$HOME/.config/kiln/credentials.json`.
pub fn path(given: Option<&Path>) -> Result<PathBuf, CredentialsError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or(CredentialsError::NoLocation)?;
    Ok(config.join("kiln").join("credentials.json"))
}

/// Servers are keyed by their URL as typed, less a trailing slash.
fn key(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn read(path: &Path) -> Result<File, CredentialsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
        Err(source) => {
            return Err(CredentialsError::Io {
                path: path.into(),
                source,
            })
        }
    };
    serde_json::from_str(&text).map_err(|e| CredentialsError::Invalid {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Writes the whole file anew, created readable by its owner only, then renamed into place so
/// that a reader never sees half of it.
fn write(path: &Path, file: &File) -> Result<(), CredentialsError> {
    let io = |source| CredentialsError::Io {
        path: path.into(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    // A leftover from a crashed write is ours to replace; anything else there is refused
    // below rather than followed.
    let _ = std::fs::remove_file(&tmp);
    let mut out = private_file(&tmp).map_err(io)?;
    let text = serde_json::to_string_pretty(file).expect("credentials serialize");
    out.write_all(text.as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The stored token for `server`, if any.
pub fn token_for(path: &Path, server: &str) -> Result<Option<Secret>, CredentialsError> {
    Ok(read(path)?.servers.remove(&key(server)).map(|e| e.token))
}

/// Stores `token` for `server`, keeping the other servers' entries.
pub fn store(path: &Path, server: &str, token: &Secret) -> Result<(), CredentialsError> {
    let mut file = read(path)?;
    file.servers.insert(
        key(server),
        Entry {
            token: token.clone(),
        },
    );
    write(path, &file)
}

/// Forgets `server`'s token; whether there was one.
pub fn remove(path: &Path, server: &str) -> Result<bool, CredentialsError> {
    let mut file = read(path)?;
    let removed = file.servers.remove(&key(server)).is_some();
    if removed {
        write(path, &file)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_merge_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln/credentials.json");
        assert_eq!(token_for(&path, "http://a").unwrap(), None);
        store(&path, "http://a/", &Secret::new("kiln_a")).unwrap();
        store(&path, "http://b", &Secret::new("kiln_b")).unwrap();
        assert_eq!(
            token_for(&path, "http://a").unwrap(),
            Some(Secret::new("kiln_a"))
        );
        assert_eq!(
            token_for(&path, "http://b/").unwrap(),
            Some(Secret::new("kiln_b"))
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(remove(&path, "http://a").unwrap());
        assert!(!remove(&path, "http://a").unwrap());
        assert!(token_for(&path, "http://b").unwrap().is_some());
    }
}
