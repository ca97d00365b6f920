//! The HTTP API: [`router`] builds the whole app from a state without a socket (tests drive it
//! in-process); [`run`] serves it with graceful shutdown.
//!
//! Handlers only convert DTOs and call [`crate::service`]; training runs on blocking threads
//! ([`jobs`]). Every 4xx/5xx is `application/problem+json` ([`error`]).

pub mod admin;
pub mod dto;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod ops;
pub mod profile;
pub mod routes;
mod serve;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use serve::{healthcheck, run, serve};
pub use state::AppState;

use crate::config::ServerSettings;

/// Every route as (method, path): the router is built from this table, and a test checks it
/// against `openapi.yaml` both ways.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/complete"),
    ("POST", "/v1/recommend"),
    ("GET", "/v1/users/{user_id}/recommendations"),
    ("GET", "/v1/items"),
    ("GET", "/v1/model"),
    ("GET", "/v1/model/types"),
    ("POST", "/admin/retrain"),
    ("GET", "/admin/jobs/{id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.yaml"),
];

/// The handler of a route in [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("POST", "/v1/complete") => post(routes::complete),
        ("POST", "/v1/recommend") => post(routes::recommend),
        ("GET", "/v1/users/{user_id}/recommendations") => get(routes::user_recommendations),
        ("GET", "/v1/items") => get(routes::items),
        ("GET", "/v1/model") => get(routes::model),
        ("GET", "/v1/model/types") => get(routes::types),
        ("POST", "/admin/retrain") => post(admin::retrain),
        ("GET", "/admin/jobs/{id}") => get(admin::job),
        ("GET", "/healthz") => get(ops::healthz),
        ("GET", "/readyz") => get(ops::readyz),
        ("GET", "/metrics") => get(ops::metrics),
        ("GET", "/openapi.yaml") => get(ops::openapi),
        _ => unreachable!("{method} {path} is in ROUTES without a handler"),
    }
}

/// The whole app: routes, fallbacks and middleware, over `state`.
pub fn router(state: AppState) -> Router {
    let s = &state.settings.server;
    let limit = s.body_limit_bytes;
    let timeout = Duration::from_millis(s.request_timeout_ms);
    let x_request_id = HeaderName::from_static("x-request-id");
    let mut app = Router::new();
    for (method, path) in ROUTES {
        app = app.route(path, handler(method, path));
    }
    // Each `layer` wraps everything before it, so read upwards from the bottom for the order a
    // request meets them: ids before the span that logs them; CORS outside the problem net so
    // error answers carry CORS headers too; the net outside everything that answers errors.
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(from_fn(error::problem_net))
        .layer(cors(s))
        .layer(CompressionLayer::new())
        .layer(from_fn(ops::record))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

fn span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}

fn cors(s: &ServerSettings) -> CorsLayer {
    // Origins were validated at start-up; an empty list sends no CORS headers at all.
    let origins: Vec<HeaderValue> = s
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}

async fn not_found() -> impl IntoResponse {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
}
