//! `kiln serve` settings. Precedence: defaults < `KILN_*` environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use kiln_worker::protocol::{RegistryCredential, Secret};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the API listens on.
    #[arg(long, env = "KILN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the database, build contexts and logs are kept.
    #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
    pub data_dir: PathBuf,
    /// Default push registry, as HOST or HOST:PORT: image names without a registry are pushed
    /// there. Unset: Kiln's own registry on this server.
    #[arg(long, env = "KILN_REGISTRY")]
    pub registry: Option<String>,
    /// Username for the default registry.
    #[arg(long, env = "KILN_REGISTRY_USERNAME", requires = "registry_password")]
    pub registry_username: Option<String>,
    /// Password for the default registry.
    #[arg(long, env = "KILN_REGISTRY_PASSWORD", hide_env_values = true, value_parser = parse_secret)]
    pub registry_password: Option<Secret>,
    /// A docker config.json whose `auths` give credentials for any registry.
    #[arg(long, env = "KILN_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,
    /// Embedded workers to start (0: only remote `kiln-worker`s build).
    #[arg(long, env = "KILN_WORKERS", default_value_t = 1)]
    pub workers: u32,
    /// The Docker engine the embedded workers use: unix:///path or tcp://host:port.
    #[arg(long, env = "KILN_DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Where the first start stores the owner token for the `kiln` CLI on this machine
    /// (default: $XDG_CONFIG_HOME/kiln/credentials.json, else ~/.config/kiln/credentials.json).
    #[arg(long, env = "KILN_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// The server's URL as clients see it, e.g. https://kiln.example.com behind a TLS proxy;
    /// the registry sends Docker there for tokens. Default: http:// and the request's Host.
    #[arg(long, env = "KILN_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Largest accepted build context, e.g. 2GiB, 500MiB, 1000000.
    #[arg(long, env = "KILN_MAX_CONTEXT_SIZE", default_value = "2GiB", value_parser = parse_size)]
    pub max_context_size: u64,
    /// Seconds a worker's lease lasts without a heartbeat before its run is declared lost.
    #[arg(long, env = "KILN_LEASE_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=600))]
    pub lease_ttl: u64,
    /// Smallest run timeout a client may ask for, in seconds.
    #[arg(long, env = "KILN_MIN_TIMEOUT", default_value_t = 300)]
    pub min_timeout: u64,
    /// How often the registry's garbage collection runs: seconds, or e.g. 30m, 1h (0: never).
    #[arg(long, env = "KILN_GC_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub gc_interval: Duration,
    /// How long unreferenced registry blobs and idle uploads are kept before collection.
    #[arg(long, env = "KILN_GC_GRACE", default_value = "1h", value_parser = parse_duration)]
    pub gc_grace: Duration,
    /// The key that seals secrets (git tokens, URL credentials, build-arg values) in the
    /// database: 32 bytes, created on the first start. Default: <data-dir>/secret.key.
    #[arg(long, env = "KILN_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

pub fn parse_secret(s: &str) -> Result<Secret, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret::new(s))
}

fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim_end_matches('/');
    match s.split_once("://") {
        Some(("http" | "https", host)) if !host.is_empty() && !host.contains(['"', ' ']) => {
            Ok(s.to_string())
        }
        _ => Err(format!("'{s}' is not an http:// or https:// URL")),
    }
}

/// `90`, `90s`, `30m`, `1h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let s = s.trim();
    let (digits, unit) = UNITS
        .iter()
        .find_map(|&(suffix, secs)| s.strip_suffix(suffix).map(|d| (d, secs)))
        .unwrap_or((s, 1));
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("invalid duration '{s}': use seconds or e.g. 90s, 30m, 1h, 1d"))
}

/// `2GiB`, `500MiB`, `64KiB`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 2GiB or 500MiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        other => {
            return Err(format!(
                "invalid size unit '{other}': use B, KiB, MiB or GiB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

impl ServeArgs {
    /// Registry credentials from the flags and the docker config file.
    pub fn credentials(&self) -> anyhow::Result<Vec<RegistryCredential>> {
        let mut creds = Vec::new();
        if let (Some(registry), Some(username), Some(password)) = (
            &self.registry,
            &self.registry_username,
            &self.registry_password,
        ) {
            creds.push(RegistryCredential {
                registry: registry.clone(),
                username: username.clone(),
                password: password.clone(),
            });
        }
        if let Some(path) = &self.docker_config {
            creds.extend(docker_config_auths(path)?);
        }
        Ok(creds)
    }
}

/// Reads `{"auths": {"host": {"auth": base64("user:pass")}}}` as written by `docker login`.
fn docker_config_auths(path: &Path) -> anyhow::Result<Vec<RegistryCredential>> {
    use base64::Engine as _;
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read docker config {}: {e}", path.display()))?;
    let config: Config = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("docker config {} is not valid: {e}", path.display()))?;
    let mut creds = Vec::new();
    for (host, entry) in config.auths {
        let Some(auth) = entry.auth else { continue };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("docker config: the auth of '{host}' is not base64 user:password")
            })?;
        let Some((username, password)) = decoded.split_once(':') else {
            anyhow::bail!("docker config: the auth of '{host}' is not user:password");
        };
        let registry = host
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        creds.push(RegistryCredential {
            registry,
            username: username.to_string(),
            password: Secret::new(password),
        });
    }
    Ok(creds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("2XB").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn docker_config_auths_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // "user:pa:ss" in base64: passwords may contain colons.
        std::fs::write(
            &path,
            r#"{"auths":{"https://reg.example.com/":{"auth":"dXNlcjpwYTpzcw=="}}}"#,
        )
        .unwrap();
        let creds = docker_config_auths(&path).unwrap();
        assert_eq!(creds[0].registry, "reg.example.com");
        assert_eq!(creds[0].username, "user");
        assert_eq!(creds[0].password.expose(), "pa:ss");
    }
}
