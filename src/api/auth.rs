//! Authentication for every route but `/healthz`: the middleware resolves the request's
//! credentials into a `Principal` once, and handlers take it as an extractor to authorise.
//!
//! Interim rule until tokens land: the single shared `--token` (or an open server) makes the
//! caller an owner.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::App;
use crate::service::auth::{Principal, Role, Subject};

pub async fn authenticate(
    State(app): State<App>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let principal = match (app.token.as_deref(), given) {
        (None, _) => owner(),
        (Some(expected), Some(token))
            if constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
        {
            owner()
        }
        _ => return Err(ApiError::Unauthorized),
    };
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

fn owner() -> Principal {
    let mut subject = Subject::token("shared", "shared", &[Role::Owner], &[]);
    subject.roles.push(Role::Worker);
    Principal::Direct(subject)
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

/// Compares without an early exit, so response timing does not reveal a token prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
