//! Extractors that turn malformed path, query and body values into the API's own error body.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A path parameter parsed through its validated type (`RunId`, `Digest`).
pub struct ValidPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ValidPath(v)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ValidQuery(v)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A JSON body. One that is too large, not JSON, or not the shape the endpoint takes gets
/// the API's error envelope instead of axum's plain text.
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ValidJson(v)),
            Err(e @ JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                format!("{}: send the body as JSON", e.body_text()),
            )),
            Err(e) => Err(body_rejection(e.status(), e.body_text())),
        }
    }
}

/// A raw body, with the same envelope for a body too large or cut off.
pub struct ValidBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ValidBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ValidBytes)
            .map_err(|e: BytesRejection| body_rejection(e.status(), e.body_text()))
    }
}

fn body_rejection(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the request body is too large for this endpoint".into())
    } else {
        ApiError::BadRequest(text)
    }
}
