//! Answers on connections accepted past the cap: health checks as usual, everything else a
//! 503 telling the client to retry, each in the envelope its API uses. Nothing here touches
//! the database or the disk, so shedding stays cheap.

use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::error::ApiError;
use crate::api::oci_error::OciError;

/// Seconds a shed client is asked to wait before retrying.
const RETRY_AFTER_SECS: &str = "1";

pub(super) fn answer<B>(req: &Request<B>, max_connections: usize) -> Response {
    let path = req.uri().path();
    if path == "/healthz" && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return "ok".into_response();
    }
    let message =
        format!("the server is at its limit of {max_connections} connections: retry in a moment");
    let mut resp = if path == "/v2" || path.starts_with("/v2/") {
        OciError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message).into_response()
    } else {
        ApiError::Unavailable(message).into_response()
    };
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    resp
}
