//! Registry errors as OCI error envelopes. Internal causes become a generic 500, logged once
//! here; their text never reaches the client.

use axum::http::header::{HeaderName, CONTENT_RANGE, RANGE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::{AccessError, Action, Principal};
use crate::api::oci_error::OciError;
use crate::service::registry::{RegistryError, RepoName};

/// An OCI error plus the headers some statuses need (`Range` on a 416 for a chunk). Boxed:
/// it travels through every handler's `Result`.
#[derive(Debug)]
pub struct V2Error(Box<(OciError, Vec<(HeaderName, HeaderValue)>)>);

impl From<OciError> for V2Error {
    fn from(oci: OciError) -> V2Error {
        V2Error(Box::new((oci, Vec::new())))
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let (oci, headers) = *self.0;
        let mut resp = oci.into_response();
        resp.headers_mut().extend(headers);
        resp
    }
}

impl From<RegistryError> for V2Error {
    fn from(e: RegistryError) -> V2Error {
        use RegistryError as E;
        let message = e.to_string();
        let oci = |status, code| OciError::new(status, code, message.clone());
        let mut headers = Vec::new();
        let oci = match &e {
            E::NameInvalid(_) => oci(StatusCode::BAD_REQUEST, "NAME_INVALID"),
            E::NameUnknown(_) => oci(StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::TagInvalid(_) => oci(StatusCode::BAD_REQUEST, "TAG_INVALID"),
            E::DigestInvalid(_) => oci(StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::Unsupported(_) => oci(StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            E::BlobUnknown(_) => oci(StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown => oci(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::UploadInvalid(_) | E::Interrupted(_) => {
                oci(StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID")
            }
            E::ChunkOutOfOrder { size } => {
                headers.push((RANGE, upload_range(*size)));
                oci(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
            }
            E::RangeNotSatisfiable { size } => {
                headers.push((CONTENT_RANGE, header_value(format!("bytes */{size}"))));
                oci(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_NOT_SATISFIABLE")
            }
            E::ManifestInvalid(_) => oci(StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestTooLarge => oci(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            E::ManifestBlobUnknown(_) => oci(StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            E::ManifestUnknown(_) => oci(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::Store(_) | E::Io(_) => {
                tracing::error!(error = %e, "registry request failed");
                OciError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal server error: see the server's log",
                )
            }
        };
        V2Error(Box::new((oci, headers)))
    }
}

/// `Range: 0-<last byte>` as upload responses report progress; `0-0` for an empty upload,
/// as the distribution registry does, since clients expect the header's shape.
pub fn upload_range(size: u64) -> HeaderValue {
    header_value(format!("0-{}", size.saturating_sub(1)))
}

pub fn header_value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).expect("digits, names and punctuation make valid header values")
}

/// Checks that the principal may do all of `actions` on `repo`. A 401 names every action the
/// operation needs, so one token request covers it.
pub fn authorize(
    principal: &Principal,
    repo: &RepoName,
    actions: &[Action],
) -> Result<(), V2Error> {
    for &action in actions {
        principal.authorize(repo.as_str(), action).map_err(|e| {
            let scope = format!(
                "repository:{repo}:{}",
                actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            match e {
                AccessError::Unauthenticated | AccessError::InsufficientScope => {
                    OciError::unauthorized(e.to_string(), Some(scope))
                }
                AccessError::Denied(m) => OciError::denied(m),
            }
        })?;
    }
    Ok(())
}
