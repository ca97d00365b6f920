//! Admin routes: `POST /admin/retrain` and `GET /admin/jobs/{id}`, behind a bearer token.
//!
//! With no token configured every admin request is refused (403): the routes never fail open.
//! Tokens are compared through their SHA-256 digests in constant time, so neither the bytes nor
//! the length of the configured token leak through timing.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::dto::RetrainRequest;
use super::error::ApiError;
use super::extract::{Json, Path};
use super::jobs::{self, Job};
use super::state::AppState;
use crate::config::{Secret, TrainingSettings};
use crate::data::Format;
use crate::train::Source;

/// Proof that the request carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(Secret(expected)) = &state.settings.server.admin_token else {
            let detail = "admin routes are disabled: no admin token is configured";
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin-disabled",
                detail,
            ));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(token) if same_token(token, expected) => Ok(Admin),
            Some(_) => Err(unauthorized("the bearer token is not valid")),
            None => Err(unauthorized("send Authorization: Bearer <admin token>")),
        }
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// Constant-time comparison of the digests of two tokens.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// `POST /admin/retrain`: 202 with the job, or 409 while one is active.
pub async fn retrain(
    State(state): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let overrides = parse_overrides(&headers, &body)?;
    let training = apply(&state.settings.training, &overrides)?;
    let source = match overrides.snapshot {
        Some(path) => Source::File {
            path,
            format: overrides.format.unwrap_or(Format::Auto),
            titles: None,
        },
        None => state.configured_source(),
    };
    match jobs::start(&state, source, training) {
        Ok(job) => Ok(accepted(job)),
        Err(active) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "training-in-progress",
            format!("job {active} is still training; poll /admin/jobs/{active}"),
        )),
    }
}

fn accepted(job: Job) -> Response {
    let location = HeaderValue::from_str(&format!("/admin/jobs/{}", job.id))
        .expect("a path of digits is a valid header");
    let mut res = (StatusCode::ACCEPTED, Json(job)).into_response();
    res.headers_mut().insert(header::LOCATION, location);
    res
}

/// The optional JSON body: empty means no overrides.
fn parse_overrides(headers: &HeaderMap, body: &[u8]) -> Result<RetrainRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetrainRequest::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid-body", e.to_string()))
}

/// The configured training settings with the overrides, validated.
fn apply(base: &TrainingSettings, o: &RetrainRequest) -> Result<TrainingSettings, ApiError> {
    let t = TrainingSettings {
        k: o.k.unwrap_or(base.k),
        seed: o.seed.unwrap_or(base.seed),
        n_init: o.n_init.unwrap_or(base.n_init),
        algorithm: o.algorithm.unwrap_or(base.algorithm),
        model: o.model.unwrap_or(base.model),
        ..base.clone()
    };
    t.validate()
        .map_err(|e| ApiError::bad_request("invalid-parameters", e.to_string()))?;
    Ok(t)
}

/// `GET /admin/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<Job>, ApiError> {
    state.jobs.get(id).map(Json).ok_or_else(|| {
        let detail = format!("no job {id} (only the last 100 jobs are kept)");
        ApiError::new(StatusCode::NOT_FOUND, "unknown-job", detail)
    })
}
