//! Authentication for every route but `/healthz` and `/token`: the middleware resolves the
//! request's credentials into a `Principal` once, and handlers take it as an extractor to
//! authorise.
//!
//! The API (`/api/…`) refuses a request without good credentials with the JSON `ApiError`.
//! The registry (`/v2/…`, and ACR's metadata API `/acr/…`) lets a request without
//! credentials through as `Anonymous`, so that its handler can answer 401 with the scope it
//! needs, and turns every 401 into Docker's token challenge: `WWW-Authenticate: Bearer realm=…/token,service=…,scope=…`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use kiln_worker::protocol::Secret;

use super::error::ApiError;
use super::oci_error::{ChallengeScope, OciError};
use super::App;
use crate::access::{AccessError, Principal};
use crate::service::auth::{AuthError, Credentials};

pub async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // ACR's metadata API (`/acr/v1/`) lives on the registry host and takes its credentials.
    let registry = path == "/v2" || path.starts_with("/v2/") || path.starts_with("/acr/");
    let challenge = registry.then(|| Challenge::new(&app, req.headers()));
    let outcome = match (credentials(req.headers()), registry) {
        (Ok(None), true) => Ok(Principal::Anonymous),
        (Ok(None), false) => Err(AuthError::Unauthenticated("no token given".into())),
        (Ok(Some(creds)), true) => app.auth.authenticate_registry(&creds).await,
        (Ok(Some(creds)), false) => app.auth.authenticate_api(&creds).await,
        (Err(e), _) => Err(e),
    };
    let mut scoped = false;
    let resp = match outcome {
        Ok(principal) => {
            scoped = matches!(principal, Principal::Scoped { .. });
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) if registry => OciError::from(e).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    match challenge {
        Some(challenge) if resp.status() == StatusCode::UNAUTHORIZED => {
            challenge.apply(resp, scoped)
        }
        _ => resp,
    }
}

/// The `Authorization` header's credentials; `None` without one.
pub(super) fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        AuthError::Unauthenticated(
            "malformed Authorization header: expected 'Bearer <token>' or 'Basic <base64>'".into(),
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Some(Credentials::Bearer(Secret::new(rest))));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(malformed)?;
    let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some(Credentials::Basic {
        username: username.to_string(),
        password: Secret::new(password),
    }))
}

/// The registry's `host[:port]` as clients name it in image references: `--public-url`'s,
/// else the request's Host header.
pub(super) fn registry_host(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.public_url {
        let host = url.split_once("://").map_or(&**url, |(_, rest)| rest);
        return host.trim_end_matches('/').to_string();
    }
    // The Host header is the client's own; anything that could break out of a quoted
    // challenge parameter is not used.
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost")
        .to_string()
}

/// Where Docker should fetch a registry token: this server's `/token`, as the client reached
/// it (or as `--public-url` says, behind a proxy).
struct Challenge {
    realm: String,
    service: String,
}

impl Challenge {
    fn new(app: &App, headers: &HeaderMap) -> Challenge {
        let service = registry_host(app, headers);
        let realm = match &app.public_url {
            Some(url) => format!("{url}/token"),
            None => format!("http://{service}/token"),
        };
        Challenge { realm, service }
    }

    /// `scoped`: the request carried a registry token, so a 401 naming a scope means that
    /// token's scope fell short, which RFC 6750 calls `insufficient_scope`.
    fn apply(self, mut resp: Response, scoped: bool) -> Response {
        let mut value = format!(
            r#"Bearer realm="{}",service="{}""#,
            self.realm, self.service
        );
        if let Some(ChallengeScope(Some(scope))) = resp.extensions().get::<ChallengeScope>() {
            value.push_str(&format!(r#",scope="{scope}""#));
            if scoped {
                value.push_str(r#",error="insufficient_scope""#);
            }
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        resp
    }
}

impl From<AuthError> for OciError {
    fn from(e: AuthError) -> OciError {
        match e {
            AuthError::Unauthenticated(m) => OciError::unauthorized(m, None),
            AuthError::Invalid(m) | AuthError::Conflict(m) => {
                OciError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", m)
            }
            AuthError::NotFound(m) => OciError::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", m),
            AuthError::Access(AccessError::Denied(m)) => OciError::denied(m),
            AuthError::Access(e) => OciError::unauthorized(e.to_string(), None),
            e @ AuthError::Store(_) => {
                tracing::error!(error = %e, "authentication failed");
                OciError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal server error: see the server's log",
                )
            }
        }
    }
}

/// Handlers take the principal the middleware resolved; a route outside the middleware sees
/// an anonymous caller.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or(Principal::Anonymous))
    }
}
