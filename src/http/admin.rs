//! Admin routes behind a bearer token: `POST /admin/retrain`, `POST /admin/rollback`,
//! `GET /admin/models`, and `GET`/`DELETE /admin/jobs/{id}`.
//!
//! With no token configured every admin request is refused (403): the routes never fail open.
//! Tokens are compared through their SHA-256 digests in constant time, so neither the bytes nor
//! the length of the configured token leak through timing. Each handler parses, calls the
//! registry once, and converts.
//!
//! Must not import: the stores or the training (only `crate::serving`'s registry and its types).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body::OptionalJson;
use super::dto::{SavedModel, SavedModels};
use super::error::ApiError;
use super::extract::{Json, Path};
use super::state::AppState;
use crate::config::Secret;
use crate::serving::{Job, Overrides, Task};

/// Proof that the request carried the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(Secret(expected)) = &state.server.admin_token else {
            let detail = "admin routes are disabled: no admin token is configured";
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin-disabled",
                detail,
            ));
        };
        bearer(parts, expected, "admin token").map(|()| Admin)
    }
}

/// Proof that a feedback request carried `feedback.token`, when one is configured.
#[derive(Debug, Clone, Copy)]
pub struct FeedbackToken;

impl FromRequestParts<AppState> for FeedbackToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(Secret(expected)) = &state.feedback_token else {
            return Ok(FeedbackToken);
        };
        bearer(parts, expected, "feedback token").map(|()| FeedbackToken)
    }
}

/// Whether the request's `Authorization: Bearer` token is `expected` (compared in constant
/// time); a 401 that says what to send (`what`) otherwise.
fn bearer(parts: &Parts, expected: &str, what: &str) -> Result<(), ApiError> {
    let given = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if same_token(token, expected) => Ok(()),
        Some(_) => Err(unauthorized("the bearer token is not valid")),
        None => Err(unauthorized(&format!(
            "send Authorization: Bearer <{what}>"
        ))),
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

/// `POST /admin/retrain`: 202 with the job; 400 for an override past its bound, 409 while a
/// job is active.
pub async fn retrain(
    State(state): State<AppState>,
    _: Admin,
    OptionalJson(overrides): OptionalJson<Overrides>,
) -> Result<Response, ApiError> {
    refuse_on_replica(&state, "retrain")?;
    let retrain = overrides.retrain(state.registry.policy())?;
    start(&state, Task::Retrain(Box::new(retrain)))
}

/// `POST /admin/rollback`: 202 with the job that puts the newest earlier model back.
pub async fn rollback(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    refuse_on_replica(&state, "rollback")?;
    state.ready_model()?;
    start(&state, Task::Rollback)
}

/// 409 on a replica: it never trains and never moves the published model.
fn refuse_on_replica(state: &AppState, what: &str) -> Result<(), ApiError> {
    if !state.registry.is_replica() {
        return Ok(());
    }
    let store = state.registry.store_location().unwrap_or_default();
    let detail = format!(
        "this process is a replica (server.role = \"replica\"): it serves the model published \
         at {store} and never trains; send the {what} to the trainer (the process with \
         server.role = \"trainer\" publishing there)"
    );
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "replica-read-only",
        detail,
    ))
}

fn start(state: &AppState, task: Task) -> Result<Response, ApiError> {
    let started = state.registry.start(task)?;
    Ok(accepted(started.job))
}

/// `GET /admin/models`: the saved models, newest first, each checked.
pub async fn models(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<SavedModels>, ApiError> {
    let Some((dir, entries)) = state.registry.saved_models().await else {
        let detail = "no model store is configured (models.dir)";
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-model-store",
            detail,
        ));
    };
    let serving = state.registry.current().map(|m| m.info().version);
    let entries = entries.map_err(|e| ApiError::internal(&e))?;
    let models = entries
        .into_iter()
        .map(|e| SavedModel::new(e, serving))
        .collect();
    Ok(Json(SavedModels {
        dir,
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

/// `DELETE /admin/jobs/{id}`: asks a running job to stop at its next iteration (202 with the
/// job as it is now); 409 for a job that has ended.
pub async fn cancel_job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let job = state.registry.cancel(id)?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// `GET /admin/jobs/{id}`.
pub async fn job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.registry.job(id)?))
}
