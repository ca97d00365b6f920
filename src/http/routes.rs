//! The prediction and catalogue routes under `/v1`: each turns its DTO into one service call
//! and the answer back into a DTO. An answer that borrows its ids from the model is written out
//! before the handler lets go of the model.
//!
//! Must not import: the stores, the training, the lifecycle; no arithmetic here.

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::admin::FeedbackToken;
use super::dto::{
    CompleteRequest, FeedbackRequest, FeedbackResponse, ItemsPage, ModelResponse, NQuery,
    OnboardingRequest, OnboardingResponse, PageQuery, PredictionResponse, RecommendRequest,
    TypesResponse,
};
use super::error::ApiError;
use super::extract::{Json, Path, Query, Written};
use super::profile::ProfileJson;
use super::state::AppState;

/// `POST /v1/complete`.
pub async fn complete(
    State(state): State<AppState>,
    ProfileJson(req): ProfileJson<CompleteRequest>,
) -> Result<Response, ApiError> {
    let model = state.ready_model()?;
    let answer = model.complete(&req.ratings.pairs(), req.items.as_deref())?;
    Ok(Written(PredictionResponse::new(&model, answer)).into_response())
}

/// `POST /v1/recommend`.
pub async fn recommend(
    State(state): State<AppState>,
    ProfileJson(req): ProfileJson<RecommendRequest>,
) -> Result<Response, ApiError> {
    let model = state.ready_model()?;
    let max_n = state.server.max_n;
    let answer = model.recommend(&req.ratings.pairs(), req.n, max_n, &req.exclude)?;
    Ok(Written(PredictionResponse::new(&model, answer)).into_response())
}

/// `POST /v1/onboarding`: the items worth asking this profile about, with the body, bounds and
/// errors of `POST /v1/recommend`.
pub async fn onboarding(
    State(state): State<AppState>,
    ProfileJson(req): ProfileJson<OnboardingRequest>,
) -> Result<Response, ApiError> {
    let model = state.ready_model()?;
    let max_n = state.server.max_n;
    let answer = model.onboarding(&req.ratings.pairs(), req.n, max_n, &req.exclude)?;
    Ok(Json(OnboardingResponse::new(&model, answer)).into_response())
}

/// `GET /v1/users/{user_id}/recommendations?n=`.
pub async fn user_recommendations(
    State(state): State<AppState>,
    Path(user): Path<String>,
    Query(q): Query<NQuery>,
) -> Result<Response, ApiError> {
    let model = state.ready_model()?;
    let max_n = state.server.max_n;
    let answer = state
        .registry
        .user_recommendations(&model, &user, q.n, max_n)?;
    Ok(Written(PredictionResponse::new(&model, answer)).into_response())
}

/// `POST /v1/users/{user_id}/ratings`: the user's ratings, written to the database source;
/// 200 once committed.
pub async fn post_ratings(
    State(state): State<AppState>,
    _: FeedbackToken,
    Path(user): Path<String>,
    ProfileJson(req): ProfileJson<FeedbackRequest>,
) -> Result<Json<FeedbackResponse>, ApiError> {
    let written = state
        .registry
        .feedback(&user, req.ratings.into_pairs())
        .await?;
    Ok(Json(FeedbackResponse::from(written)))
}

/// `GET /v1/items?offset=&limit=`.
pub async fn items(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ItemsPage>, ApiError> {
    let model = state.ready_model()?;
    let s = &state.server;
    let limit = q.limit.unwrap_or(s.items_page);
    if limit == 0 || limit > s.items_page_max {
        let detail = format!("limit must be between 1 and {}", s.items_page_max);
        return Err(ApiError::bad_request("limit-out-of-range", detail));
    }
    Ok(Json(ItemsPage::new(&model, q.offset, limit)))
}

/// `GET /v1/model`.
pub async fn model(State(state): State<AppState>) -> Result<Json<ModelResponse>, ApiError> {
    let model = state.ready_model()?;
    Ok(Json(ModelResponse::new(&model)))
}

/// `GET /v1/model/types`.
pub async fn types(State(state): State<AppState>) -> Result<Json<TypesResponse>, ApiError> {
    let model = state.ready_model()?;
    Ok(Json(TypesResponse::new(&model)))
}
