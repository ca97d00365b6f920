//! The app: every route of [`ROUTES`] with its handler, the fallbacks, and the middleware in
//! the order a request meets it (request ids, the request span and log, metrics, CORS, load
//! shedding, the problem net, the timeout, the body limit). Built from a state without a
//! socket, so tests drive it in-process.
//!
//! Must not import: the accept loop and the shutdown (`serve.rs` imports this).

use std::cell::RefCell;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, post};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{OnResponse, TraceLayer};

use super::error::{self, ApiError, Expected};
use super::state::AppState;
use super::{admin, body, ops, page, routes};
use crate::config::ServerSettings;

/// Every route as (method, path): the router is built from this table, and a test checks it
/// against `openapi.yaml` both ways.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/complete"),
    ("POST", "/v1/recommend"),
    ("POST", "/v1/onboarding"),
    ("GET", "/v1/users/{user_id}/recommendations"),
    ("POST", "/v1/users/{user_id}/ratings"),
    ("GET", "/v1/items"),
    ("GET", "/v1/model"),
    ("GET", "/v1/model/types"),
    ("POST", "/admin/retrain"),
    ("GET", "/admin/jobs/{id}"),
    ("DELETE", "/admin/jobs/{id}"),
    ("POST", "/admin/rollback"),
    ("GET", "/admin/models"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.yaml"),
    ("GET", "/"),
    ("GET", "/demo.js"),
    ("GET", "/demo.css"),
    ("GET", "/widget.js"),
];

/// The handler of a route in [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("POST", "/v1/complete") => post(routes::complete),
        ("POST", "/v1/recommend") => post(routes::recommend),
        ("POST", "/v1/onboarding") => post(routes::onboarding),
        ("GET", "/v1/users/{user_id}/recommendations") => get(routes::user_recommendations),
        ("POST", "/v1/users/{user_id}/ratings") => post(routes::post_ratings),
        ("GET", "/v1/items") => get(routes::items),
        ("GET", "/v1/model") => get(routes::model),
        ("GET", "/v1/model/types") => get(routes::types),
        ("POST", "/admin/retrain") => post(admin::retrain),
        ("GET", "/admin/jobs/{id}") => get(admin::job),
        ("DELETE", "/admin/jobs/{id}") => delete(admin::cancel_job),
        ("POST", "/admin/rollback") => post(admin::rollback),
        ("GET", "/admin/models") => get(admin::models),
        ("GET", "/healthz") => get(ops::healthz),
        ("GET", "/readyz") => get(ops::readyz),
        ("GET", "/metrics") => get(ops::metrics),
        ("GET", "/openapi.yaml") => get(ops::openapi),
        ("GET", "/") => get(page::index),
        ("GET", "/demo.js") => get(page::demo_js),
        ("GET", "/demo.css") => get(page::demo_css),
        ("GET", "/widget.js") => get(page::widget_js),
        _ => unreachable!("{method} {path} is in ROUTES without a handler"),
    }
}

/// The app on `server.listen`: every route of [`ROUTES`], less the `/admin/*` ones when
/// `server.admin_listen` is set. Routes, fallbacks and middleware, over `state`.
pub fn router(state: AppState) -> Router {
    let split = state.server.admin_listen.is_some();
    app(state, |path| !(split && is_admin(path)))
}

/// The app on `server.admin_listen`: the `/admin/*` routes alone (anything else is 404), with
/// the same middleware and the same state, so the same request limit.
pub fn admin_router(state: AppState) -> Router {
    app(state, is_admin)
}

/// Whether `path` is an admin route, served on `server.admin_listen` when that is set.
fn is_admin(path: &str) -> bool {
    path.starts_with("/admin/")
}

/// The routes of [`ROUTES`] whose path `serves` keeps, with every fallback and layer.
fn app(state: AppState, serves: impl Fn(&str) -> bool) -> Router {
    let s = &state.server;
    let limit = s.body_limit_bytes;
    let timeout = Duration::from_millis(s.request_timeout_ms);
    let x_request_id = HeaderName::from_static("x-request-id");
    // Registered at 0 so dashboards see the series before the first overload or refused body.
    metrics::counter!("mixrec_http_shed_total").increment(0);
    metrics::counter!("mixrec_http_lingered_total").increment(0);
    let mut app = Router::new();
    for (method, path) in ROUTES.iter().filter(|(_, path)| serves(path)) {
        app = app.route(path, handler(method, path));
    }
    // One stack, outermost first, the order a request meets it: ids before the span that logs
    // them; CORS outside the problem net so error answers carry CORS headers too; the net
    // outside everything that answers errors; shedding outside the timeout, and inside the
    // span, metrics and CORS so a shed answer is logged, counted and readable by a browser.
    // `Router::layer` wraps each route on its own, so the shedding layer takes its permits
    // from the one semaphore in the state. Built as one `ServiceBuilder` and laid once: each
    // `Router::layer` call boxes every route again, and a request clones every box on its way
    // in (twelve boxes cloned a request, where one does).
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(x_request_id.clone(), RandomIds))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span)
                .on_response(LogResponse)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id))
        .layer(from_fn(ops::record))
        .layer(CompressionLayer::new())
        .layer(cors(s))
        .layer(from_fn_with_state(state.clone(), ops::shed))
        .layer(from_fn(error::problem_net))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // Outside the limit: it reads the rest of a body the limit refuses by its length.
        .layer(from_fn_with_state(limit, body::linger))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit));
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(stack)
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

/// Request ids: random (version 4) UUIDs drawn from a generator of each thread, seeded once from
/// the process's hash keys (which come from the operating system), where tower-http's
/// `MakeRequestUuid` asks the kernel for 16 random bytes on every request. An id must be
/// unique, not unpredictable: 122 random bits are.
#[derive(Debug, Clone, Copy, Default)]
struct RandomIds;

impl MakeRequestId for RandomIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        thread_local! {
            static RNG: RefCell<Pcg64Mcg> = RefCell::new(Pcg64Mcg::from_seed(thread_seed()));
        }
        let bits = RNG.with(|rng| rng.borrow_mut().random::<u128>());
        HeaderValue::from_bytes(&uuid_v4(bits))
            .ok()
            .map(RequestId::new)
    }
}

/// 128 bits a thread starts from: std's hash keys (random from the OS once a thread, then
/// stepped per hasher) over the thread's id and the clock, so two threads or processes are
/// not expected to share a seed.
fn thread_seed() -> [u8; 16] {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(std::thread::current().id());
    let b = RandomState::new().hash_one(std::time::SystemTime::now());
    (u128::from(a) << 64 | u128::from(b)).to_le_bytes()
}

/// `bits` as a version-4 UUID in its hyphenated lower-case form (RFC 9562): the version
/// nibble set to 4 and the variant bits to 10, the other 122 bits as given.
fn uuid_v4(bits: u128) -> [u8; 36] {
    let v = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let mut out = [b'-'; 36];
    let mut nibble = 32;
    for (i, o) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        nibble -= 1;
        *o = b"0123456789abcdef"[(v >> (4 * nibble)) as usize & 0xf];
    }
    out
}

/// The line logged for each answer: an error for a 5xx that is a fault, debug for any other
/// answer, an expected 503 included (`/readyz` before the first model or during shutdown).
#[derive(Debug, Clone, Copy)]
struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, res: &Response<B>, latency: Duration, _: &tracing::Span) {
        let (status, latency_ms) = (res.status().as_u16(), latency.as_millis());
        let fault = res.status().is_server_error() && res.extensions().get::<Expected>().is_none();
        if fault {
            tracing::error!(status, latency_ms, "response failed");
        } else {
            tracing::debug!(status, latency_ms, "finished processing request");
        }
    }
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
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(Duration::from_secs(600))
}

async fn not_found() -> impl IntoResponse {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        assert_eq!(
            &uuid_v4(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            b"01234567-89ab-4def-8123-456789abcdef"
        );
        assert_eq!(&uuid_v4(0), b"00000000-0000-4000-8000-000000000000");
        assert_eq!(&uuid_v4(u128::MAX), b"ffffffff-ffff-4fff-bfff-ffffffffffff");
        let req = Request::get("/").body(Body::empty()).unwrap();
        let ids: Vec<RequestId> = (0..2)
            .map(|_| RandomIds.make_request_id(&req).unwrap())
            .collect();
        assert_ne!(ids[0].header_value(), ids[1].header_value());
    }
}
