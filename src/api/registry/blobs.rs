//! `/v2/<name>/blobs/<digest>`: HEAD, GET (whole or one range) and DELETE.

use axum::body::Body;
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{header_value, V2Error};
use super::{respond, V2Request, DIGEST_HEADER};
use crate::service::registry::{parse_digest, RepoName};

pub(super) async fn get(req: V2Request, repo: RepoName, digest: &str) -> Result<Response, V2Error> {
    let digest = parse_digest(digest)?;
    let registry = &req.app.registry;
    let digest_header = header_value(digest.to_string());
    let octets = HeaderValue::from_static("application/octet-stream");
    if req.method == Method::HEAD {
        let size = registry.stat_blob(&req.principal, &repo, &digest).await?;
        return Ok(respond(
            StatusCode::OK,
            [
                (CONTENT_LENGTH, size.into()),
                (CONTENT_TYPE, octets),
                (DIGEST_HEADER, digest_header),
                (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
            ],
        ));
    }
    let read = registry
        .read_blob(&req.principal, &repo, &digest, req.header(RANGE))
        .await?;
    let status = match read.range {
        Some(_) => StatusCode::PARTIAL_CONTENT,
        None => StatusCode::OK,
    };
    let (length, range, size) = (read.length(), read.range, read.size);
    let mut resp = (status, Body::from_stream(read.into_stream())).into_response();
    let headers = resp.headers_mut();
    headers.insert(CONTENT_LENGTH, length.into());
    headers.insert(CONTENT_TYPE, octets);
    headers.insert(DIGEST_HEADER, digest_header);
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = range {
        headers.insert(
            CONTENT_RANGE,
            header_value(format!("bytes {}-{}/{size}", r.start, r.end)),
        );
    }
    Ok(resp)
}

pub(super) async fn delete(
    req: V2Request,
    repo: RepoName,
    digest: &str,
) -> Result<Response, V2Error> {
    let digest = parse_digest(digest)?;
    req.app
        .registry
        .delete_blob(&req.principal, &repo, &digest)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
