//! Telling git hosts' deliveries apart by their headers, and checking their signatures over
//! the raw body, in constant time, before anything in it is read.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The git host that sent a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
    Forgejo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
        }
    }

    /// Whether the payloads are GitHub's shape (Gitea and Forgejo copy it).
    pub fn github_shaped(self) -> bool {
        self != Provider::GitLab
    }
}

/// What proves a delivery came from whoever holds the task's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// HMAC-SHA256 of the body with the secret, hex (GitHub without its `sha256=`).
    Hmac(String),
    /// The secret itself (GitLab's `X-Gitlab-Token`).
    Token(String),
    Missing,
}

/// A delivery's headers, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub provider: Provider,
    /// The event as the provider names it: `push`, `pull_request`, `Push Hook`...
    pub event: String,
    /// The provider's delivery ID; `None` when it sent none.
    pub delivery_id: Option<String>,
    pub proof: Proof,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn first(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| header(headers, n))
        .map(str::to_owned)
}

/// Which host sent the delivery, from its event header. Forgejo and Gitea are asked first:
/// they also send GitHub's headers.
pub fn envelope(headers: &HeaderMap) -> Option<Envelope> {
    let github_hmac = || {
        header(headers, "x-hub-signature-256")
            .and_then(|s| s.strip_prefix("sha256="))
            .map(|s| Proof::Hmac(s.to_owned()))
    };
    let hmac = |names: &[&str]| first(headers, names).map(Proof::Hmac);
    let (provider, event, delivery_id, proof) =
        if let Some(event) = header(headers, "x-forgejo-event") {
            (
                Provider::Forgejo,
                event,
                first(headers, &["x-forgejo-delivery", "x-gitea-delivery"]),
                hmac(&["x-forgejo-signature", "x-gitea-signature"]).or_else(github_hmac),
            )
        } else if let Some(event) = header(headers, "x-gitea-event") {
            (
                Provider::Gitea,
                event,
                first(headers, &["x-gitea-delivery"]),
                hmac(&["x-gitea-signature"]).or_else(github_hmac),
            )
        } else if let Some(event) = header(headers, "x-gitlab-event") {
            (
                Provider::GitLab,
                event,
                // Idempotency-Key stays the same when GitLab retries; the event UUID is older.
                first(headers, &["idempotency-key", "x-gitlab-event-uuid"]),
                first(headers, &["x-gitlab-token"]).map(Proof::Token),
            )
        } else if let Some(event) = header(headers, "x-github-event") {
            (
                Provider::GitHub,
                event,
                first(headers, &["x-github-delivery"]),
                github_hmac(),
            )
        } else {
            return None;
        };
    Some(Envelope {
        provider,
        event: event.to_owned(),
        delivery_id,
        proof: proof.unwrap_or(Proof::Missing),
    })
}

/// Whether `proof` shows the body was sent by whoever holds `secret`. Both comparisons take
/// the same time whatever differs.
pub fn verify(secret: &str, body: &[u8], proof: &Proof) -> bool {
    match proof {
        Proof::Hmac(hex_sig) => {
            let Ok(sig) = hex::decode(hex_sig) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
        Proof::Token(token) => token.as_bytes().ct_eq(secret.as_bytes()).into(),
        Proof::Missing => false,
    }
}

/// `sha256=<hex>`: GitHub's signature of `body` with `secret`, as tests and senders make it.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// The hex HMAC-SHA256 of `body` with `secret` (Gitea's and Forgejo's signature).
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    /// GitHub's documented test vector (validating-webhook-deliveries).
    #[test]
    fn github_s_documented_signature_verifies() {
        let secret = "It's a Secret to Everybody";
        let sig = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            github_signature(secret, b"Hello, World!"),
            format!("sha256={sig}")
        );
        assert!(verify(secret, b"Hello, World!", &Proof::Hmac(sig.into())));
        assert!(!verify(secret, b"Hello, World?", &Proof::Hmac(sig.into())));
        assert!(!verify("other", b"Hello, World!", &Proof::Hmac(sig.into())));
        assert!(!verify(secret, b"Hello, World!", &Proof::Hmac("zz".into())));
        assert!(!verify(secret, b"Hello, World!", &Proof::Missing));
    }

    #[test]
    fn a_gitlab_token_must_equal_the_secret() {
        assert!(verify("s3cret", b"{}", &Proof::Token("s3cret".into())));
        assert!(!verify("s3cret", b"{}", &Proof::Token("s3cre".into())));
        assert!(!verify("s3cret", b"{}", &Proof::Token("s3cret!".into())));
    }

    #[test]
    fn providers_are_told_apart_by_their_headers() {
        let gh = envelope(&headers(&[
            ("x-github-event", "push"),
            ("x-github-delivery", "d1"),
            ("x-hub-signature-256", "sha256=abcd"),
        ]))
        .unwrap();
        assert_eq!(gh.provider, Provider::GitHub);
        assert_eq!(gh.event, "push");
        assert_eq!(gh.delivery_id.as_deref(), Some("d1"));
        assert_eq!(gh.proof, Proof::Hmac("abcd".into()));

        // Gitea sends GitHub's headers too: its own win.
        let gitea = envelope(&headers(&[
            ("x-github-event", "push"),
            ("x-hub-signature-256", "sha256=abcd"),
            ("x-gitea-event", "push"),
            ("x-gitea-delivery", "g1"),
            ("x-gitea-signature", "ef01"),
        ]))
        .unwrap();
        assert_eq!(gitea.provider, Provider::Gitea);
        assert_eq!(gitea.delivery_id.as_deref(), Some("g1"));
        assert_eq!(gitea.proof, Proof::Hmac("ef01".into()));

        let forgejo = envelope(&headers(&[
            ("x-forgejo-event", "pull_request"),
            ("x-forgejo-delivery", "f1"),
            ("x-forgejo-signature", "99"),
        ]))
        .unwrap();
        assert_eq!(forgejo.provider, Provider::Forgejo);
        assert_eq!(forgejo.proof, Proof::Hmac("99".into()));

        let gl = envelope(&headers(&[
            ("x-gitlab-event", "Push Hook"),
            ("x-gitlab-event-uuid", "u1"),
            ("x-gitlab-token", "tok"),
        ]))
        .unwrap();
        assert_eq!(gl.provider, Provider::GitLab);
        assert_eq!(gl.event, "Push Hook");
        assert_eq!(gl.delivery_id.as_deref(), Some("u1"));
        assert_eq!(gl.proof, Proof::Token("tok".into()));

        let unsigned = envelope(&headers(&[("x-github-event", "push")])).unwrap();
        assert_eq!(unsigned.proof, Proof::Missing);
        assert_eq!(envelope(&headers(&[("content-type", "json")])), None);
    }
}
