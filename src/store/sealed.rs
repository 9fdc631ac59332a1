//! Secrets at rest: a run's git access token, the credentials in its context URL and its
//! build-arg values are sealed (ChaCha20-Poly1305) with a key kept outside the database, and
//! dropped when the run ends. A known value sealed with the key is stored too, so a start with
//! another key fails at once instead of failing to open secrets later.

use std::collections::BTreeMap;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kiln_worker::protocol::{redact_url, BuildSpec, ContextSource, Secret, StepsJob};
use serde::{Deserialize, Serialize};

use super::jobs::StoredJob;
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
    /// A steps job as compiled, secrets and all (JSON); the `spec` column keeps a copy with
    /// every secret value replaced by `***`.
    #[serde(default)]
    steps_job: Option<String>,
}

impl RunSecrets {
    /// Takes the secrets out of a stored job (see `split` and `split_steps`).
    pub(super) fn split_job(
        job: &mut StoredJob,
        git_token: Option<&Secret>,
    ) -> Result<RunSecrets, StoreError> {
        match job {
            StoredJob::Build(spec) => Ok(RunSecrets::split(spec, git_token)),
            StoredJob::Steps(steps) => RunSecrets::split_steps(steps, git_token),
            // A purge's or a scan's words hold no secrets; the registry credentials are the
            // server's.
            StoredJob::Purge(_) | StoredJob::Scan(_) => Ok(RunSecrets {
                git_token: None,
                build_args: BTreeMap::new(),
                context_url: None,
                steps_job: None,
            }),
        }
    }

    /// Keeps the whole job sealed and leaves a copy in which every secret value (the job's
    /// `masked` values, secret volume files, context URL credentials) reads `***`.
    fn split_steps(
        job: &mut StepsJob,
        git_token: Option<&Secret>,
    ) -> Result<RunSecrets, StoreError> {
        let full = serde_json::to_string(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut secrets: Vec<String> = job
            .masked
            .iter()
            .chain(job.volumes.iter().flat_map(|v| v.files.values()))
            .map(|s| s.expose().to_string())
            .chain(git_token.map(|t| t.expose().to_string()))
            .filter(|s| !s.is_empty())
            .collect();
        let mut context_url = None;
        if let Some(ContextSource::Git { url, .. } | ContextSource::Tarball { url }) =
            &mut job.context
        {
            let masked = redact_url(url);
            if masked != *url {
                context_url = Some(std::mem::replace(url, masked));
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut value =
            serde_json::to_value(&*job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        mask_strings(&mut value, &secrets);
        *job = serde_json::from_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for volume in &mut job.volumes {
            for file in volume.files.values_mut() {
                *file = Secret::new(MASK);
            }
        }
        Ok(RunSecrets {
            git_token: git_token.map(|s| s.expose().to_string()),
            build_args: BTreeMap::new(),
            context_url,
            steps_job: Some(full),
        })
    }

    /// Puts the secrets back into a stored job; returns the git token.
    pub(super) fn merge_job(self, job: &mut StoredJob) -> Result<Option<Secret>, StoreError> {
        match job {
            StoredJob::Build(spec) => Ok(self.merge(spec)),
            StoredJob::Steps(steps) => {
                if let Some(full) = &self.steps_job {
                    *steps = serde_json::from_str(full)
                        .map_err(|e| StoreError::Corrupt(format!("sealed steps job: {e}")))?;
                }
                Ok(self.git_token.map(Secret::new))
            }
            StoredJob::Purge(_) | StoredJob::Scan(_) => Ok(self.git_token.map(Secret::new)),
        }
    }

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
            steps_job: None,
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

/// What a secret value reads as wherever it is stored or shown.
const MASK: &str = "***";

fn mask_strings(value: &mut serde_json::Value, secrets: &[String]) {
    match value {
        serde_json::Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), MASK);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| mask_strings(v, secrets)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| mask_strings(v, secrets)),
        _ => {}
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

    #[test]
    fn a_steps_job_is_stored_with_its_secrets_masked_and_comes_back_whole() {
        let original: StepsJob = serde_json::from_value(serde_json::json!({
            "context": {"kind": "tarball", "url": "https://u:pw@example.com/c.tar"},
            "platforms": "linux/amd64",
            "steps": [{
                "id": "login", "timeoutSecs": 60, "workingDirectory": "/workspace",
                "action": {"type": "cmd", "image": "busybox", "args": ["echo", "tok-s3cret"]},
                "env": ["PW=tok-s3cret"]
            }],
            "volumes": [{"name": "v", "files": {"key": "file-secret"}}],
            "masked": ["tok-s3cret"]
        }))
        .unwrap();
        let mut job = StoredJob::Steps(original.clone());
        let secrets = RunSecrets::split_job(&mut job, None).unwrap();
        let stored = job.to_json().unwrap();
        for secret in ["tok-s3cret", "file-secret", "pw@"] {
            assert!(!stored.contains(secret), "{secret} in {stored}");
        }
        assert!(stored.contains("PW=***"), "{stored}");
        secrets.merge_job(&mut job).unwrap();
        let StoredJob::Steps(back) = job else {
            panic!("not steps")
        };
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&original).unwrap()
        );
    }
}
