//! One registry spoken to over HTTP by a purge or a scan: plain HTTP for loopback registries
//! (as Docker does), HTTPS otherwise; Basic credentials, or Docker's token flow when the
//! registry challenges with `Bearer realm=…` (a token per scope, fetched again when it runs
//! out).
//!
//! oci-client, which the worker uses to push indexes, has no catalog pagination by `Link`,
//! no manifest deletion, no `delete` scope and no way to call Kiln's `/acr/v1` API, so purges
//! and scans use reqwest directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, LINK, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::protocol::RegistryCredential;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Every manifest kind a purge or a scan reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.artifact.manifest.v1+json";

/// Media types of indexes (their `manifests[]` are children: platforms' images).
pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// A failed call. The text never holds credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The registry answered with an error status.
    #[error("{method} {path}: HTTP status {status}{detail}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        /// `: <message>` from the registry's error envelope, or empty.
        detail: String,
    },
    /// No answer (connection refused, timeout) or an unreadable one.
    #[error("{method} {path}: {message}")]
    Transport {
        method: Method,
        path: String,
        message: String,
    },
}

impl HttpError {
    /// The status, for an answer with an error status.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport { .. } => None,
        }
    }
}

/// A successful answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Transport {
            method: Method::GET,
            path: path.to_owned(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// The next page's path and query from a `Link: <…>; rel="next"` header, if any.
    pub fn next_page(&self) -> Option<String> {
        next_link(self.headers.get(LINK)?.to_str().ok()?)
    }

    /// The `Docker-Content-Digest` header.
    pub fn digest(&self) -> Option<String> {
        let value = self.headers.get("docker-content-digest")?.to_str().ok()?;
        Some(value.trim().to_owned())
    }

    /// The `Content-Type` header without parameters.
    pub fn content_type(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?.to_str().ok()?;
        Some(value.split(';').next()?.trim().to_owned())
    }
}

/// The path and query of a `Link` header's target: registries send a path
/// (`</v2/_catalog?last=a&n=100>; rel="next"`), some an absolute URL.
pub fn next_link(header: &str) -> Option<String> {
    let start = header.find('<')? + 1;
    let end = start + header[start..].find('>')?;
    let target = &header[start..end];
    match target.find("://") {
        Some(scheme) => {
            let rest = &target[scheme + 3..];
            Some(rest[rest.find('/')?..].to_owned())
        }
        None => Some(target.to_owned()),
    }
}

/// A request's body.
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// A registry with its credentials and the tokens it issued during this purge or scan.
pub struct RegistryHttp {
    base: String,
    client: reqwest::Client,
    basic: Option<(String, String)>,
    /// Learned from a `Basic` challenge (or set for Kiln, which takes Basic everywhere):
    /// send the credentials with every request instead of being challenged each time.
    preemptive_basic: AtomicBool,
    /// Bearer tokens by the scope they were asked for.
    tokens: Mutex<HashMap<String, String>>,
}

impl RegistryHttp {
    /// A client for `registry` (`host[:port]`) with the matching credential, if any.
    pub fn new(registry: &str, credentials: &[RegistryCredential]) -> Result<Self, String> {
        let scheme = if crate::index::is_loopback(registry) {
            "http"
        } else {
            "https"
        };
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot set up an HTTP client: {e}"))?;
        let basic = credentials
            .iter()
            .find(|c| c.registry == registry)
            .map(|c| (c.username.clone(), c.password.expose().to_owned()));
        Ok(RegistryHttp {
            base: format!("{scheme}://{registry}"),
            client,
            basic,
            preemptive_basic: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Sends Basic credentials with every request from now on.
    pub fn use_basic(&self) {
        self.preemptive_basic
            .store(self.basic.is_some(), Ordering::Relaxed);
    }

    /// `GET path` (with its query) for `scope`.
    pub async fn get(
        &self,
        path: &str,
        scope: &str,
        accept: Option<&str>,
    ) -> Result<Answer, HttpError> {
        self.send(Method::GET, path, scope, accept, None).await
    }

    /// Sends a request, answering one authentication challenge: a `Bearer` challenge by
    /// fetching a token for the challenge's scope (else `scope`), a `Basic` one with the
    /// credentials. Error statuses come back as [`HttpError::Status`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        accept: Option<&str>,
        body: Option<&Body>,
    ) -> Result<Answer, HttpError> {
        let response = self.respond(&method, path, scope, accept, body).await?;
        read(method, path, response).await
    }

    /// `GET path` for `scope`, its body left to stream (a layer blob): an error status comes
    /// back as [`HttpError::Status`], a success as the response whose body is not read yet.
    pub async fn get_streaming(
        &self,
        path: &str,
        scope: &str,
    ) -> Result<reqwest::Response, HttpError> {
        let response = self.respond(&Method::GET, path, scope, None, None).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        Err(HttpError::Status {
            method: Method::GET,
            path: path.to_owned(),
            status,
            detail: error_detail(&body),
        })
    }

    /// Sends a request, answering one authentication challenge (see [`RegistryHttp::send`]);
    /// the body is not read.
    async fn respond(
        &self,
        method: &Method,
        path: &str,
        scope: &str,
        accept: Option<&str>,
        body: Option<&Body>,
    ) -> Result<reqwest::Response, HttpError> {
        let method = method.clone();
        let first = self.attempt(&method, path, scope, accept, body).await?;
        let response = if first.status() == StatusCode::UNAUTHORIZED {
            let challenge = first
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match challenge.as_deref().map(Challenge::parse) {
                Some(Some(Challenge::Bearer {
                    realm,
                    service,
                    scope: asked,
                })) => {
                    let token_scope = asked.unwrap_or_else(|| scope.to_owned());
                    let token = self
                        .fetch_token(&realm, service.as_deref(), &token_scope)
                        .await?;
                    self.tokens.lock().unwrap().insert(scope.to_owned(), token);
                    self.attempt(&method, path, scope, accept, body).await?
                }
                Some(Some(Challenge::Basic)) if self.basic.is_some() => {
                    self.use_basic();
                    self.attempt(&method, path, scope, accept, body).await?
                }
                _ => first,
            }
        } else {
            first
        };
        Ok(response)
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        scope: &str,
        accept: Option<&str>,
        body: Option<&Body>,
    ) -> Result<reqwest::Response, HttpError> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, body.content_type)
                .body(body.bytes.clone());
        }
        let token = self.tokens.lock().unwrap().get(scope).cloned();
        if let Some(token) = token {
            request = request.bearer_auth(token);
        } else if let Some((user, password)) = self
            .basic
            .as_ref()
            .filter(|_| self.preemptive_basic.load(Ordering::Relaxed))
        {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await.map_err(|e| HttpError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// A token from the registry's token server for `scope` (Docker's token protocol).
    pub async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, HttpError> {
        let mut query: Vec<(&str, &str)> = scope.split_whitespace().map(|s| ("scope", s)).collect();
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut request = self.client.get(realm).query(&query);
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let path = format!("{realm} (token for {scope})");
        let response = request.send().await.map_err(|e| HttpError::Transport {
            method: Method::GET,
            path: path.clone(),
            message: e.to_string(),
        })?;
        let answer = read(Method::GET, &path, response).await?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenAnswer = answer.json(&path)?;
        parsed
            .token
            .or(parsed.access_token)
            .ok_or_else(|| HttpError::Transport {
                method: Method::GET,
                path,
                message: "the token server answered without a token".into(),
            })
    }

    /// The `Bearer` challenge the registry answers an anonymous `GET /v2/` with, if any.
    pub async fn bearer_challenge(&self) -> Result<Option<(String, Option<String>)>, HttpError> {
        let response = self
            .client
            .get(format!("{}/v2/", self.base))
            .send()
            .await
            .map_err(|e| HttpError::Transport {
                method: Method::GET,
                path: "/v2/".into(),
                message: e.to_string(),
            })?;
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse);
        Ok(match challenge {
            Some(Challenge::Bearer { realm, service, .. }) => Some((realm, service)),
            _ => None,
        })
    }
}

/// Page size asked of `_catalog` and `tags/list` (registries may answer fewer).
pub const PAGE: usize = 1000;

/// Every repository name in the registry's catalog.
pub async fn catalog(http: &RegistryHttp) -> Result<Vec<String>, HttpError> {
    #[derive(serde::Deserialize)]
    struct Page {
        repositories: Option<Vec<String>>,
    }
    let first = format!("/v2/_catalog?n={PAGE}");
    paged(http, first, "registry:catalog:*", |p: Page| p.repositories).await
}

/// Every tag of repository `name` (none if it was emptied since the catalog was read).
pub async fn tags(http: &RegistryHttp, name: &str, scope: &str) -> Result<Vec<String>, HttpError> {
    #[derive(serde::Deserialize)]
    struct Page {
        tags: Option<Vec<String>>,
    }
    let first = format!("/v2/{name}/tags/list?n={PAGE}");
    match paged(http, first, scope, |p: Page| p.tags).await {
        Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(Vec::new()),
        other => other,
    }
}

/// The names of every page from `path` on, following `Link` headers.
async fn paged<P: DeserializeOwned>(
    http: &RegistryHttp,
    mut path: String,
    scope: &str,
    names: impl Fn(P) -> Option<Vec<String>>,
) -> Result<Vec<String>, HttpError> {
    let mut all = Vec::new();
    loop {
        let answer = http.get(&path, scope, None).await?;
        let page: P = answer.json(&path)?;
        all.extend(names(page).unwrap_or_default());
        match answer.next_page() {
            Some(next) => path = next,
            None => return Ok(all),
        }
    }
}

async fn read(
    method: Method,
    path: &str,
    response: reqwest::Response,
) -> Result<Answer, HttpError> {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| HttpError::Transport {
        method: method.clone(),
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if status.is_success() {
        return Ok(Answer { headers, body });
    }
    Err(HttpError::Status {
        method,
        path: path.to_owned(),
        status,
        detail: error_detail(&body),
    })
}

/// `: <message>` from an OCI error envelope (`{"errors":[{"code","message"}]}`) or Kiln's
/// API envelope (`{"error":{"code","message"}}`), else empty.
fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Option<Vec<Item>>,
        error: Option<Item>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return String::new();
    };
    let items = envelope.errors.unwrap_or_default();
    let item = items.into_iter().next().or(envelope.error);
    match item {
        Some(Item { code, message }) => {
            let text: Vec<String> = [code, message].into_iter().flatten().collect();
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", text.join(" "))
            }
        }
        None => String::new(),
    }
}

/// An authentication challenge a purge can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Docker's token flow.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Plain Basic credentials.
    Basic,
}

impl Challenge {
    /// The first Bearer or Basic challenge of a `WWW-Authenticate` value.
    pub fn parse(header: &str) -> Option<Challenge> {
        let challenges = http_auth::parse_challenges(header).ok()?;
        challenges.iter().find_map(|c| {
            if c.scheme.eq_ignore_ascii_case("basic") {
                return Some(Challenge::Basic);
            }
            if !c.scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            Some(Challenge::Bearer {
                realm: param("realm")?,
                service: param("service"),
                scope: param("scope"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_send_them() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="http://127.0.0.1:8080/token",service="127.0.0.1:8080",scope="repository:app/web:pull,delete""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:8080/token".into(),
                service: Some("127.0.0.1:8080".into()),
                scope: Some("repository:app/web:pull,delete".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse(r#"Negotiate"#), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn link_headers_give_the_next_path() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=100>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=100")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?n=2&last=x>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=x")
        );
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn error_envelopes_give_their_message() {
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"DENIED","message":"tag app:v1 is locked"}]}"#),
            ": DENIED tag app:v1 is locked"
        );
        assert_eq!(
            error_detail(br#"{"error":{"code":"FORBIDDEN","message":"no"}}"#),
            ": FORBIDDEN no"
        );
        assert_eq!(error_detail(b"<html>"), "");
    }
}
