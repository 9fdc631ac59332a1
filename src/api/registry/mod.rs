//! Kiln's OCI registry under `/v2/` (OCI Distribution Specification v1.1) and its
//! administration under `/api/registry`. Every `/v2/` URL reaches one dispatcher, which parses
//! the path (`path::parse`) and hands the request to the resource's handler; handlers only
//! extract, delegate to `RegistryService` with the caller's principal (the service
//! authorises) and map a refusal to the OCI challenge or DENIED.

mod acr_metadata;
mod blobs;
mod discovery;
mod error;
mod gc;
mod manifests;
mod path;
mod uploads;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{HeaderName, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};

use self::error::V2Error;
use self::path::V2Route;
use super::oci_error::{OciError, API_VERSION, API_VERSION_HEADER};
use super::App;
use crate::access::Principal;
use crate::service::registry::RepoName;

const DIGEST_HEADER: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID_HEADER: HeaderName = HeaderName::from_static("docker-upload-uuid");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*path}", any(dispatch))
        .route("/api/registry/gc", post(gc::collect))
        .merge(acr_metadata::routes())
}

/// What every registry handler gets.
struct V2Request {
    app: App,
    principal: Principal,
    method: Method,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Body,
}

impl V2Request {
    fn header(&self, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

async fn dispatch(
    State(app): State<App>,
    principal: Principal,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().trim_start_matches("/v2").trim_start_matches('/');
    let query = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let route = path::parse(path);
    let req = V2Request {
        app,
        principal,
        method,
        headers,
        query,
        body,
    };
    let mut resp = match route {
        Some(route) => handle(route, req).await.into_response(),
        None => OciError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such registry endpoint",
        )
        .into_response(),
    };
    resp.headers_mut()
        .insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION));
    resp
}

async fn handle(route: V2Route, req: V2Request) -> Result<Response, V2Error> {
    let m = req.method.clone();
    match route {
        V2Route::Base if m == Method::GET || m == Method::HEAD => base(&req.principal),
        V2Route::Catalog if m == Method::GET => discovery::catalog(req).await,
        V2Route::Tags { name } if m == Method::GET => discovery::tags(req, repo(&name)?).await,
        V2Route::Referrers { name, digest } if m == Method::GET => {
            discovery::referrers(req, repo(&name)?, &digest).await
        }
        V2Route::Manifest { name, reference } => match m {
            Method::GET | Method::HEAD => manifests::get(req, repo(&name)?, &reference).await,
            Method::PUT => manifests::put(req, repo(&name)?, &reference).await,
            Method::DELETE => manifests::delete(req, repo(&name)?, &reference).await,
            _ => Err(unsupported()),
        },
        V2Route::Blob { name, digest } => match m {
            Method::GET | Method::HEAD => blobs::get(req, repo(&name)?, &digest).await,
            Method::DELETE => blobs::delete(req, repo(&name)?, &digest).await,
            _ => Err(unsupported()),
        },
        V2Route::Uploads { name } if m == Method::POST => uploads::start(req, repo(&name)?).await,
        V2Route::Upload { name, id } => {
            let repo = repo(&name)?;
            let id = uploads::session_id(&id)?;
            match m {
                Method::GET => uploads::status(req, repo, &id).await,
                Method::PATCH => uploads::append(req, repo, &id).await,
                Method::PUT => uploads::finish(req, repo, &id).await,
                Method::DELETE => uploads::cancel(req, repo, &id).await,
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// `GET /v2/`: any authenticated caller may learn that this is a registry.
fn base(principal: &Principal) -> Result<Response, V2Error> {
    if *principal == Principal::Anonymous {
        return Err(OciError::unauthorized("authentication required", None).into());
    }
    Ok(Json(serde_json::json!({})).into_response())
}

fn repo(name: &str) -> Result<RepoName, V2Error> {
    Ok(RepoName::try_from(name)?)
}

fn unsupported() -> V2Error {
    OciError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is not supported",
    )
    .into()
}

/// A body-less response with the given status and headers.
fn respond<const N: usize>(
    status: StatusCode,
    headers: [(HeaderName, HeaderValue); N],
) -> Response {
    let mut resp = status.into_response();
    resp.headers_mut().extend(headers);
    resp
}

fn location(path: String) -> (HeaderName, HeaderValue) {
    (LOCATION, error::header_value(path))
}
