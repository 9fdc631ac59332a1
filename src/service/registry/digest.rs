//! Content digests the registry can verify: `sha256:<64 hex>` and `sha512:<128 hex>`, the
//! algorithms the OCI image specification registers, and the running hash that checks one.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use super::RegistryError;

/// A digest algorithm Kiln verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name in a digest, and the folder its blobs live in.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn named(name: &str) -> Option<Algorithm> {
        [Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// A validated digest of a supported algorithm, `<algorithm>:<lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    text: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The hex part, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(Algorithm::Sha256);
        hasher.update(bytes);
        hasher.finish()
    }
}

impl FromStr for Digest {
    type Err = RegistryError;

    /// A well-formed digest of another algorithm is `Unsupported`; anything else that is not a
    /// valid sha256 or sha512 digest is `DigestInvalid`.
    fn from_str(s: &str) -> Result<Digest, RegistryError> {
        let invalid = || RegistryError::DigestInvalid(format!("invalid digest '{s}'"));
        let (name, encoded) = s.split_once(':').ok_or_else(invalid)?;
        let Some(algorithm) = Algorithm::named(name) else {
            return Err(if well_formed(name, encoded) {
                RegistryError::Unsupported(format!(
                    "digest algorithm '{name}' of '{s}' is not supported: use sha256 or sha512"
                ))
            } else {
                invalid()
            });
        };
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if encoded.len() == algorithm.hex_len() && encoded.bytes().all(hex) {
            Ok(Digest {
                algorithm,
                text: s.to_string(),
            })
        } else {
            Err(RegistryError::DigestInvalid(format!(
                "invalid digest '{s}': {name} takes {} lowercase hex digits",
                algorithm.hex_len()
            )))
        }
    }
}

/// The distribution spec's digest grammar: `algorithm ":" encoded`.
fn well_formed(algorithm: &str, encoded: &str) -> bool {
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A running hash of one algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest {
            algorithm,
            text: format!("{}:{hex}", algorithm.as_str()),
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_sha512_digests_parse() {
        let sha256 = format!("sha256:{}", "a".repeat(64));
        let d: Digest = sha256.parse().unwrap();
        assert_eq!(
            (d.algorithm(), d.hex()),
            (Algorithm::Sha256, &*"a".repeat(64))
        );
        let sha512 = format!("sha512:{}", "b".repeat(128));
        let d: Digest = sha512.parse().unwrap();
        assert_eq!(
            (d.algorithm(), d.hex()),
            (Algorithm::Sha512, &*"b".repeat(128))
        );
        assert_eq!(d.to_string(), sha512);
    }

    #[test]
    fn other_algorithms_are_unsupported_and_bad_digests_invalid() {
        let hex = "a".repeat(64);
        assert!(matches!(
            format!("sha384:{}", "a".repeat(96)).parse::<Digest>(),
            Err(RegistryError::Unsupported(_))
        ));
        for bad in [
            format!("sha512:{hex}"),
            format!("sha256:{}", "A".repeat(64)),
            "sha256:../../etc/passwd".to_string(),
            "sha256".to_string(),
            "bad:".to_string(),
            format!("SHA256:{hex}"),
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(RegistryError::DigestInvalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hashers_name_their_algorithm() {
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert!(d.hex().starts_with("ddaf35a193617aba"), "{d}");
        assert_eq!(
            Digest::sha256_of(b"abc").as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
