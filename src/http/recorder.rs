//! The process-wide Prometheus recorder that `/metrics` renders, with the histogram buckets of
//! the series the service records.
//!
//! Must not import: the state, the routes.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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
        "mixrec_model_poll_failures_total",
        "A replica's polls of the model store that did not bring the published model in (store \
         unreachable, object damaged); the serving model stays.",
    ),
    (
        MetricKind::Gauge,
        "mixrec_model_age_seconds",
        "Seconds since the serving model was trained (set when /metrics is read).",
    ),
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
        MetricKind::Gauge,
        "mixrec_connections_open",
        "Connections open, by listener (public, admin); at most server.max_connections each.",
    ),
    (
        MetricKind::Counter,
        "mixrec_connections_refused_total",
        "Connections closed at once, unanswered, because server.max_connections were open on \
         their listener.",
    ),
    (
        MetricKind::Counter,
        "mixrec_http_lingered_total",
        "Refused too-large bodies read and dropped before their 413 was sent (lingering close).",
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
