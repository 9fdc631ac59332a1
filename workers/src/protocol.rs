//! Types on the wire between the Kiln server, its workers and the CLI.
//!
//! `kiln-worker` sits at the bottom of the dependency graph (the server embeds it), so the
//! shared vocabulary lives here and every side serializes through one definition.
//! Validated newtypes deserialize through `try_from`, so bad input cannot bypass validation.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::image_ref::{ImageRef, ImageRefError};

/// Run IDs are a fixed two-letter prefix and a base-36 counter (`ca1`, `ca2`, … `caz`, `ca10`),
/// like ACR's. They are short, increasing in creation order, and valid as image tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(u64);

const RUN_ID_PREFIX: &str = "ca";

impl RunId {
    /// The run with sequence number `seq` (starting at 1).
    pub fn from_seq(seq: u64) -> Self {
        RunId(seq)
    }

    pub fn seq(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = Vec::new();
        let mut n = self.0;
        loop {
            digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
            n /= 36;
            if n == 0 {
                break;
            }
        }
        f.write_str(RUN_ID_PREFIX)?;
        for d in digits.iter().rev() {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run ID '{0}': run IDs look like 'ca1', 'ca2f'")]
pub struct RunIdError(String);

impl FromStr for RunId {
    type Err = RunIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RunIdError(s.to_string());
        let counter = s.strip_prefix(RUN_ID_PREFIX).ok_or_else(bad)?;
        // One spelling per run: no leading zeros, lowercase only.
        if counter.is_empty()
            || counter.starts_with('0')
            || counter.len() > 12
            || !counter
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            return Err(bad());
        }
        u64::from_str_radix(counter, 36)
            .map(RunId)
            .map_err(|_| bad())
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.to_string()
    }
}

/// ACR's run statuses. `Error` is an infrastructure failure; `Failed` is the build's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Error,
    Timeout,
}

impl RunStatus {
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Error,
        RunStatus::Timeout,
    ];

    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Running => "Running",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
            RunStatus::Error => "Error",
            RunStatus::Timeout => "Timeout",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status '{0}': expected one of Queued, Running, Succeeded, Failed, Canceled, Error, Timeout")]
pub struct RunStatusError(String);

impl FromStr for RunStatus {
    type Err = RunStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| RunStatusError(s.to_string()))
    }
}

/// A target platform, `os/architecture[/variant]`, e.g. `linux/amd64`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform '{input}': {reason}")]
pub struct PlatformError {
    input: String,
    reason: &'static str,
}

const OSES: &[&str] = &["linux", "windows"];
const ARCHES: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64",
];

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PlatformError {
            input: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(err("expected os/architecture[/variant], e.g. linux/amd64")),
        };
        if !OSES.contains(&os) {
            return Err(err("os must be linux or windows"));
        }
        // Accept Docker's common aliases, but store the OCI spelling.
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        if !ARCHES.contains(&arch) {
            return Err(err(
                "unknown architecture (amd64, arm64, arm, 386, ppc64le, s390x, riscv64)",
            ));
        }
        if let Some(v) = variant {
            if !matches!(v, "v5" | "v6" | "v7" | "v8") {
                return Err(err("variant must be v5, v6, v7 or v8"));
            }
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: variant.map(str::to_string),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Platform {
    type Error = PlatformError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.to_string()
    }
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

/// The platforms one run builds: one or more, distinct, in the order given. Written as a
/// comma-separated list (`linux/amd64,linux/arm64`), so a single platform reads as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlatformSet(Vec<Platform>);

impl PlatformSet {
    pub fn single(platform: Platform) -> PlatformSet {
        PlatformSet(vec![platform])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Platform> {
        self.0.iter()
    }

    /// The first platform named: a set is never empty.
    pub fn first(&self) -> &Platform {
        &self.0[0]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a worker building `available` can build all of these.
    pub fn is_within(&self, available: &[Platform]) -> bool {
        self.0.iter().all(|p| available.contains(p))
    }
}

impl Default for PlatformSet {
    fn default() -> Self {
        PlatformSet::single(Platform::default())
    }
}

impl FromStr for PlatformSet {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut platforms: Vec<Platform> = Vec::new();
        for part in s.split(',').map(str::trim) {
            let p: Platform = part.parse()?;
            if platforms.contains(&p) {
                return Err(PlatformError {
                    input: s.to_string(),
                    reason: "a platform is named twice",
                });
            }
            platforms.push(p);
        }
        Ok(PlatformSet(platforms))
    }
}

impl fmt::Display for PlatformSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for PlatformSet {
    type Error = PlatformError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PlatformSet> for String {
    fn from(p: PlatformSet) -> String {
        p.to_string()
    }
}

/// A content digest, `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest '{0}': expected sha256:<64 lowercase hex digits>")]
pub struct DigestError(String);

impl Digest {
    /// The digest of SHA-256 output bytes.
    pub fn from_sha256(bytes: &[u8]) -> Digest {
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        Digest(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Digest(s.to_string()))
            }
            _ => Err(DigestError(s.to_string())),
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that never shows itself in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Credentials for one registry, handed to the worker that pushes there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryCredential {
    pub registry: String,
    pub username: String,
    pub password: Secret,
}

/// Where a run's build context comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum ContextSource {
    /// An archive uploaded to the server, stored by digest.
    Upload { digest: Digest },
    /// A git repository, cloned by the worker: `reference` is a branch, tag, commit SHA or
    /// `pull/<n>/head` (default: the remote's default branch); `subdir` the context folder in it.
    Git {
        url: String,
        #[serde(default)]
        reference: Option<String>,
        #[serde(default)]
        subdir: Option<String>,
    },
    /// A tar or tar.gz archive the worker downloads.
    Tarball { url: String },
}

impl ContextSource {
    /// The source as a user would write it, with any credentials in URLs masked.
    pub fn describe(&self) -> String {
        match self {
            ContextSource::Upload { digest } => format!("upload {digest}"),
            ContextSource::Git {
                url,
                reference,
                subdir,
            } => {
                let mut s = redact_url(url);
                if reference.is_some() || subdir.is_some() {
                    s.push('#');
                    s.push_str(reference.as_deref().unwrap_or(""));
                    if let Some(sub) = subdir {
                        s.push(':');
                        s.push_str(sub);
                    }
                }
                s
            }
            ContextSource::Tarball { url } => redact_url(url),
        }
    }
}

/// `https://user:pass@host/x` → `https://****@host/x`: URLs may carry credentials.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://****@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Everything a worker needs to build and push one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    pub context: ContextSource,
    /// The Dockerfile's path inside the context archive.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Several platforms make one image index under each tag.
    pub platforms: PlatformSet,
    pub no_cache: bool,
    /// Rendered, fully qualified image references; pushed when `push` is set.
    pub images: Vec<ImageRef>,
    pub push: bool,
}

/// What the server measured when a context was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextStats {
    pub size: u64,
    pub files: u64,
    pub upload_ms: u64,
}

/// Who is asking for work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Unique per worker process; a restarted worker gets a new one.
    pub id: String,
    /// Human-readable, shown in logs (`host-1`, `embedded-0`).
    pub name: String,
    /// Every platform the worker builds.
    pub platforms: Vec<Platform>,
    /// Those of `platforms` it builds only by emulation (slower): the server prefers a worker
    /// that builds a run's platforms natively when one is free.
    #[serde(default)]
    pub emulated: Vec<Platform>,
}

/// `POST /api/worker/lease`: wait up to `waitMs` for a run; 204 when none came.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRequest {
    pub worker: WorkerInfo,
    pub wait_ms: u64,
}

/// A run handed to a worker. `attempt` fences every later call: a stale attempt is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub run_id: RunId,
    pub attempt: u32,
    pub spec: BuildSpec,
    /// The worker must heartbeat at least this often, or the run is declared lost.
    pub heartbeat_interval_ms: u64,
    /// Milliseconds the build may still take before the run ends as Timeout.
    pub timeout_ms: u64,
    /// HTTP credentials for a private git context.
    #[serde(default)]
    pub git_token: Option<Secret>,
    /// Size and upload time of an uploaded context, for the run's summary line.
    #[serde(default)]
    pub context_stats: Option<ContextStats>,
    /// Where the worker's log upload starts (the server may have written lines before).
    pub log_offset: u64,
    pub credentials: Vec<RegistryCredential>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub attempt: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatReply {
    /// The user canceled the run: stop the build and report `Canceled`.
    pub cancel: bool,
}

/// `POST /api/worker/runs/{id}/logs?attempt=N&offset=M`: the body is appended at `offset`,
/// which makes a retried upload idempotent. The reply carries the log's new size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAppendReply {
    pub size: u64,
}

/// `POST /api/worker/runs/{id}/source`: the commit a git context resolved to. The server
/// renders the image names (which may use `<<.Run.Commit>>`) and answers with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceResolved {
    pub attempt: u32,
    pub commit: String,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReply {
    pub images: Vec<ImageRef>,
}

/// How a worker's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    Canceled,
    Timeout,
    Error,
}

impl From<Outcome> for RunStatus {
    fn from(o: Outcome) -> RunStatus {
        match o {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::Failed => RunStatus::Failed,
            Outcome::Canceled => RunStatus::Canceled,
            Outcome::Timeout => RunStatus::Timeout,
            Outcome::Error => RunStatus::Error,
        }
    }
}

/// One pushed tag and the manifest digest the registry stored for it: an image index when
/// the run built several platforms, with each platform's own manifest in `platforms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputImage {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDigest {
    pub platform: Platform,
    pub digest: Digest,
}

/// `POST /api/worker/runs/{id}/result`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub attempt: u32,
    pub outcome: Outcome,
    pub error_message: Option<String>,
    pub output_images: Vec<OutputImage>,
}

/// The JSON error body of every non-registry API endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

impl ApiErrorBody {
    /// The message of an error response body, or the body itself when it is not JSON (a proxy's page).
    pub fn message_of(body: &str) -> String {
        serde_json::from_str::<ApiErrorBody>(body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| body.trim().to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_count_in_base36() {
        let ids: Vec<String> = [1, 9, 10, 35, 36, 1295, 1296]
            .into_iter()
            .map(|n| RunId::from_seq(n).to_string())
            .collect();
        assert_eq!(ids, ["ca1", "ca9", "caa", "caz", "ca10", "cazz", "ca100"]);
        for n in [1u64, 35, 36, 99_999] {
            let id = RunId::from_seq(n);
            assert_eq!(id.to_string().parse::<RunId>(), Ok(id));
        }
    }

    #[test]
    fn run_id_rejects_other_spellings() {
        for bad in ["", "ca", "ca0", "ca01", "CA1", "caA", "xy1", "ca-1", "ca1 "] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms_parse_and_normalise() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            "linux/arm/v7".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        for bad in [
            "linux",
            "linux/amd64,linux/arm64",
            "plan9/amd64",
            "linux/sparc",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_sets_parse_as_comma_lists() {
        let set: PlatformSet = "linux/amd64, linux/arm64".parse().unwrap();
        assert_eq!(set.to_string(), "linux/amd64,linux/arm64");
        assert_eq!(set.first().to_string(), "linux/amd64");
        assert!(set.is_within(&["linux/arm64".parse().unwrap(), Platform::default()]));
        assert!(!set.is_within(&[Platform::default()]));
        assert!("linux/amd64,linux/amd64".parse::<PlatformSet>().is_err());
        assert!("linux/amd64,".parse::<PlatformSet>().is_err());
        assert!("".parse::<PlatformSet>().is_err());
    }

    #[test]
    fn digests_are_validated() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ok.parse::<Digest>().unwrap().hex(), "a".repeat(64));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "A".repeat(64))
            .parse::<Digest>()
            .is_err());
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
    }

    #[test]
    fn urls_lose_their_credentials_in_descriptions() {
        assert_eq!(
            redact_url("https://u:tok@git.example.com/a.git"),
            "https://****@git.example.com/a.git"
        );
        assert_eq!(redact_url("https://host/a@b.git"), "https://host/a@b.git");
        let git = ContextSource::Git {
            url: "https://tok@host/r.git".into(),
            reference: Some("main".into()),
            subdir: Some("app".into()),
        };
        assert_eq!(git.describe(), "https://****@host/r.git#main:app");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let c = RegistryCredential {
            registry: "r".into(),
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
