//! One error shape for every 4xx and 5xx: `application/problem+json` (RFC 9457) with `type`,
//! `title`, `status` and `detail`.
//!
//! [`ApiError`] is what handlers and extractors return; [`problem_net`] rewrites any other error
//! response (from axum or a tower-http layer: 413, 408/503 timeouts, ...) into the same shape,
//! so no client ever sees a plain-text error. The errors of the layers below become problems
//! here, each by an exhaustive `match`: a new variant does not compile until it has a status.
//!
//! Must not import: the routes, the state.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::data::UpsertError;
use crate::mixture::ProfileError;
use crate::serving::{Busy, CancelError, FeedbackError, OverrideError, QueryError, UnknownJob};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Longest `detail`, in characters; longer ones are cut and end with `…`.
pub const MAX_DETAIL_CHARS: usize = 400;

/// An error answer: status, a stable problem type and a human-readable detail.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short slug naming the problem type (`unknown-items`); the `type` URI ends with it.
    pub kind: &'static str,
    /// What happened, for a person; never internals.
    pub detail: String,
    /// A state the service is in (not ready yet, shutting down), not a fault: its 5xx answer
    /// is logged at debug, not as an error.
    expected: bool,
}

/// Marks a response whose 5xx status is expected (see [`ApiError`]); the request log reads it.
#[derive(Debug, Clone, Copy)]
pub struct Expected;

/// The body of an error answer.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl ApiError {
    /// An error with `status`, problem type `kind` and `detail` (cut to [`MAX_DETAIL_CHARS`]).
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        // Details quote the request (serde echoes a wrong string, ids are named): a hostile
        // megabyte must not come back whole.
        if let Some((cut, _)) = detail.char_indices().nth(MAX_DETAIL_CHARS) {
            detail.truncate(cut);
            detail.push('…');
        }
        Self {
            status,
            kind,
            detail,
            expected: false,
        }
    }

    /// 400 with problem type `kind`.
    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, detail)
    }

    /// 503 until the first model is trained.
    pub fn not_ready() -> Self {
        let detail = "the first model is still training; retry shortly (see /readyz)";
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", detail).expected()
    }

    /// 503 from the moment shutdown begins.
    pub fn shutting_down() -> Self {
        let detail = "the service is shutting down; send new requests elsewhere";
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", detail).expected()
    }

    fn expected(self) -> Self {
        Self {
            expected: true,
            ..self
        }
    }

    /// 500: logs `error` (inside the request's span, so with its request id) and answers
    /// without it.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        let detail = "an internal error occurred; it was logged with this request's x-request-id";
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// A problem for a bare status, as the safety net and the fallbacks use it.
    pub fn from_status(status: StatusCode) -> Self {
        let (kind, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "no such route; see /openapi.yaml"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method-not-allowed", "this route does not take that method")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                "body-too-large",
                "the request body is larger than the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported-media-type",
                "send the body as application/json",
            ),
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
                "unavailable",
                "the request could not be answered in time; retry",
            ),
            s if s.is_server_error() => ("internal", "an internal error occurred"),
            _ => ("bad-request", "the request could not be read"),
        };
        Self::new(status, kind, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = Problem {
            kind: format!("urn:mixrec:problem:{}", self.kind),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let bytes = serde_json::to_vec(&body).expect("a problem always serialises");
        let mut res = (self.status, bytes).into_response();
        let value = HeaderValue::from_static(PROBLEM_JSON);
        res.headers_mut().insert(header::CONTENT_TYPE, value);
        if self.status == StatusCode::UNAUTHORIZED {
            let bearer = HeaderValue::from_static("Bearer");
            res.headers_mut().insert(header::WWW_AUTHENTICATE, bearer);
        }
        if self.expected {
            res.extensions_mut().insert(Expected);
        }
        res
    }
}

impl From<QueryError> for ApiError {
    /// Every variant decides its status here: a new one will not compile until it does.
    fn from(e: QueryError) -> Self {
        let detail = e.to_string();
        match e {
            QueryError::UnknownItems { .. } => Self::bad_request("unknown-items", detail),
            QueryError::OutOfScale { .. } => Self::bad_request("rating-out-of-scale", detail),
            QueryError::BadN { .. } => Self::bad_request("n-out-of-range", detail),
            QueryError::UnknownUser(_) => Self::new(StatusCode::NOT_FOUND, "unknown-user", detail),
            QueryError::Profile(p) => p.into(),
        }
    }
}

impl From<FeedbackError> for ApiError {
    /// Every variant decides its status here: a new one will not compile until it does.
    fn from(e: FeedbackError) -> Self {
        let detail = e.to_string();
        match e {
            FeedbackError::ReadOnly(_) | FeedbackError::Write(UpsertError::ReadOnly) => {
                Self::new(StatusCode::CONFLICT, "read-only-source", detail)
            }
            FeedbackError::NotReady => Self::not_ready(),
            FeedbackError::BadUser => Self::bad_request("invalid-user-id", detail),
            FeedbackError::Empty => Self::bad_request("no-ratings", detail),
            FeedbackError::Query(q) => q.into(),
            FeedbackError::Write(UpsertError::BadId { .. }) => {
                Self::bad_request("invalid-id", detail)
            }
            FeedbackError::Write(UpsertError::Database(e)) => Self::unavailable_source(&e),
            FeedbackError::Lost(_) => Self::internal(&detail),
        }
    }
}

impl ApiError {
    /// 503: the database did not take a write. Logs `error` (the client sees no server
    /// detail) and says that nothing was written.
    fn unavailable_source(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "feedback not written");
        let detail = "the ratings database did not take the write, so nothing was written; \
                      retry (the reason was logged with this request's x-request-id)";
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "source-unavailable",
            detail,
        )
    }
}

impl From<ProfileError> for ApiError {
    /// Ids and ratings are checked before the engine sees them, so these are our bugs: 500.
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::UnknownItem(_) | ProfileError::NotFinite(_) => Self::internal(&e),
        }
    }
}

impl From<OverrideError> for ApiError {
    /// Each bound its own problem type; the detail names the limit.
    fn from(e: OverrideError) -> Self {
        let detail = e.to_string();
        match e {
            OverrideError::K { .. } => Self::bad_request("k-out-of-range", detail),
            OverrideError::NInit { .. } => Self::bad_request("n-init-out-of-range", detail),
            OverrideError::Snapshot(_) => Self::bad_request("snapshot-not-allowed", detail),
            OverrideError::Invalid(_) => Self::bad_request("invalid-parameters", detail),
        }
    }
}

impl From<Busy> for ApiError {
    fn from(Busy(active): Busy) -> Self {
        let detail = format!("job {active} is still running; poll /admin/jobs/{active}");
        Self::new(StatusCode::CONFLICT, "job-in-progress", detail)
    }
}

impl From<UnknownJob> for ApiError {
    fn from(e: UnknownJob) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown-job", e.to_string())
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::Unknown(unknown) => unknown.into(),
            CancelError::Finished(..) => {
                Self::new(StatusCode::CONFLICT, "job-finished", e.to_string())
            }
        }
    }
}

/// Middleware: any 4xx/5xx answer that is not already problem+json becomes one, keeping its
/// status and headers (`Allow`, `WWW-Authenticate`, CORS ...).
pub async fn problem_net(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let fresh = ApiError::from_status(status).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// What tower-http's timeout and body-limit layers answer by themselves: a bare status.
    async fn bare(status: StatusCode) -> Response {
        let app = Router::new()
            .route("/", get(move || async move { (status, "plain text") }))
            .layer(axum::middleware::from_fn(problem_net));
        let req = axum::http::Request::get("/").body(Body::empty()).unwrap();
        app.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn bare_error_answers_become_problems_with_their_status() {
        for status in [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::PAYLOAD_TOO_LARGE,
        ] {
            let res = bare(status).await;
            assert_eq!(res.status(), status);
            assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["status"], status.as_u16());
        }
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        let e = ApiError::bad_request("x", "ü".repeat(MAX_DETAIL_CHARS + 5));
        assert_eq!(e.detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(e.detail.ends_with("ü…"));
        let short = ApiError::bad_request("x", "ü".repeat(MAX_DETAIL_CHARS));
        assert!(!short.detail.ends_with('…'));
    }

    #[tokio::test]
    async fn success_passes_through_untouched() {
        let res = bare(StatusCode::OK).await;
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}
