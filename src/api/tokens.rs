//! `/api/tokens` (owners only) and `/api/whoami` (any token).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::error::ApiError;
use super::extract::ValidJson;
use super::App;
use crate::access::{AccessError, Principal, SubjectKind};
use crate::service::auth::NewToken;
use crate::wire::{CreateToken, CreatedToken, Token, TokenList};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route("/api/tokens/{name}", delete(revoke))
        .route("/api/whoami", get(whoami))
}

async fn create(
    State(app): State<App>,
    principal: Principal,
    body: Result<ValidJson<CreateToken>, ApiError>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    // Authorised first: a caller who may not do this learns nothing from its body.
    app.auth.may_manage_tokens(&principal)?;
    let ValidJson(req) = body?;
    let (token, secret) = app
        .auth
        .create_token(
            &principal,
            NewToken {
                name: req.name,
                roles: req.roles,
                repositories: req.repositories,
                expires_in: req.expires_in_secs.map(Duration::from_secs),
            },
        )
        .await?;
    tracing::info!(token.name = %token.name, by = %describe(&principal), "token created");
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

async fn list(State(app): State<App>, principal: Principal) -> Result<Json<TokenList>, ApiError> {
    let tokens = app.auth.list_tokens(&principal).await?;
    Ok(Json(TokenList { tokens }))
}

async fn revoke(
    State(app): State<App>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.auth.revoke_token(&principal, &name).await?;
    tracing::info!(token.name = %name, by = %describe(&principal), "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller's token is; `kiln login` checks a token with it.
async fn whoami(State(app): State<App>, principal: Principal) -> Result<Json<Token>, ApiError> {
    let id = match principal.subject().map(|s| &s.kind) {
        Some(SubjectKind::Token { id, .. } | SubjectKind::Worker { id, .. }) => id,
        // The API authenticates stored tokens only.
        Some(SubjectKind::Run { .. }) | None => return Err(AccessError::Unauthenticated.into()),
    };
    Ok(Json(app.auth.token_info(id).await?))
}

fn describe(principal: &Principal) -> String {
    principal
        .subject()
        .map(|s| s.describe())
        .unwrap_or_default()
}
