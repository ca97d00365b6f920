//! Admin routes behind a bearer token: `POST /admin/retrain`, `POST /admin/rollback`,
//! `GET /admin/models`, and `GET`/`DELETE /admin/jobs/{id}`.
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

use super::dto::{RetrainRequest, SavedModel, SavedModels};
use super::error::ApiError;
use super::extract::{Json, Path};
use super::jobs::{self, CancelError, Job, Task};
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
    let task = Task::Retrain {
        source,
        training,
        force: overrides.force.unwrap_or(false),
    };
    start(&state, task)
}

/// `POST /admin/rollback`: 202 with the job that puts the newest earlier model back.
pub async fn rollback(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    if state.current().is_none() {
        return Err(ApiError::not_ready());
    }
    start(&state, Task::Rollback)
}

fn start(state: &AppState, task: Task) -> Result<Response, ApiError> {
    match jobs::start(state, task) {
        Ok(job) => Ok(accepted(job)),
        Err(active) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "job-in-progress",
            format!("job {active} is still running; poll /admin/jobs/{active}"),
        )),
    }
}

/// `GET /admin/models`: the saved models, newest first, each checked.
pub async fn models(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<SavedModels>, ApiError> {
    let Some(store) = state.store.clone() else {
        let detail = "no model store is configured (models.dir)";
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-model-store",
            detail,
        ));
    };
    let serving = state.current().map(|m| m.info().version);
    // Every file is read and its checksum verified: off the async workers.
    let entries = tokio::task::spawn_blocking(move || store.entries())
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    let models = entries
        .into_iter()
        .map(|e| {
            let (status, created, info, error) = match e.manifest {
                Ok(m) => {
                    let status = if e.rolled_back {
                        "rolled_back"
                    } else {
                        "valid"
                    };
                    (status, Some(m.created), Some(m.info), None)
                }
                Err(reason) => ("invalid", None, None, Some(reason)),
            };
            SavedModel {
                version: e.version,
                file: e.path.display().to_string(),
                serving: serving == Some(e.version) && status == "valid",
                status,
                error,
                created,
                info,
            }
        })
        .collect();
    Ok(Json(SavedModels {
        dir: state
            .settings
            .models
            .store_dir()
            .map_or_else(String::new, |d| d.display().to_string()),
        serving,
        models,
    }))
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

/// `DELETE /admin/jobs/{id}`: asks a running job to stop at its next iteration (202 with the
/// job as it is now); 409 for a job that has ended.
pub async fn cancel_job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    match state.jobs.cancel(id) {
        Ok(job) => Ok((StatusCode::ACCEPTED, Json(job)).into_response()),
        Err(CancelError::Unknown) => Err(unknown_job(id)),
        Err(CancelError::Finished(state)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "job-finished",
            format!("job {id} has ended ({state:?}); nothing to cancel").to_lowercase(),
        )),
    }
}

fn unknown_job(id: u64) -> ApiError {
    let detail = format!("no job {id} (only the last 100 jobs are kept)");
    ApiError::new(StatusCode::NOT_FOUND, "unknown-job", detail)
}

/// `GET /admin/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<Job>, ApiError> {
    state.jobs.get(id).map(Json).ok_or_else(|| unknown_job(id))
}
