//! The one way a JSON body enters: the same content-type rule (`application/json` or
//! `application/<anything>+json`, else 415) and the same problem types for a body that is not
//! JSON (`malformed-json`) or not the request's shape (`invalid-body`) on every route, `/v1`
//! and `/admin` alike. [`OptionalJson`] reads a body that may be left out (`/admin/retrain`);
//! profile bodies have their own bounded reader on top of these pieces (`profile.rs`).
//! [`linger`] answers a body larger than the limit with 413 only once it has read and dropped
//! the rest (up to a bound), as nginx's lingering close does: a body declared too large by its
//! `Content-Length`, and a chunked one (no length) that grows past the limit.
//!
//! Must not import: the routes, the handlers.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;

/// The most of a refused body [`linger`] reads and drops before answering: past it the answer
/// goes at once and the connection closes.
pub const LINGER_BYTES: u64 = 64 << 20;
/// The longest [`linger`] waits for the rest of a refused body.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// A body whose `Content-Length` is above `limit` is answered 413 here, but only after the rest
/// of it has been read and dropped (at most [`LINGER_BYTES`], within five seconds): a client
/// that writes its whole body before it reads (Python's `http.client`, many SDKs) then reads
/// the 413 instead of a broken pipe. A client that sent `Expect: 100-continue` is answered at
/// once (it waits for the answer before sending). Every other request passes through.
///
/// A chunked body (no `Content-Length`) cannot be judged by its head: it is read here, into
/// memory up to the limit (the handler would buffer it whole anyway), and handed on as it was
/// read; one that grows past the limit is drained like a declared one, counting what was read.
pub async fn linger(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let declared = match declared {
        Some(n) if n > limit as u64 => n,
        None if chunked => return linger_chunked(limit, req, next).await,
        _ => return next.run(req).await,
    };
    if req.headers().contains_key(header::EXPECT) || declared > LINGER_BYTES {
        return too_large(false);
    }
    let drained = drain(req.into_body(), LINGER_BYTES).await;
    too_large(drained)
}

/// [`linger`] for a body of no declared length.
async fn linger_chunked(limit: usize, req: Request, next: Next) -> Response {
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // As the body extractor answers a body that breaks off.
            return ApiError::from_status(StatusCode::BAD_REQUEST).into_response();
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if kept.len() + data.len() > limit {
            if parts.headers.contains_key(header::EXPECT) {
                return too_large(false);
            }
            let rest = LINGER_BYTES.saturating_sub((kept.len() + data.len()) as u64);
            return too_large(drain(body, rest).await);
        }
        kept.extend_from_slice(&data);
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

/// Reads and drops what is left of `body`, at most `bound` bytes within [`LINGER_TIME`];
/// whether it ended in time.
async fn drain(mut body: Body, bound: u64) -> bool {
    let mut read = 0u64;
    let ended = tokio::time::timeout(LINGER_TIME, async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > bound {
                    return false;
                }
            }
        }
        true
    })
    .await;
    metrics::counter!("mixrec_http_lingered_total").increment(1);
    ended == Ok(true)
}

/// The 413 problem; the connection closes after it unless the body was read to its end.
fn too_large(body_read: bool) -> Response {
    let mut res = ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    if !body_read {
        res.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    res
}

/// A JSON body that may be empty (or blank): then `T::default()`. A body that is there must be
/// JSON as every other body is.
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let body = Bytes::from_request(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|e| json_error(&e))
    }
}

/// The whole body of a request that must carry JSON: 415 unless its content type says so.
pub(super) async fn json_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    Ok(Bytes::from_request(req, state).await?)
}

/// `application/json` or `application/<anything>+json`, parameters allowed (as axum's `Json`).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    // Compared without case in place: no lower-cased copy a request.
    let essence = value.split(';').next().unwrap_or("").trim().as_bytes();
    let (prefix, suffix) = (b"application/".as_slice(), b"+json".as_slice());
    essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() >= prefix.len() + suffix.len()
            && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
            && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
}

/// The problem of a body serde_json could not read.
pub(super) fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::bad_request(
            "invalid-body",
            format!("the body does not fit the request schema: {e}"),
        ),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed-json", format!("the body is not valid JSON: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/json"));
        assert!(!with("application/jsonx"));
        assert!(with(" APPLICATION/VND.API+JSON ;q=1"));
        assert!(!with("application/"));
        assert!(!with("application+json"));
        assert!(!with("text/plain+json"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn syntax_and_shape_faults_are_two_problem_types() {
        let fault = |body: &str| {
            let e = serde_json::from_str::<Vec<u8>>(body).unwrap_err();
            json_error(&e).kind
        };
        assert_eq!(fault("[1,"), "malformed-json");
        assert_eq!(fault("[1] x"), "malformed-json");
        assert_eq!(fault(r#"["x"]"#), "invalid-body");
    }
}
