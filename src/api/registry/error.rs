//! Registry errors as OCI error envelopes. Internal causes become a generic 500, logged once
//! here; their text never reaches the client.

use axum::http::header::{HeaderName, CONTENT_RANGE, RANGE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::access::AccessError;
use crate::api::oci_error::OciError;
use crate::service::registry::RegistryError;

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
            E::Locked(_) => oci(StatusCode::FORBIDDEN, "DENIED"),
            E::Access { error, scope } => access_refused(error, scope),
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

/// A 401 with a challenge naming the scope to ask for, or a 403 when no token would help.
fn access_refused(error: &AccessError, scope: &str) -> OciError {
    match error {
        AccessError::Unauthenticated | AccessError::InsufficientScope => {
            let scope = (!scope.is_empty()).then(|| scope.to_string());
            OciError::unauthorized(error.to_string(), scope)
        }
        AccessError::Denied(m) => OciError::denied(m.clone()),
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
