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

/// A JSON answer that writes itself ([`WriteJson`]) instead of going through serde's data
/// model: the same bytes as [`Json`] of the same value (each implementation is tested against
/// its `Serialize` derive). For the answers written on every recommendation: through serde, a
/// recommendation's 1.3 kB took 2.1 µs of the route's 12.6 in process (`perf` of
/// `cargo bench --bench service`), most of it escaping the same key names field after field
/// and the calls of the generic map writer; the numbers and strings themselves are still
/// written by serde_json ([`JsonOut`]).
#[derive(Debug, Clone, Copy)]
pub struct Written<T>(pub T);

/// A value that writes its own JSON, byte for byte what its `Serialize` derive writes.
pub trait WriteJson {
    /// Appends the value's JSON.
    fn write_json(&self, out: &mut JsonOut<'_>);
}

impl<T: WriteJson> IntoResponse for Written<T> {
    fn into_response(self) -> Response {
        let mut bytes = Vec::with_capacity(RESPONSE_CAPACITY);
        self.0.write_json(&mut JsonOut(&mut bytes));
        let json = HeaderValue::from_static("application/json");
        ([(header::CONTENT_TYPE, json)], bytes).into_response()
    }
}

/// Where a [`WriteJson`] value writes: punctuation and key names as they are, numbers and
/// strings through serde_json's own writer (so its escaping, its shortest round-trip floats
/// and `null` for a float that is not finite).
#[derive(Debug)]
pub struct JsonOut<'a>(pub &'a mut Vec<u8>);

impl JsonOut<'_> {
    /// JSON text as it is: punctuation, and key names that need no escaping.
    pub fn raw(&mut self, json: &str) {
        self.0.extend_from_slice(json.as_bytes());
    }

    /// A string, quoted and escaped.
    pub fn str(&mut self, s: &str) {
        // Writing to a Vec cannot fail.
        let _ = serde::Serializer::serialize_str(&mut serde_json::Serializer::new(&mut *self.0), s);
    }

    /// A number, or `null` where it is not finite (as serde_json writes an `f64`).
    pub fn f64(&mut self, x: f64) {
        let _ = serde::Serializer::serialize_f64(&mut serde_json::Serializer::new(&mut *self.0), x);
    }

    /// An unsigned integer.
    pub fn u64(&mut self, n: u64) {
        let _ = serde::Serializer::serialize_u64(&mut serde_json::Serializer::new(&mut *self.0), n);
    }
}

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
