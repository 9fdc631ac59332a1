//! `tags/list`, `_catalog` and `referrers`.

use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{header_value, V2Error};
use super::V2Request;
use crate::service::registry::{parse_digest, Page, RegistryError, RepoName, OCI_INDEX};

const FILTERS_HEADER: HeaderName = HeaderName::from_static("oci-filters-applied");

pub(super) async fn tags(req: V2Request, repo: RepoName) -> Result<Response, V2Error> {
    let n = page_size(&req)?;
    let page = req
        .app
        .registry
        .list_tags(&req.principal, &repo, req.query("last"), n)
        .await?;
    let link = next_link(&format!("/v2/{repo}/tags/list"), n, &page);
    let body = serde_json::json!({ "name": repo.as_str(), "tags": page.items });
    Ok(with_link(Json(body).into_response(), link))
}

/// Lists only the repositories the caller may pull.
pub(super) async fn catalog(req: V2Request) -> Result<Response, V2Error> {
    let n = page_size(&req)?;
    let page = req
        .app
        .registry
        .catalog(&req.principal, req.query("last"), n)
        .await?;
    let link = next_link("/v2/_catalog", n, &page);
    let body = serde_json::json!({ "repositories": page.items });
    Ok(with_link(Json(body).into_response(), link))
}

pub(super) async fn referrers(
    req: V2Request,
    repo: RepoName,
    digest: &str,
) -> Result<Response, V2Error> {
    let subject = parse_digest(digest)?;
    let artifact_type = req.query("artifactType").filter(|t| !t.is_empty());
    let manifests = req
        .app
        .registry
        .referrers(&req.principal, &repo, &subject, artifact_type)
        .await?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut resp = (StatusCode::OK, Json(index)).into_response();
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX));
    if artifact_type.is_some() {
        headers.insert(FILTERS_HEADER, HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}

fn page_size(req: &V2Request) -> Result<Option<u32>, V2Error> {
    req.query("n")
        .map(|n| {
            n.parse::<u32>()
                .map_err(|_| RegistryError::Unsupported(format!("invalid page size n={n}")).into())
        })
        .transpose()
}

/// `Link: <…?n=N&last=LAST>; rel="next"` when more follow.
fn next_link(path: &str, n: Option<u32>, page: &Page) -> Option<HeaderValue> {
    let (Some(n), Some(last), true) = (n, page.items.last(), page.more) else {
        return None;
    };
    let last: String = url_escape(last);
    Some(header_value(format!(
        "<{path}?n={n}&last={last}>; rel=\"next\""
    )))
}

/// Names and tags hold only `[a-zA-Z0-9._/-]`; `/` is the one to escape in a query.
fn url_escape(s: &str) -> String {
    s.replace('/', "%2F")
}

pub(super) fn with_link(mut resp: Response, link: Option<HeaderValue>) -> Response {
    if let Some(link) = link {
        resp.headers_mut().insert(LINK, link);
    }
    resp
}
