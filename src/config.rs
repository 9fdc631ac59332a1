//! `kiln serve` settings. Precedence: defaults < `KILN_*` environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use kiln_worker::protocol::{ContextLimits, RegistryCredential, Secret};

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
    /// Embedded workers refuse git contexts, submodules and tarballs on loopback,
    /// link-local, private and CGNAT addresses (turn on for shared or multi-tenant hosts).
    #[arg(long, env = "KILN_DENY_PRIVATE_ADDRESSES")]
    pub deny_private_addresses: bool,
    /// How long a run waits for a worker before it ends as Expired, unless it asks otherwise
    /// (Cloud Build's queueTtl, whose default this is); 0: no limit.
    #[arg(long, env = "KILN_QUEUE_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub queue_timeout: Duration,
    /// On SIGTERM or Ctrl-C: how long in-flight requests, uploads and the embedded workers'
    /// builds get to finish before they are cut off.
    #[arg(long, env = "KILN_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Runs that ended longer ago than this are deleted with their logs and contexts, by the
    /// collector that runs every --gc-interval; 0: keep forever.
    #[arg(long, env = "KILN_RUN_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub run_retention: Duration,
    /// Time a client has to send a complete request head, e.g. 10s.
    #[arg(long, env = "KILN_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests, e.g. 60s.
    #[arg(long, env = "KILN_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    pub idle_timeout: Duration,
    /// Time a request body (an upload) may go without a byte before the request fails.
    #[arg(long, env = "KILN_BODY_TIMEOUT", default_value = "60s", value_parser = parse_timeout)]
    pub body_timeout: Duration,
    /// Connections served at once; past it a small reserve answers health checks and asks
    /// other clients to retry, and further clients wait to be accepted.
    #[arg(long, env = "KILN_MAX_CONNECTIONS", default_value_t = 1024, value_parser = parse_max_connections)]
    pub max_connections: usize,
    /// Largest build context once unpacked (the decompressed tar, and the sizes its entries
    /// declare), e.g. 8GiB; larger ones get 413. Default: 4 times --max-context-size.
    #[arg(long, env = "KILN_MAX_CONTEXT_UNPACKED_SIZE", value_parser = parse_size)]
    pub max_context_unpacked_size: Option<u64>,
    /// Largest ratio of a context's unpacked to uploaded size, checked once it passes 64 MiB
    /// unpacked; beyond it the upload is a decompression bomb and gets 413.
    #[arg(long, env = "KILN_MAX_CONTEXT_EXPANSION", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_context_expansion: u64,
    /// The key that seals secrets (git tokens, URL credentials, build-arg values) in the
    /// database: 32 bytes, created on the first start. Default: <data-dir>/secret.key.
    #[arg(long, env = "KILN_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Let task steps run privileged containers (`privileged: true`), which gives them root
    /// on the build host. Off: such a task is refused before it is queued.
    #[arg(long, env = "KILN_ALLOW_PRIVILEGED_STEPS")]
    pub allow_privileged_steps: bool,
    // Base-image trigger (issue 11).
    /// How often a task's base images on registries other than Kiln's own are checked for a
    /// new digest, with up to a tenth of jitter (bases in Kiln's registry trigger at once).
    #[arg(long, env = "KILN_BASE_IMAGE_POLL_INTERVAL", default_value = "5m", value_parser = parse_timeout)]
    pub base_image_poll_interval: Duration,
    /// Scan every manifest pushed by tag to Kiln's registry (a scan run per push; an index
    /// once, every platform), except in repositories set otherwise
    /// (`kiln registry repository update REPO --scan-on-push false`).
    #[arg(long, env = "KILN_SCAN_ON_PUSH")]
    pub scan_on_push: bool,
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

/// The inverse of `parse_duration`, in the largest unit that is exact: `1h`, `10m`, `90s`.
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(&str, u64); 3] = [("d", 86_400), ("h", 3600), ("m", 60)];
    let secs = d.as_secs();
    UNITS
        .iter()
        .find(|&&(_, unit)| secs > 0 && secs.is_multiple_of(unit))
        .map_or_else(
            || format!("{secs}s"),
            |&(suffix, unit)| format!("{}{suffix}", secs / unit),
        )
}

/// A duration as for `parse_duration`, but at least one second.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be at least 1s".into()),
        d => Ok(d),
    }
}

fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid connection count '{s}': expected 1 to 1000000"
        )),
    }
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
    /// The limits on context archives, for uploads and remote tarballs alike.
    pub fn context_limits(&self) -> ContextLimits {
        ContextLimits::derived(
            self.max_context_size,
            self.max_context_unpacked_size,
            self.max_context_expansion,
        )
    }

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
        for text in ["1h", "10m", "90s", "2d", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
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
