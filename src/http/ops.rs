//! Operations routes and middleware: liveness, readiness, Prometheus metrics, the OpenAPI
//! document, the per-request metrics layer and load shedding.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::dto::Status;
use super::error::ApiError;
use super::extract::Json;
use super::state::AppState;

/// The API contract, served at `/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// Latency buckets in seconds: requests take microseconds to milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Training duration buckets in seconds.
const TRAINING_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// Which `metrics::describe_*` a metric takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A counter.
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram.
    Histogram,
}

/// Every metric the service records, with the `# HELP` text `/metrics` prints for it. A metric
/// recorded anywhere (here, `jobs`) must be listed: a test reads `/metrics` of the live binary
/// and wants a `# HELP` line for each `# TYPE` line.
pub const METRICS: &[(MetricKind, &str, &str)] = &[
    (
        MetricKind::Counter,
        "mixrec_http_requests_total",
        "HTTP requests answered, by matched route, method and status.",
    ),
    (
        MetricKind::Histogram,
        "mixrec_http_request_duration_seconds",
        "Time to answer an HTTP request, by matched route, in seconds.",
    ),
    (
        MetricKind::Counter,
        "mixrec_http_shed_total",
        "Requests answered 503 overloaded because server.max_concurrent_requests were in flight.",
    ),
    (
        MetricKind::Counter,
        "mixrec_jobs_total",
        "Jobs ended, by kind (startup, retrain, rollback) and outcome (succeeded, failed, \
         cancelled).",
    ),
    (
        MetricKind::Histogram,
        "mixrec_training_seconds",
        "Wall-clock seconds of each training that put a model in service (loading excluded).",
    ),
    (
        MetricKind::Gauge,
        "mixrec_model_version",
        "Version of the model in service.",
    ),
    (
        MetricKind::Gauge,
        "mixrec_model_log_likelihood",
        "Log-likelihood of the model in service at its last E-step (EM models only).",
    ),
];

/// The process-wide Prometheus recorder, installed on first use (the `metrics` facade has one
/// global recorder; tests build many routers in one process and share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("mixrec_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("mixrec_training_seconds".into()),
                        TRAINING_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            handle
        })
        .clone()
}

/// Gives every metric of [`METRICS`] its `# HELP` text (to the recorder installed just before).
fn describe() {
    for &(kind, name, help) in METRICS {
        match kind {
            MetricKind::Counter => metrics::describe_counter!(name, help),
            MetricKind::Gauge => metrics::describe_gauge!(name, help),
            MetricKind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok",
        model_version: None,
    })
}

/// `GET /readyz`: 200 once a model serves; 503 before, and from the moment shutdown begins (so
/// a load balancer stops sending while in-flight requests finish).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if state.stopping.load(Ordering::Relaxed) {
        let detail = "the service is shutting down; send new requests elsewhere";
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            detail,
        ));
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
