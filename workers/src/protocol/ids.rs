//! Identifiers: run IDs, run statuses and content digests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
/// `Expired` is Cloud Build's: no worker took the run within its queue timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Error,
    Timeout,
    Expired,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Error,
        RunStatus::Timeout,
        RunStatus::Expired,
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
            RunStatus::Expired => "Expired",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status '{0}': expected one of Queued, Running, Succeeded, Failed, Canceled, Error, Timeout, Expired")]
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
    fn digests_are_validated() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ok.parse::<Digest>().unwrap().hex(), "a".repeat(64));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "A".repeat(64))
            .parse::<Digest>()
            .is_err());
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
    }
}
