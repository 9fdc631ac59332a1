//! Docker's client configuration, `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`),
//! and its credential helpers: where `kiln registry login` puts credentials so that `docker
//! push` finds them, by the rules `docker login` follows.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kiln_worker::protocol::Secret;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("cannot use Docker's config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Docker's config {path} is not valid: {message}; fix or remove it")]
    Invalid { path: PathBuf, message: String },
    #[error("no Docker config directory: set DOCKER_CONFIG or HOME")]
    NoLocation,
    #[error("the credential helper {program} (named in {config}) failed: {message}")]
    Helper {
        program: String,
        config: PathBuf,
        message: String,
    },
}

/// Something on this machine to fix: bad input, exit code 2.
impl From<DockerConfigError> for super::CliError {
    fn from(e: DockerConfigError) -> super::CliError {
        super::CliError::Input(e.to_string())
    }
}

/// `config.json` as read, every key kept, so that writing it back changes only `auths.<host>`.
pub struct DockerConfig {
    path: PathBuf,
    json: Map<String, Value>,
}

/// Where Docker keeps a registry's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum CredentialStore {
    /// `docker-credential-<name>`, from `credHelpers.<host>` or else `credsStore`.
    Helper(String),
    /// `auths.<host>.auth` in config.json itself.
    File,
}

impl DockerConfig {
    /// Docker's config for this user: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`. A missing or empty file is an empty config.
    pub fn load() -> Result<DockerConfig, DockerConfigError> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .ok_or(DockerConfigError::NoLocation)?;
        Self::load_from(&dir.join("config.json"))
    }

    fn load_from(path: &Path) -> Result<DockerConfig, DockerConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(DockerConfigError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        let json = if text.trim().is_empty() {
            Map::new()
        } else {
            serde_json::from_str(&text).map_err(|e| DockerConfigError::Invalid {
                path: path.into(),
                message: e.to_string(),
            })?
        };
        Ok(DockerConfig {
            path: path.into(),
            json,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Docker's rule: a `credHelpers` entry for the host, else the `credsStore`, else the file.
    pub fn store_for(&self, host: &str) -> CredentialStore {
        let named = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let helper = self
            .json
            .get("credHelpers")
            .and_then(|h| named(h.get(host)))
            .or_else(|| named(self.json.get("credsStore")));
        helper.map_or(CredentialStore::File, CredentialStore::Helper)
    }

    /// Sets `auths.<host>` to `{"auth": base64(username:secret)}`, as `docker login` writes it.
    pub fn set_auth(
        &mut self,
        host: &str,
        username: &str,
        secret: &Secret,
    ) -> Result<(), DockerConfigError> {
        let auths = self
            .json
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(auths) = auths else {
            return Err(DockerConfigError::Invalid {
                path: self.path.clone(),
                message: "\"auths\" is not an object".into(),
            });
        };
        let auth = STANDARD.encode(format!("{username}:{}", secret.expose()));
        auths.insert(host.to_string(), serde_json::json!({ "auth": auth }));
        Ok(())
    }

    /// Writes the config to a temp file beside it, readable by its owner only, and renames it
    /// into place, so Docker never reads half a file. A symlinked config.json (dotfiles) is
    /// written where it points, as Docker does.
    pub fn save(&self) -> Result<(), DockerConfigError> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let io = |source| DockerConfigError::Io {
            path: target.clone(),
            source,
        };
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(dir.unwrap_or(Path::new(".")))
            .map_err(io)?;
        let text = serde_json::to_string_pretty(&self.json).expect("a JSON map serializes");
        tmp.write_all(text.as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&target).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// `docker-credential-<helper> store`, given `{"ServerURL", "Username", "Secret"}` on its
/// standard input, as Docker calls it.
pub fn store_with_helper(
    helper: &str,
    config: &Path,
    host: &str,
    username: &str,
    secret: &Secret,
) -> Result<(), DockerConfigError> {
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let failed = |message: String| DockerConfigError::Helper {
        program: program.clone(),
        config: config.into(),
        message,
    };
    let mut child = Command::new(&program)
        .arg("store")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    let input = serde_json::json!({
        "ServerURL": host,
        "Username": username,
        "Secret": secret.expose(),
    });
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.to_string().as_bytes());
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if !out.status.success() {
        // Helpers report errors on stdout.
        let said = [out.stdout, out.stderr]
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(failed(format!("{}: {said}", out.status)));
    }
    written.map_err(|e| failed(format!("cannot write to it: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        let config = DockerConfig::load_from(&path).unwrap();
        (dir, config)
    }

    #[test]
    fn a_hosts_helper_wins_over_the_store_which_wins_over_the_file() {
        let (_d, c) = config(r#"{"credsStore": "desktop", "credHelpers": {"h:1": "pass"}}"#);
        assert_eq!(c.store_for("h:1"), CredentialStore::Helper("pass".into()));
        assert_eq!(
            c.store_for("h:2"),
            CredentialStore::Helper("desktop".into())
        );
        let (_d, c) = config(r#"{"credsStore": ""}"#);
        assert_eq!(c.store_for("h:1"), CredentialStore::File);
        let (_d, c) = config("");
        assert_eq!(c.store_for("h:1"), CredentialStore::File);
    }

    #[test]
    fn an_invalid_config_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = DockerConfig::load_from(&path).err().unwrap();
        assert!(err.to_string().contains("is not valid"), "{err}");
        let (_d, mut c) = config(r#"{"auths": []}"#);
        let err = c.set_auth("h", "u", &Secret::new("s")).unwrap_err();
        assert!(
            err.to_string().contains("\"auths\" is not an object"),
            "{err}"
        );
    }
}
