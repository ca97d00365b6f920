//! The HTTP API in-process: every route and every error shape, through `router()` with
//! `tower::ServiceExt::oneshot` (no socket).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use mixrec::config::Settings;
use mixrec::http::{AppState, ROUTES, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{demo_model, service_settings};

pub(crate) const TOKEN: &str = "Bearer test-token";

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts an RFC 9457 problem with `status`; returns its detail.
    #[track_caller]
    pub(crate) fn problem(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let p = self.json();
        assert_eq!(p["status"], status.as_u16());
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:mixrec:problem:")
        );
        assert!(p["title"].is_string());
        p["detail"].as_str().unwrap().to_owned()
    }
}

fn app() -> Router {
    app_with(|_| {})
}

fn app_with(edit: impl FnOnce(&mut Settings)) -> Router {
    router(AppState::with_model(service_settings(edit), demo_model()).expect("state"))
}

pub(crate) async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_json(app: &Router, uri: &str, body: Value) -> Reply {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

pub(crate) fn admin(method: Method, uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, t);
    }
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

/// Every number in `v` is finite (serde_json would have written NaN as null).
fn no_nulls_in_numbers(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("null at {path}"),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| no_nulls_in_numbers(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| no_nulls_in_numbers(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app();
    let r = get(&app, "/healthz").await;
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let r = get(&app, "/readyz").await;
    assert_eq!(r.json(), json!({"status": "ready", "model_version": 1}));
}

#[tokio::test]
async fn without_a_model_readiness_and_predictions_answer_503() {
    let app = router(AppState::new(service_settings(|_| {})).expect("state"));
    assert!(
        get(&app, "/readyz")
            .await
            .problem(StatusCode::SERVICE_UNAVAILABLE)
            .contains("training")
    );
    for uri in [
        "/v1/items",
        "/v1/model",
        "/v1/model/types",
        "/v1/users/u0001/recommendations",
    ] {
        get(&app, uri)
            .await
            .problem(StatusCode::SERVICE_UNAVAILABLE);
    }
    for uri in ["/v1/complete", "/v1/recommend"] {
        post_json(&app, uri, json!({}))
            .await
            .problem(StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn complete_predicts_every_unrated_item_with_a_ranked_posterior() {
    let app = app();
    let r = post_json(
        &app,
        "/v1/complete",
        json!({"ratings": {"m001": 5, "m002": 1.5}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    no_nulls_in_numbers(&v, "");
    assert_eq!(v["model_version"], 1);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 300 - 2);
    assert!(
        items
            .iter()
            .all(|p| p["item"] != "m001" && p["spread"].as_f64().unwrap() >= 0.0)
    );
    let post: Vec<f64> = v["posterior"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    assert_eq!(post.len(), 3);
    assert!(post.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn complete_with_an_empty_profile_or_chosen_items() {
    let app = app();
    let r = post_json(&app, "/v1/complete", json!({"ratings": {}})).await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 300);
    let r = post_json(
        &app,
        "/v1/complete",
        json!({"ratings": {"m001": 4}, "items": ["m007", "m008"]}),
    )
    .await;
    let ids: Vec<Value> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["item"].clone())
        .collect();
    assert_eq!(ids, vec![json!("m007"), json!("m008")]);
}

#[tokio::test]
async fn recommend_returns_n_titled_items_never_rated_or_excluded() {
    let app = app();
    let body = json!({"ratings": {"m001": 5, "m002": 1}, "n": 5, "exclude": ["m003"]});
    let v = post_json(&app, "/v1/recommend", body).await.json();
    no_nulls_in_numbers(&v, "");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for p in items {
        assert!(!["m001", "m002", "m003"].contains(&p["item"].as_str().unwrap()));
        assert!(p["title"].as_str().unwrap().contains('('));
    }
    let scores: Vec<f64> = items
        .iter()
        .map(|p| p["rating"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
}

#[tokio::test]
async fn user_recommendations_for_known_and_unknown_users() {
    let app = app();
    let v = get(&app, "/v1/users/u0001/recommendations?n=4")
        .await
        .json();
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    let d = get(&app, "/v1/users/nobody/recommendations")
        .await
        .problem(StatusCode::NOT_FOUND);
    assert!(d.contains("nobody"));
    get(&app, "/v1/users/u0001/recommendations?n=0")
        .await
        .problem(StatusCode::BAD_REQUEST);
    get(&app, "/v1/users/u0001/recommendations?n=x")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn items_are_paged_with_titles() {
    let app = app();
    let v = get(&app, "/v1/items?offset=298&limit=5").await.json();
    assert_eq!(
        (v["total"].clone(), v["offset"].clone()),
        (json!(300), json!(298))
    );
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // Snapshot order (first appearance in the file), not id order.
    assert!(items[1]["id"].as_str().unwrap().starts_with('m'));
    assert!(items[1]["title"].is_string());
    assert_eq!(
        get(&app, "/v1/items").await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
    get(&app, "/v1/items?limit=100000")
        .await
        .problem(StatusCode::BAD_REQUEST);
    get(&app, "/v1/items?offset=-1")
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn model_metadata_and_types() {
    let app = app();
    let v = get(&app, "/v1/model").await.json();
    for key in [
        "version",
        "trained_at",
        "algorithm",
        "k",
        "n_users",
        "n_items",
        "n_ratings",
        "log_likelihood",
        "bic",
        "iterations",
        "converged",
        "training_seconds",
    ] {
        assert!(!v[key].is_null(), "{key} missing from {v}");
    }
    assert_eq!(
        (v["k"].clone(), v["n_ratings"].clone()),
        (json!(3), json!(60000))
    );
    assert_eq!(v["snapshot"]["sha256"].as_str().unwrap().len(), 64);
    // The demo's ratings are whole stars from 1 to 5.
    assert_eq!(v["scale"], json!({"min": 1.0, "max": 5.0, "step": 1.0}));
    let t = get(&app, "/v1/model/types").await.json();
    no_nulls_in_numbers(&t, "");
    let types = t["types"].as_array().unwrap();
    assert_eq!(types.len(), 3);
    assert_eq!(types[0]["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn bad_profiles_are_400_problems_naming_the_fault() {
    let app = app();
    let ids: serde_json::Map<String, Value> =
        (0..9).map(|i| (format!("zz{i}"), json!(3))).collect();
    let d = post_json(&app, "/v1/recommend", json!({"ratings": ids}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(d.starts_with("9 unknown item id(s): zz0, zz1"), "{d}");
    assert!(!d.contains("zz5"), "names a few, not all: {d}");
    let d = post_json(&app, "/v1/complete", json!({"ratings": {"m001": 6}}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(d.contains("outside the scale"), "{d}");
    post_json(
        &app,
        "/v1/complete",
        json!({"ratings": {"m001": 3}, "items": ["nope"]}),
    )
    .await
    .problem(StatusCode::BAD_REQUEST);
    post_json(&app, "/v1/recommend", json!({"exclude": ["nope"]}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    for n in [json!(0), json!(-1), json!(101), json!(1e30), json!("3")] {
        post_json(&app, "/v1/recommend", json!({"n": n}))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    post_json(&app, "/v1/recommend", json!({"ratings": {"m001": "5"}}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    post_json(&app, "/v1/recommend", json!({"ratngs": {}}))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn transport_errors_share_the_problem_shape() {
    let app = app_with(|s| s.server.body_limit_bytes = 1024);
    let raw = |body: &'static str, ct: Option<&str>| {
        let mut r = Request::post("/v1/recommend");
        if let Some(ct) = ct {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    send(&app, raw("{\"ratings\": {", Some("application/json")))
        .await
        .problem(StatusCode::BAD_REQUEST);
    send(&app, raw("NaN", Some("application/json")))
        .await
        .problem(StatusCode::BAD_REQUEST);
    send(&app, raw("{}", Some("text/plain")))
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    send(&app, raw("{}", None))
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    get(&app, "/v2/nothing")
        .await
        .problem(StatusCode::NOT_FOUND);
    get(&app, "/v1/recommend")
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
    send(
        &app,
        Request::delete("/healthz").body(Body::empty()).unwrap(),
    )
    .await
    .problem(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_or_without_a_length() {
    let app = app_with(|s| s.server.body_limit_bytes = 1024);
    let big = format!("{{\"exclude\": [{}\"m002\"]}}", "\"m003\",".repeat(200));
    // With Content-Length the limit answers at once; without, the body is cut off as it is
    // read (oneshot adds no Content-Length by itself).
    for length in [Some(big.len()), None] {
        let mut req =
            Request::post("/v1/recommend").header(header::CONTENT_TYPE, "application/json");
        if let Some(n) = length {
            req = req.header(header::CONTENT_LENGTH, n);
        }
        let req = req.body(Body::from(big.clone())).unwrap();
        send(&app, req).await.problem(StatusCode::PAYLOAD_TOO_LARGE);
    }
}

#[tokio::test]
async fn admin_routes_refuse_without_a_configured_token() {
    let app = app_with(|s| s.server.admin_token = None);
    let r = send(
        &app,
        admin(Method::POST, "/admin/retrain", Some("Bearer anything"), ""),
    )
    .await;
    r.problem(StatusCode::FORBIDDEN);
    let r = send(
        &app,
        admin(Method::GET, "/admin/jobs/1", Some("Bearer "), ""),
    )
    .await;
    r.problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admin_routes_need_the_right_token() {
    let app = app();
    let r = send(&app, admin(Method::POST, "/admin/retrain", None, "")).await;
    r.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    let r = send(
        &app,
        admin(
            Method::POST,
            "/admin/retrain",
            Some("Bearer test-tokeN"),
            "",
        ),
    )
    .await;
    r.problem(StatusCode::UNAUTHORIZED);
    let r = send(
        &app,
        admin(Method::GET, "/admin/jobs/1", Some("test-token"), ""),
    )
    .await;
    r.problem(StatusCode::UNAUTHORIZED);
}

/// Polls job `id` until it ends (the training runs on a blocking thread).
pub(crate) async fn finished_job(app: &Router, id: u64) -> Value {
    for _ in 0..6000 {
        let job = send(
            app,
            admin(Method::GET, &format!("/admin/jobs/{id}"), Some(TOKEN), ""),
        )
        .await
        .json();
        if !job["finished_at"].is_null() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish in a minute");
}

// current_thread: the job's completion task cannot run between the two requests below, so the
// second one deterministically meets the first still active.
#[tokio::test(flavor = "current_thread")]
async fn retrain_swaps_the_model_and_a_second_one_meanwhile_is_409() {
    let app = app();
    let r = send(
        &app,
        admin(
            Method::POST,
            "/admin/retrain",
            Some(TOKEN),
            // K = 2 predicts worse than the serving K = 3: past the quality gate only by force.
            r#"{"k": 2, "seed": 5, "force": true}"#,
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let job = r.json();
    assert_eq!(
        (job["state"].clone(), job["k"].clone()),
        (json!("queued"), json!(2))
    );
    let id = job["id"].as_u64().unwrap();
    assert_eq!(r.headers[header::LOCATION], format!("/admin/jobs/{id}"));
    let d = send(&app, admin(Method::POST, "/admin/retrain", Some(TOKEN), ""))
        .await
        .problem(StatusCode::CONFLICT);
    assert!(d.contains(&format!("job {id}")));
    let done = finished_job(&app, id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["model_version"], 2);
    assert!(done["log_likelihood"].as_f64().unwrap().is_finite());
    let model = get(&app, "/v1/model").await.json();
    assert_eq!(
        (model["version"].clone(), model["k"].clone()),
        (json!(2), json!(2))
    );
}

#[tokio::test]
async fn a_failed_retrain_keeps_the_old_model_serving() {
    // The configured snapshot has gone missing since the model was trained.
    let app = app_with(|s| s.snapshot.path = Some("/nonexistent/ratings.csv".into()));
    let r = send(&app, admin(Method::POST, "/admin/retrain", Some(TOKEN), "")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let done = finished_job(&app, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(done["state"], "failed");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/ratings.csv")
    );
    assert_eq!(get(&app, "/v1/model").await.json()["version"], 1);
    send(&app, admin(Method::GET, "/admin/jobs/999", Some(TOKEN), ""))
        .await
        .problem(StatusCode::NOT_FOUND);
    send(&app, admin(Method::GET, "/admin/jobs/x", Some(TOKEN), ""))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_retrain_bodies_are_refused_before_any_job() {
    let app = app();
    for body in [
        r#"{"k": 0}"#,
        r#"{"kk": 3}"#,
        r#"{"algorithm": "svd"}"#,
        "{",
    ] {
        send(
            &app,
            admin(Method::POST, "/admin/retrain", Some(TOKEN), body),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
    let req = Request::post("/admin/retrain")
        .header(header::AUTHORIZATION, TOKEN)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("k=3"))
        .unwrap();
    send(&app, req)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    send(&app, admin(Method::GET, "/admin/jobs/1", Some(TOKEN), ""))
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = app();
    get(&app, "/v1/items").await;
    get(&app, "/nowhere").await;
    let r = get(&app, "/metrics").await;
    assert!(r.content_type().starts_with("text/plain"));
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains(r#"mixrec_http_requests_total{route="/v1/items",method="GET",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched""#));
    assert!(text.contains("mixrec_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn request_ids_are_set_or_propagated() {
    let app = app();
    let r = get(&app, "/healthz").await;
    assert!(!r.headers["x-request-id"].is_empty());
    let req = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.headers["x-request-id"], "abc-123");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = app_with(|s| s.server.cors_origins = vec!["https://shop.example".into()]);
    let ask = |origin: &str| {
        Request::get("/v1/items")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, ask("https://shop.example")).await;
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
    let r = send(&app, ask("https://evil.example")).await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let preflight = Request::options("/v1/recommend")
        .header(header::ORIGIN, "https://shop.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, preflight).await;
    assert!(r.status.is_success());
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example"
    );
}

#[tokio::test]
async fn the_widget_s_json_post_passes_the_cors_preflight_with_its_header() {
    let app = app_with(|s| s.server.cors_origins = vec!["http://shop.example:8000".into()]);
    let preflight = |origin: &str| {
        Request::options("/v1/recommend")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let r = send(&app, preflight("http://shop.example:8000")).await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://shop.example:8000"
    );
    let allowed = r.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("content-type"), "{allowed}");
    assert!(
        r.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    // Another port is another origin.
    let r = send(&app, preflight("http://shop.example:8001")).await;
    assert!(r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // The POST itself, as the widget sends it.
    let req = Request::post("/v1/recommend")
        .header(header::ORIGIN, "http://shop.example:8000")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"ratings": {"m001": 5}, "n": 3}"#))
        .unwrap();
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://shop.example:8000"
    );
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_page_and_its_files_have_their_types_policy_and_tags() {
    let app = app();
    for (path, kind, cache, marker) in [
        (
            "/",
            "text/html; charset=utf-8",
            "no-cache",
            "<!doctype html>",
        ),
        (
            "/demo.js",
            "text/javascript; charset=utf-8",
            "no-cache",
            "'use strict'",
        ),
        ("/demo.css", "text/css; charset=utf-8", "no-cache", ":root"),
        (
            "/widget.js",
            "text/javascript; charset=utf-8",
            "public, max-age=300",
            "data-mixrec-endpoint",
        ),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.content_type(), kind, "{path}");
        assert_eq!(r.headers[header::CACHE_CONTROL], cache, "{path}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(String::from_utf8_lossy(&r.body).contains(marker), "{path}");
        // The tag names this version: asked again with it, the answer is 304 without a body.
        let etag = r.headers[header::ETAG].clone();
        let again = Request::get(path)
            .header(header::IF_NONE_MATCH, etag.clone())
            .body(Body::empty())
            .unwrap();
        let r = send(&app, again).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(r.headers[header::ETAG], etag);
        assert!(r.body.is_empty());
        let stale = Request::get(path)
            .header(header::IF_NONE_MATCH, "W/\"0000\"")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, stale).await.status, StatusCode::OK, "{path}");
    }
    // The page: a strict policy, and no inline script or style for it to block.
    let r = get(&app, "/").await;
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = String::from_utf8(r.body).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="));
    assert!(html.contains(r#"<script src="/demo.js" defer></script>"#));
    // The widget may be loaded by any site, the page's files only by the page.
    let widget = get(&app, "/widget.js").await;
    assert_eq!(
        widget.headers["cross-origin-resource-policy"],
        "cross-origin"
    );
    let script = get(&app, "/demo.js").await;
    assert_eq!(
        script.headers["cross-origin-resource-policy"],
        "same-origin"
    );
}

#[tokio::test]
async fn responses_are_compressed_on_request() {
    let app = app();
    let req = Request::get("/v1/items?limit=200")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, req).await.headers[header::CONTENT_ENCODING],
        "gzip"
    );
}

#[tokio::test]
async fn every_route_is_in_openapi_and_every_documented_route_is_served() {
    let spec: Value =
        serde_norway::from_str(mixrec::http::ops::OPENAPI_YAML).expect("openapi.yaml parses");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(served, documented);
    let app = app();
    let r = get(&app, "/openapi.yaml").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, mixrec::http::ops::OPENAPI_YAML.as_bytes());
}

#[tokio::test]
async fn every_route_in_the_table_is_routed() {
    // A route missing from the router would fall through to the 404 fallback.
    let app = app();
    for (method, path) in ROUTES {
        let uri = path.replace("{user_id}", "u0001").replace("{id}", "1");
        let req = Request::builder()
            .method(*method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let r = send(&app, req).await;
        let not_found_route =
            r.status == StatusCode::NOT_FOUND && r.json()["type"] == "urn:mixrec:problem:not-found";
        assert!(!not_found_route, "{method} {uri} is not routed");
    }
}

#[tokio::test]
async fn the_retrain_body_is_read_like_every_json_body() {
    let app = app();
    let post = |content_type: &str, body: &'static str| {
        Request::post("/admin/retrain")
            .header(header::AUTHORIZATION, TOKEN)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let kind = |r: &Reply| r.json()["type"].as_str().unwrap().to_owned();
    let r = send(&app, post("application/jsonx", "{}")).await;
    r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(kind(&r), "urn:mixrec:problem:unsupported-media-type");
    let r = send(&app, post("application/json", r#"{"k": 3"#)).await;
    assert_eq!(kind(&r), "urn:mixrec:problem:malformed-json");
    let r = send(&app, post("application/json", r#"{"k": "3"}"#)).await;
    assert_eq!(kind(&r), "urn:mixrec:problem:invalid-body");
    // No body at all, or a blank one, keeps every configured value.
    let r = send(&app, post("text/plain", " \n")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", kind(&r));
    let id = r.json()["id"].as_u64().unwrap();
    assert_eq!(finished_job(&app, id).await["state"], "succeeded");
    let r = send(&app, post("application/merge-patch+json", r#"{"seed": 2}"#)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}
