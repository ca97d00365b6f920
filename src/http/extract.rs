//! Extractors whose rejections are [`ApiError`]s: query strings, path segments and the bytes of
//! a body fail with problem+json naming what was wrong, never with axum's plain-text answers.
//! JSON bodies are read in `body.rs`; [`Json`] is the JSON response type.
//!
//! Must not import: the routes, the state.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// A JSON answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// A query string.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// Path segments.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        // Most answers are a few hundred bytes to a few kB: one allocation for them, where
        // serde_json's own start (128 bytes) grows four times for a recommendation.
        let mut bytes = Vec::with_capacity(RESPONSE_CAPACITY);
        match serde_json::to_writer(&mut bytes, &self.0) {
            Ok(()) => {
                let json = HeaderValue::from_static("application/json");
                ([(header::CONTENT_TYPE, json)], bytes).into_response()
            }
            Err(e) => ApiError::internal(&e).into_response(),
        }
    }
}

/// The buffer a JSON answer is written into, in bytes: a recommendation of 10 items with its
/// posterior over 12 types is about 1.3 kB.
const RESPONSE_CAPACITY: usize = 2048;

/// A body that could not be read: too large (413) or cut off.
fn bytes_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::from_status(status);
    }
    ApiError::new(status, "unreadable-body", text)
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        bytes_error(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid-query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid-path", r.body_text())
    }
}
