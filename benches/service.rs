//! Benchmarks of the request path on the seed's Netflix subset (`../shared/data`, or
//! `MIXREC_SHARED_DATA`), K = 12: the service call alone, and the whole router in-process
//! (`oneshot`, no socket) for `POST /v1/recommend` and `POST /v1/onboarding` with a 20-rating
//! profile, onboarding with an empty one (a new user), and `GET /healthz` (the middleware's
//! fixed cost).
//!
//! `cargo bench --bench service`. Without the data set the benchmarks are skipped.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use figment::Figment;
use figment::providers::{Format as _, Toml};
use mixrec::config::{DEFAULT_TOML, Settings};
use mixrec::data::{Format, Source};
use mixrec::http::{AppState, router};
use mixrec::serving::{ServedModel, train};
use tower::ServiceExt;

fn main() {
    if model().is_none() {
        eprintln!("skipped: no Netflix subset at ../shared/data (set MIXREC_SHARED_DATA)");
        return;
    }
    divan::main();
}

fn settings() -> Settings {
    let mut s = Settings::from_figment(
        Figment::from(Toml::string(DEFAULT_TOML)),
        &Default::default(),
    )
    .expect("defaults load");
    s.training.k = mixrec::config::Auto::Is(12);
    s.models.dir = None;
    s
}

fn model() -> Option<&'static ServedModel> {
    static MODEL: OnceLock<Option<ServedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = std::env::var_os("MIXREC_SHARED_DATA")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
                });
            let path = dir.join("netflix_incomplete.txt");
            path.is_file().then(|| {
                let source = Source::File {
                    path,
                    format: Format::Auto,
                    titles: None,
                    duplicates: Default::default(),
                    columns: Default::default(),
                };
                let mut go = |_: &_| ControlFlow::Continue(());
                train(&source, &settings().training, 1, &mut go).expect("trains")
            })
        })
        .as_ref()
}

/// 20 ratings over the subset's items (the same profile as scripts/loadtest.sh).
fn profile() -> Vec<(String, f64)> {
    (0..20)
        .map(|i| ((i * 53).to_string(), f64::from(1 + (i * 7) % 5)))
        .collect()
}

fn profile_json() -> String {
    let ratings: serde_json::Map<String, serde_json::Value> =
        profile().into_iter().map(|(k, v)| (k, v.into())).collect();
    serde_json::json!({"ratings": ratings, "n": 10}).to_string()
}

/// The same profile asking for the default 5 questions.
fn onboarding_json() -> String {
    let ratings: serde_json::Map<String, serde_json::Value> =
        profile().into_iter().map(|(k, v)| (k, v.into())).collect();
    serde_json::json!({"ratings": ratings}).to_string()
}

#[divan::bench]
fn recommend_service_call(bencher: divan::Bencher) {
    let (m, p) = (model().unwrap(), profile());
    let p: Vec<(&str, f64)> = p.iter().map(|(id, x)| (id.as_str(), *x)).collect();
    bencher.bench(|| m.recommend(divan::black_box(&p), 10, 100, &[]).unwrap());
}

fn app() -> Router {
    router(AppState::with_model(settings(), model().unwrap().clone()).expect("no model store"))
}

/// `body` posted to `uri` through the router, one request an iteration, on a current-thread
/// runtime.
fn post_through_the_router(bencher: divan::Bencher, uri: &'static str, body: String) {
    let app = app();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    bencher.bench(|| {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        rt.block_on(app.clone().oneshot(req)).unwrap()
    });
}

#[divan::bench]
fn recommend_through_the_router(bencher: divan::Bencher) {
    post_through_the_router(bencher, "/v1/recommend", profile_json());
}

/// `POST /v1/complete` of the same profile: every other item predicted (1,180 items, each
/// with its id in the answer).
#[divan::bench]
fn complete_through_the_router(bencher: divan::Bencher) {
    let ratings: serde_json::Map<String, serde_json::Value> =
        profile().into_iter().map(|(k, v)| (k, v.into())).collect();
    let body = serde_json::json!({ "ratings": ratings }).to_string();
    post_through_the_router(bencher, "/v1/complete", body);
}

#[divan::bench]
fn onboarding_service_call(bencher: divan::Bencher) {
    let (m, p) = (model().unwrap(), profile());
    let p: Vec<(&str, f64)> = p.iter().map(|(id, x)| (id.as_str(), *x)).collect();
    bencher.bench(|| m.onboarding(divan::black_box(&p), 5, 100, &[]).unwrap());
}

#[divan::bench]
fn onboarding_new_user_service_call(bencher: divan::Bencher) {
    let m = model().unwrap();
    bencher.bench(|| m.onboarding(divan::black_box(&[]), 5, 100, &[]).unwrap());
}

#[divan::bench(args = ["20 ratings", "new user"])]
fn onboarding_through_the_router(bencher: divan::Bencher, profile: &str) {
    let body = match profile {
        "new user" => "{}".to_owned(),
        _ => onboarding_json(),
    };
    post_through_the_router(bencher, "/v1/onboarding", body);
}

#[divan::bench]
fn healthz_through_the_router(bencher: divan::Bencher) {
    let app = app();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    bencher.bench(|| {
        let req = Request::get("/healthz").body(Body::empty()).unwrap();
        rt.block_on(app.clone().oneshot(req)).unwrap()
    });
}
