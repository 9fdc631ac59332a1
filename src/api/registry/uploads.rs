//! `/v2/<name>/blobs/uploads/…`: monolithic and chunked uploads, resumption and
//! cross-repository mounts.

use axum::http::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::{header_value, upload_range, V2Error};
use super::{location, respond, V2Request, DIGEST_HEADER, UPLOAD_UUID_HEADER};
use crate::service::registry::{
    parse_content_range, parse_digest, ByteRange, RegistryError, RepoName, UploadStatus,
};

/// Session IDs are UUIDs: anything else names no session (and never reaches the disk).
pub(super) fn session_id(raw: &str) -> Result<String, V2Error> {
    let id = uuid::Uuid::try_parse(raw).map_err(|_| RegistryError::UploadUnknown)?;
    Ok(id.simple().to_string())
}

/// `POST`: mount (`?mount=&from=`, or `?mount=` alone from any repository the caller may
/// pull), monolithic upload (`?digest=` with the body), or a new
/// session.
pub(super) async fn start(req: V2Request, repo: RepoName) -> Result<Response, V2Error> {
    let registry = req.app.registry.clone();
    let who = &req.principal;
    if let Some(mount) = req.query("mount") {
        let digest = parse_digest(mount)?;
        // A source that lacks the blob, or that the caller may never read, is no error: the
        // client gets an upload session and pushes the bytes itself.
        let mounted = match req.query("from") {
            Some(from) => {
                let from = super::repo(from)?;
                registry.mount_blob(who, &from, &repo, &digest).await?
            }
            None => {
                registry
                    .mount_blob_from_anywhere(who, &repo, &digest)
                    .await?
            }
        };
        if mounted {
            return Ok(created_blob(&repo, &digest.to_string()));
        }
    } else if let Some(digest) = req.query("digest") {
        let digest = parse_digest(digest)?;
        registry
            .put_blob(who, &repo, &digest, req.body.into_data_stream())
            .await?;
        return Ok(created_blob(&repo, &digest.to_string()));
    }
    let status = registry.start_upload(who, &repo).await?;
    Ok(progress(StatusCode::ACCEPTED, &repo, &status))
}

/// `GET`: where the upload stands, so a client can resume.
pub(super) async fn status(req: V2Request, repo: RepoName, id: &str) -> Result<Response, V2Error> {
    let status = req
        .app
        .registry
        .upload_status(&req.principal, &repo, id)
        .await?;
    Ok(progress(StatusCode::NO_CONTENT, &repo, &status))
}

/// `PATCH`: one chunk, with a `Content-Range` or streamed without one.
pub(super) async fn append(req: V2Request, repo: RepoName, id: &str) -> Result<Response, V2Error> {
    let range = chunk_range(&req)?;
    let registry = req.app.registry.clone();
    let status = registry
        .append_upload(
            &req.principal,
            &repo,
            id,
            range,
            req.body.into_data_stream(),
        )
        .await?;
    Ok(progress(StatusCode::ACCEPTED, &repo, &status))
}

/// `PUT ?digest=`: completes the upload, optionally with a last chunk.
pub(super) async fn finish(req: V2Request, repo: RepoName, id: &str) -> Result<Response, V2Error> {
    let digest = req.query("digest").ok_or_else(|| {
        RegistryError::DigestInvalid("the digest query parameter is required".into())
    })?;
    let digest = parse_digest(digest)?;
    let range = chunk_range(&req)?;
    let registry = req.app.registry.clone();
    registry
        .finish_upload(
            &req.principal,
            &repo,
            id,
            &digest,
            range,
            req.body.into_data_stream(),
        )
        .await?;
    Ok(created_blob(&repo, &digest.to_string()))
}

/// `DELETE`: abandons the upload.
pub(super) async fn cancel(req: V2Request, repo: RepoName, id: &str) -> Result<Response, V2Error> {
    req.app
        .registry
        .cancel_upload(&req.principal, &repo, id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The chunk's `Content-Range`. Only a non-empty chunk has one: PUT with an empty body may
/// carry a stale header, which would otherwise fail the range check.
fn chunk_range(req: &V2Request) -> Result<Option<ByteRange>, V2Error> {
    let empty = req.header(CONTENT_LENGTH) == Some("0");
    match req.header(CONTENT_RANGE) {
        Some(_) if empty => Ok(None),
        Some(h) => parse_content_range(h).map(Some).ok_or_else(|| {
            RegistryError::UploadInvalid(format!("invalid Content-Range '{h}'")).into()
        }),
        None => Ok(None),
    }
}

fn progress(code: StatusCode, repo: &RepoName, status: &UploadStatus) -> Response {
    respond(
        code,
        [
            location(format!("/v2/{repo}/blobs/uploads/{}", status.id)),
            (RANGE, upload_range(status.size)),
            (UPLOAD_UUID_HEADER, header_value(status.id.clone())),
            (CONTENT_LENGTH, 0.into()),
        ],
    )
}

fn created_blob(repo: &RepoName, digest: &str) -> Response {
    respond(
        StatusCode::CREATED,
        [
            location(format!("/v2/{repo}/blobs/{digest}")),
            (DIGEST_HEADER, header_value(digest.to_string())),
            (CONTENT_LENGTH, 0.into()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_uuids() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            session_id(&id.to_string()).unwrap(),
            id.simple().to_string()
        );
        assert!(session_id("../../etc/passwd").is_err());
    }
}
