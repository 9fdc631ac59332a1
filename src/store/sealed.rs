//! Secrets at rest: a run's git access token, the credentials in its context URL and its
//! build-arg values are sealed (ChaCha20-Poly1305) with a key kept outside the database, and
//! dropped when the run ends. A known value sealed with the key is stored too, so a start with
//! another key fails at once instead of failing to open secrets later.

use std::collections::BTreeMap;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kiln_worker::protocol::{redact_url, BuildSpec, ContextSource, Secret};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What the key check seals.
const CHECK: &[u8] = b"kiln secret key check";
const NONCE_LEN: usize = 12;

/// Seals and opens secrets with the server's 32-byte key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// A random nonce per value, stored before the ciphertext, all in base64.
    pub(super) fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).expect("the operating system's random source works");
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("sealing a small value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// `None` when the value was sealed with another key or is damaged.
    pub(super) fn open(&self, text: &str) -> Option<Vec<u8>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), sealed).ok()
    }

    pub(super) fn check_value(&self) -> String {
        self.seal(CHECK)
    }

    pub(super) fn opens_check(&self, sealed: &str) -> bool {
        self.open(sealed).as_deref() == Some(CHECK)
    }
}

/// A run's secrets, sealed as one JSON value in `runs.secrets`.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunSecrets {
    #[serde(default)]
    git_token: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    /// The context URL with its credentials; the spec keeps it masked.
    #[serde(default)]
    context_url: Option<String>,
}

impl RunSecrets {
    /// Takes the secrets out of a spec: build-arg values are emptied (names stay) and a
    /// context URL with credentials is masked.
    pub(super) fn split(spec: &mut BuildSpec, git_token: Option<&Secret>) -> RunSecrets {
        let build_args = spec
            .build_args
            .iter_mut()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), std::mem::take(v)))
            .collect();
        let context_url = match &mut spec.context {
            ContextSource::Git { url, .. } | ContextSource::Tarball { url } => {
                let masked = redact_url(url);
                (masked != *url).then(|| std::mem::replace(url, masked))
            }
            ContextSource::Upload { .. } => None,
        };
        RunSecrets {
            git_token: git_token.map(|s| s.expose().to_string()),
            build_args,
            context_url,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        *self == RunSecrets::default()
    }

    /// Puts the secrets back into the spec; returns the git token.
    pub(super) fn merge(self, spec: &mut BuildSpec) -> Option<Secret> {
        spec.build_args.extend(self.build_args);
        if let (Some(full), ContextSource::Git { url, .. } | ContextSource::Tarball { url }) =
            (self.context_url, &mut spec.context)
        {
            *url = full;
        }
        self.git_token.map(Secret::new)
    }

    pub(super) fn seal(&self, sealer: &Sealer) -> Result<Option<String>, StoreError> {
        if self.is_empty() {
            return Ok(None);
        }
        let json = serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(sealer.seal(&json)))
    }

    pub(super) fn open(sealer: &Sealer, text: &str) -> Result<RunSecrets, StoreError> {
        let json = sealer
            .open(text)
            .ok_or_else(|| StoreError::Corrupt("a run's sealed secrets do not open".into()))?;
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("run secrets: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let a = Sealer::new(&[1; 32]);
        let sealed = a.seal(b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(a.open(&sealed).as_deref(), Some(&b"hunter2"[..]));
        assert_ne!(a.seal(b"hunter2"), sealed, "a fresh nonce each time");
        let b = Sealer::new(&[2; 32]);
        assert_eq!(b.open(&sealed), None);
        assert!(a.opens_check(&a.check_value()));
        assert!(!b.opens_check(&a.check_value()));
    }

    #[test]
    fn secrets_leave_the_spec_and_come_back() {
        let mut spec: BuildSpec = serde_json::from_value(serde_json::json!({
            "context": {"kind": "tarball", "url": "https://u:pw@example.com/c.tar"},
            "dockerfile": "Dockerfile", "buildArgs": {"SECRET": "s3", "EMPTY": ""},
            "target": null, "platforms": "linux/amd64", "noCache": false, "push": false,
            "images": []
        }))
        .unwrap();
        let original = spec.clone();
        let secrets = RunSecrets::split(&mut spec, Some(&Secret::new("tok")));
        let stored = serde_json::to_string(&spec).unwrap();
        assert!(!stored.contains("s3") && !stored.contains("pw"), "{stored}");
        assert_eq!(secrets.merge(&mut spec).unwrap().expose(), "tok");
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::to_value(&original).unwrap()
        );
    }
}
