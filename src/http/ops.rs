//! Operations routes and middleware: liveness, readiness, Prometheus metrics, the OpenAPI
//! document, the per-request metrics layer and load shedding.
//!
//! Must not import: the serving layer's internals (only the registry's readiness).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::dto::Status;
use super::error::ApiError;
use super::extract::Json;
use super::state::AppState;

/// The API contract, served at `/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok",
        model_version: None,
    })
}

/// `GET /readyz`: 200 once a model serves; 503 before, and from the moment shutdown begins (so
/// a load balancer stops sending while in-flight requests finish). Both 503s are states, not
/// faults: they are logged at debug.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.registry.is_stopping() {
        return Err(ApiError::shutting_down());
    }
    let model = state.ready_model()?;
    Ok(Json(Status {
        status: "ready",
        model_version: Some(model.info().version),
    }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.run_upkeep();
    if let Some(age) = state.registry.model_age_seconds() {
        metrics::gauge!("mixrec_model_age_seconds").set(age);
    }
    let text = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, text)], state.metrics.render()).into_response()
}

/// `GET /openapi.yaml`.
pub async fn openapi() -> Response {
    let yaml = HeaderValue::from_static("application/yaml");
    ([(header::CONTENT_TYPE, yaml)], OPENAPI_YAML).into_response()
}

/// Middleware: counts requests by route, method and status, and times them by route.
pub async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!("mixrec_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("mixrec_http_requests_total",
        "route" => route, "method" => method, "status" => status)
    .increment(1);
    res
}

/// Routes never shed: probes must report liveness and readiness, not load (a shed liveness
/// probe gets a busy but healthy process restarted, which makes an overload worse), and metrics
/// must still be scraped to see an overload. All three are cheap and touch no model.
pub const UNSHED: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// What a shed client is told to wait before retrying, in seconds (`Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 1;

/// Middleware: holds one of the process-wide permits (`server.max_concurrent_requests`) while
/// the request is handled, body read included; with none free, answers 503 at once. Never
/// waits for a permit, so an overload cannot build a queue.
pub async fn shed(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if UNSHED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Ok(_permit) = state.permits.try_acquire() else {
        metrics::counter!("mixrec_http_shed_total").increment(1);
        return overloaded();
    };
    next.run(req).await
}

/// The 503 answer of a shed request.
fn overloaded() -> Response {
    let detail = "the service is at its limit of concurrent requests; retry after Retry-After \
                  seconds";
    let mut res =
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", detail).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    res
}
