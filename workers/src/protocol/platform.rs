//! Target platforms: one platform, and the set of platforms one run builds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
