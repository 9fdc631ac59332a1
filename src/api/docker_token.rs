//! `/token`: Docker's token authentication. `GET` with Basic credentials and `scope`
//! parameters (as `docker login` and `docker push` ask), or `POST` with an OAuth2 password
//! grant form. The answer grants what was asked for and is allowed; the rest is dropped.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use kiln_worker::protocol::Secret;
use serde::Serialize;

use super::auth::credentials;
use super::oci_error::OciError;
use super::App;
use crate::service::auth::{Credentials, IssuedToken};

pub fn routes() -> Router<App> {
    Router::new().route("/token", get(issue).post(issue_for_form))
}

#[derive(Serialize)]
struct TokenResponse {
    token: Secret,
    /// The OAuth2 name of the same token.
    access_token: Secret,
    expires_in: u64,
    issued_at: DateTime<Utc>,
}

impl From<IssuedToken> for TokenResponse {
    fn from(t: IssuedToken) -> TokenResponse {
        TokenResponse {
            access_token: t.token.clone(),
            token: t.token,
            expires_in: t.expires_in.as_secs(),
            issued_at: t.issued_at,
        }
    }
}

fn pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

fn scopes(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect()
}

fn login_required() -> OciError {
    OciError::unauthorized(
        "log in with a Kiln token: its name as the username and its secret as the password",
        None,
    )
}

async fn issue(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<TokenResponse>, Response> {
    let creds = credentials(&headers)
        .map_err(OciError::from)
        .and_then(|c| c.ok_or_else(login_required))
        .map_err(basic_challenge)?;
    let scopes = scopes(&pairs(&query.unwrap_or_default()));
    let issued = app.auth.token_for_scopes(&creds, &scopes).await;
    Ok(Json(issued.map_err(|e| basic_challenge(e.into()))?.into()))
}

/// The token endpoint itself takes Basic credentials; its 401s say so.
fn basic_challenge(e: OciError) -> Response {
    let unauthorized = e.status == StatusCode::UNAUTHORIZED;
    let mut resp = e.into_response();
    if unauthorized {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kiln\""),
        );
    }
    resp
}

async fn issue_for_form(
    State(app): State<App>,
    body: Bytes,
) -> Result<Json<TokenResponse>, OciError> {
    let form = pairs(&String::from_utf8_lossy(&body));
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("password") {
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "only grant_type=password is supported",
        ));
    }
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return Err(login_required());
    };
    let creds = Credentials::Basic {
        username: username.to_string(),
        password: Secret::new(password),
    };
    let scopes = scopes(&form);
    Ok(Json(
        app.auth.token_for_scopes(&creds, &scopes).await?.into(),
    ))
}
