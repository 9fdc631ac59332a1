//! `/v2/<name>/manifests/<reference>`: GET, HEAD, PUT and DELETE by tag or digest.

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{header_value, V2Error};
use super::{location, respond, V2Request, DIGEST_HEADER};
use crate::service::registry::{Reference, RegistryError, RepoName, MAX_MANIFEST_BYTES};

const SUBJECT_HEADER: HeaderName = HeaderName::from_static("oci-subject");

pub(super) async fn get(
    req: V2Request,
    repo: RepoName,
    reference: &str,
) -> Result<Response, V2Error> {
    let reference = existing(reference)?;
    let with_body = req.method != Method::HEAD;
    let manifest = req
        .app
        .registry
        .get_manifest(&req.principal, &repo, &reference, with_body)
        .await?;
    let mut resp = match manifest.body {
        Some(body) => Body::from(body).into_response(),
        None => StatusCode::OK.into_response(),
    };
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, header_value(manifest.media_type));
    headers.insert(CONTENT_LENGTH, manifest.size.into());
    headers.insert(DIGEST_HEADER, header_value(manifest.digest));
    Ok(resp)
}

pub(super) async fn put(
    req: V2Request,
    repo: RepoName,
    reference: &str,
) -> Result<Response, V2Error> {
    let reference = Reference::try_from(reference)?;
    let declared = req
        .header(CONTENT_LENGTH)
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_MANIFEST_BYTES) {
        return Err(RegistryError::ManifestTooLarge.into());
    }
    let content_type = req.header(CONTENT_TYPE).map(str::to_string);
    let body = async {
        axum::body::to_bytes(req.body, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| {
                // Past the limit, or the client went away: the announced length tells which.
                if declared.is_some() {
                    RegistryError::Interrupted(e.to_string())
                } else {
                    RegistryError::ManifestTooLarge
                }
            })
    };
    let pushed = req
        .app
        .registry
        .put_manifest(
            &req.principal,
            &repo,
            &reference,
            content_type.as_deref(),
            body,
        )
        .await?;
    let digest = pushed.digest.to_string();
    let mut resp = respond(
        StatusCode::CREATED,
        [
            location(format!("/v2/{repo}/manifests/{digest}")),
            (DIGEST_HEADER, header_value(digest)),
            (CONTENT_LENGTH, 0.into()),
        ],
    );
    if let Some(subject) = pushed.subject {
        resp.headers_mut()
            .insert(SUBJECT_HEADER, header_value(subject));
    }
    Ok(resp)
}

pub(super) async fn delete(
    req: V2Request,
    repo: RepoName,
    reference: &str,
) -> Result<Response, V2Error> {
    let reference = existing(reference)?;
    req.app
        .registry
        .delete_manifest(&req.principal, &repo, &reference)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A reference to read or delete: one that is not a valid tag names no manifest, so it is
/// unknown (404) rather than invalid, as the conformance suite expects.
fn existing(reference: &str) -> Result<Reference, RegistryError> {
    Reference::try_from(reference).map_err(|e| match e {
        RegistryError::TagInvalid(t) => RegistryError::ManifestUnknown(t),
        e => e,
    })
}
