//! Hostile requests, table-driven, through `router()` in-process with the shipped limits: each
//! row is one bad request and the 4xx problem it must get (status and problem type). After the
//! whole table the service must still answer a good request with the model's own figures.
//!
//! And the other side: random *valid* profiles, against both model kinds, always get answers
//! whose numbers are finite and whose predictions lie in the rating scale.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use mixrec::data::{RatingScale, Source};
use mixrec::http::dto::PredictionResponse;
use mixrec::http::error::MAX_DETAIL_CHARS;
use mixrec::http::{AppState, router};
use mixrec::mixture::Progress;
use mixrec::predictor::ModelKind;
use mixrec::serving::{ServedModel, train};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::subsequence;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{demo_model, service_settings};

const TOKEN: &str = "Bearer test-token";
/// The shipped `server.body_limit_bytes` and `server.max_profile_ratings`.
const BODY_LIMIT: usize = 1 << 20;
const CAP: usize = 2000;

/// One bad request and the problem it must get.
struct Row {
    what: String,
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    kind: &'static str,
    /// Text the detail must contain.
    naming: Option<String>,
}

impl Row {
    fn new(what: impl Into<String>, method: &'static str, uri: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            status: 0,
            kind: "",
            naming: None,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A body sent as `application/json`.
    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").raw(body)
    }

    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn expect(mut self, status: u16, kind: &'static str) -> Self {
        (self.status, self.kind) = (status, kind);
        self
    }

    fn naming(mut self, text: impl Into<String>) -> Self {
        self.naming = Some(text.into());
        self
    }
}

fn post(what: &str, uri: &str) -> Row {
    Row::new(what, "POST", uri)
}

fn get(what: &str, uri: impl Into<String>) -> Row {
    Row::new(what, "GET", uri)
}

/// `{"ratings": {...}}` with `ids` all rated 3.
fn ratings_of(ids: impl Iterator<Item = String>) -> String {
    let pairs: Vec<String> = ids.map(|id| format!("{id:?}: 3")).collect();
    format!("{{\"ratings\": {{{}}}}}", pairs.join(", "))
}

/// `{"<field>": [...]}` with `ids`.
fn list_of(field: &str, ids: impl Iterator<Item = String>) -> String {
    let ids: Vec<String> = ids.map(|id| format!("{id:?}")).collect();
    format!("{{{field:?}: [{}]}}", ids.join(", "))
}

fn unknown(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("zz{i:05}"))
}

fn malformed_and_wrong_types() -> Vec<Row> {
    let r = "/v1/recommend";
    let c = "/v1/complete";
    let bad = |what, body: &str| post(what, r).json(body).expect(400, "malformed-json");
    let invalid = |what, uri, body: &str| post(what, uri).json(body).expect(400, "invalid-body");
    vec![
        bad("truncated JSON", r#"{"ratings": {"m001": 5"#),
        bad("trailing comma", r#"{"ratings": {"m001": 5,}}"#),
        bad("unquoted key", r#"{ratings: {}}"#),
        bad("single quotes", r#"{'ratings': {}}"#),
        bad("empty body", ""),
        bad("whitespace only", " \n\t "),
        bad("two documents", "{} {}"),
        bad("NaN token", r#"{"ratings": {"m001": NaN}}"#),
        bad("Infinity token", r#"{"ratings": {"m001": Infinity}}"#),
        bad("-Infinity token", r#"{"ratings": {"m001": -Infinity}}"#),
        bad("1e400 overflows f64", r#"{"ratings": {"m001": 1e400}}"#),
        bad("lone surrogate escape", r#"{"ratings": {"\ud800": 5}}"#),
        post("invalid UTF-8 in an id", r)
            .json(b"{\"ratings\": {\"m\xff\": 5}}".to_vec())
            .expect(400, "malformed-json"),
        post("invalid UTF-8 before the JSON", r)
            .json(b"\xff\xfe{}".to_vec())
            .expect(400, "malformed-json"),
        invalid("null body", r, "null"),
        invalid("array body", r, "[]"),
        invalid("the struct as an array", r, r#"[{}, 3, []]"#),
        invalid("string body", r, r#""ratings""#),
        invalid("ratings as an array", r, r#"{"ratings": [["m001", 5]]}"#),
        invalid("rating as a string", r, r#"{"ratings": {"m001": "5"}}"#),
        invalid("rating true", r, r#"{"ratings": {"m001": true}}"#),
        invalid("rating null", r, r#"{"ratings": {"m001": null}}"#),
        invalid("n as a string", r, r#"{"n": "3"}"#),
        invalid("n fractional", r, r#"{"n": 2.5}"#),
        invalid("n = 2^64", r, r#"{"n": 18446744073709551616}"#),
        invalid("n = 2^63", r, r#"{"n": 9223372036854775808}"#),
        invalid("exclude as a string", r, r#"{"exclude": "m001"}"#),
        invalid("exclude of numbers", r, r#"{"exclude": [1, 2]}"#),
        invalid("items null", c, r#"{"items": null}"#),
        invalid("unknown field", r, r#"{"ratngs": {}}"#),
        invalid("items on recommend", r, r#"{"items": ["m001"]}"#),
        invalid("n twice", r, r#"{"n": 3, "n": 4}"#),
        invalid("ratings twice", c, r#"{"ratings": {}, "ratings": {}}"#),
        invalid(
            "deep nesting in a rating",
            r,
            &format!(
                r#"{{"ratings": {{"m001": {}{}}}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        invalid("deep nesting as the body", c, &"[".repeat(500_000)),
        invalid(
            "deep objects as the body",
            c,
            &format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000)),
        ),
    ]
}

fn bad_values() -> Vec<Row> {
    let r = "/v1/recommend";
    let scale = |what, body: &str| post(what, r).json(body).expect(400, "rating-out-of-scale");
    let n = |body: &str| {
        post(&format!("n out of range: {body}"), r)
            .json(body)
            .expect(400, "n-out-of-range")
    };
    let long_id = "x".repeat(100_000);
    vec![
        scale(
            "rating just above the scale",
            r#"{"ratings": {"m001": 5.000001}}"#,
        ),
        scale("1e-400 underflows to 0", r#"{"ratings": {"m001": 1e-400}}"#),
        scale("negative zero", r#"{"ratings": {"m001": -0.0}}"#),
        scale(
            "huge rating",
            r#"{"ratings": {"m001": 1.7976931348623157e308}}"#,
        ),
        n(r#"{"n": 0}"#),
        n(r#"{"n": -1}"#),
        n(r#"{"n": 101}"#),
        n(r#"{"n": -9223372036854775808}"#),
        n(r#"{"n": 9223372036854775807}"#),
        post("1500 unknown ids rated", r)
            .json(ratings_of(unknown(1500)))
            .expect(400, "unknown-items")
            .naming("1500 unknown item id(s): zz00000"),
        post("1500 unknown ids excluded", r)
            .json(list_of("exclude", unknown(1500)))
            .expect(400, "unknown-items")
            .naming("1500 unknown item id(s)"),
        post("unknown ids to complete", "/v1/complete")
            .json(r#"{"items": ["m001", "../m002"]}"#)
            .expect(400, "unknown-items")
            .naming("../m002"),
        post("a 100,000-character id", r)
            .json(ratings_of(std::iter::once(long_id)))
            .expect(400, "unknown-items")
            .naming("xxxx…"),
        post("an empty id", r)
            .json(r#"{"ratings": {"": 3}}"#)
            .expect(400, "unknown-items"),
        post("an id with a NUL", r)
            .json(r#"{"ratings": {"m001\u0000": 3}}"#)
            .expect(400, "unknown-items"),
        post("an item rated twice", r)
            .json(r#"{"ratings": {"m001": 5, "m002": 3, "m001": 1}}"#)
            .expect(400, "duplicate-rating")
            .naming("\"m001\""),
        post("an item rated twice alike", "/v1/complete")
            .json(r#"{"ratings": {"m007": 4, "m007": 4}}"#)
            .expect(400, "duplicate-rating")
            .naming("\"m007\""),
    ]
}

fn caps_and_transport() -> Vec<Row> {
    let r = "/v1/recommend";
    let too_large = |what, uri, body: String| {
        post(what, uri)
            .json(body)
            .expect(400, "profile-too-large")
            .naming("server.max_profile_ratings")
    };
    // About 1 MB of ratings, yet under the byte limit: refused by count while it is read.
    let mut megabyte = ratings_of((0..70_000).map(|i| format!("m{i:06}")));
    assert!(megabyte.len() > 900_000 && megabyte.len() < BODY_LIMIT);
    megabyte.shrink_to_fit();
    let oversized = format!(r#"{{"exclude": ["{}"]}}"#, "m".repeat(BODY_LIMIT));
    let media = |what, ct: &[u8]| {
        post(what, r)
            .header("content-type", ct.to_vec())
            .raw("{}")
            .expect(415, "unsupported-media-type")
    };
    vec![
        too_large("cap + 1 ratings", r, ratings_of(unknown(CAP + 1))),
        too_large(
            "cap + 1 exclusions",
            r,
            list_of("exclude", unknown(CAP + 1)),
        ),
        too_large(
            "cap + 1 items",
            "/v1/complete",
            list_of("items", unknown(CAP + 1)),
        ),
        too_large("a megabyte of ratings", "/v1/complete", megabyte),
        post("no content type", r)
            .raw("{}")
            .expect(415, "unsupported-media-type"),
        media("text/plain", b"text/plain"),
        media("a form", b"application/x-www-form-urlencoded"),
        media("application/jsonx", b"application/jsonx"),
        media("text/json", b"text/json"),
        media("a non-ASCII content type", b"application/json\xe9"),
        post("a body over the limit", r)
            .json(oversized.clone())
            .header("content-length", oversized.len().to_string())
            .expect(413, "body-too-large"),
        post("a body over the limit, no length", "/v1/complete")
            .json(oversized)
            .expect(413, "body-too-large"),
        Row::new("PUT a prediction", "PUT", "/v1/complete").expect(405, "method-not-allowed"),
        get("GET a POST route", r).expect(405, "method-not-allowed"),
        Row::new("DELETE the items", "DELETE", "/v1/items").expect(405, "method-not-allowed"),
        post("POST the items", "/v1/items")
            .json("{}")
            .expect(405, "method-not-allowed"),
        Row::new("PATCH a retrain", "PATCH", "/admin/retrain")
            .header("authorization", TOKEN)
            .expect(405, "method-not-allowed"),
        get("an unknown route", "/v1/../admin/retrain").expect(404, "not-found"),
    ]
}

fn paths_and_queries() -> Vec<Row> {
    let user = |id: &str| format!("/v1/users/{id}/recommendations");
    let unknown_user = |what, id: &str| get(what, user(id)).expect(404, "unknown-user");
    let query = |q: &str| {
        get(&format!("query {q}"), format!("{}?{q}", user("u0001"))).expect(400, "invalid-query")
    };
    let items =
        |q: &str, kind| get(&format!("items {q}"), format!("/v1/items?{q}")).expect(400, kind);
    let job = |what, id: &str| {
        get(what, format!("/admin/jobs/{id}"))
            .header("authorization", TOKEN)
            .expect(400, "invalid-path")
    };
    vec![
        unknown_user("encoded traversal", "..%2F..%2Fetc%2Fpasswd").naming("../../etc/passwd"),
        unknown_user("encoded dot-dot", "%2e%2e"),
        unknown_user("an encoded NUL", "%00"),
        unknown_user("a 10,000-character id", &"u".repeat(10_000)).naming("uuu…"),
        get(
            "raw traversal",
            "/v1/users/../../etc/passwd/recommendations",
        )
        .expect(404, "not-found"),
        unknown_user("an empty user id", ""),
        get("a user id that is not UTF-8", user("%FF%FE")).expect(400, "invalid-path"),
        job("a job id with traversal", "..%2F1"),
        job("a job id of 2^64", "18446744073709551616"),
        job("a negative job id", "-1"),
        query("n=abc"),
        query("n="),
        query("n=1&n=2"),
        query("n=99999999999999999999"),
        query("n=1e2"),
        query("n=%FF"),
        query("n=NaN"),
        get("negative n", format!("{}?n=-5", user("u0001"))).expect(400, "n-out-of-range"),
        items("limit=0", "limit-out-of-range"),
        items("limit=1001", "limit-out-of-range"),
        items("offset=-1", "invalid-query"),
        items("offset=18446744073709551616", "invalid-query"),
        post("retrain with a negative k", "/admin/retrain")
            .header("authorization", TOKEN)
            .json(r#"{"k": -1}"#)
            .expect(400, "invalid-body"),
        post("retrain with a 10 kB token", "/admin/retrain")
            .header("authorization", format!("Bearer {}", "t".repeat(10_000)))
            .expect(401, "unauthorized"),
    ]
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

async fn send(app: &Router, row: &Row) -> Reply {
    let mut req = Request::builder().method(row.method).uri(&row.uri);
    for (name, value) in &row.headers {
        req = req.header(*name, value.as_slice());
    }
    let req = req.body(Body::from(row.body.clone())).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

/// The row's faults, empty when the answer is right.
fn check(row: &Row, reply: &Reply) -> Vec<String> {
    let mut faults = Vec::new();
    let mut fault = |f: String| faults.push(f);
    if reply.status.as_u16() != row.status {
        fault(format!("status {} (want {})", reply.status, row.status));
    }
    if reply.content_type != "application/problem+json" {
        fault(format!("content-type {:?}", reply.content_type));
    }
    let Ok(p) = serde_json::from_slice::<Value>(&reply.body) else {
        fault("the body is not JSON".into());
        return faults;
    };
    if p["type"] != format!("urn:mixrec:problem:{}", row.kind) {
        fault(format!("type {} (want {})", p["type"], row.kind));
    }
    if p["status"] != row.status {
        fault(format!("body status {}", p["status"]));
    }
    if p["title"].as_str().is_none_or(str::is_empty) {
        fault("no title".into());
    }
    let detail = p["detail"].as_str().unwrap_or_default();
    if detail.is_empty() || detail.chars().count() > MAX_DETAIL_CHARS + 1 {
        fault(format!("detail of {} characters", detail.chars().count()));
    }
    if let Some(text) = &row.naming
        && !detail.contains(text.as_str())
    {
        fault(format!("detail {detail:?} does not name {text:?}"));
    }
    faults
}

#[tokio::test]
async fn every_hostile_request_gets_its_problem_and_the_service_still_answers() {
    let app = router(AppState::with_model(service_settings(|_| {}), demo_model()).expect("state"));
    let rows: Vec<Row> = [
        malformed_and_wrong_types(),
        bad_values(),
        caps_and_transport(),
        paths_and_queries(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(rows.len() >= 40, "{} rows", rows.len());

    let mut wrong = Vec::new();
    for row in &rows {
        let faults = check(row, &send(&app, row).await);
        if !faults.is_empty() {
            wrong.push(format!(
                "{} ({} {}): {}",
                row.what,
                row.method,
                short(&row.uri),
                faults.join("; ")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );

    // Still serving: byte for byte the model's own answer to the same profile.
    let good = post("good", "/v1/recommend")
        .json(r#"{"ratings": {"m002": 1, "m001": 5}, "n": 5, "exclude": ["m003"]}"#);
    let reply = send(&app, &good).await;
    assert_eq!(reply.status, StatusCode::OK);
    let model = demo_model();
    let profile = [("m001", 5.0), ("m002", 1.0)];
    let want = model.recommend(&profile, 5, 100, &["m003".into()]).unwrap();
    assert_eq!(want.items.len(), 5);
    let want = serde_json::to_vec(&PredictionResponse::new(&model, want)).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        String::from_utf8_lossy(&want)
    );
}

fn short(uri: &str) -> String {
    uri.chars().take(60).collect()
}

/// The demo catalogue's Gaussian pLSA, trained once (the other model kind the service runs).
fn demo_gpl() -> ServedModel {
    static MODEL: OnceLock<ServedModel> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let training = service_settings(|s| s.training.model = ModelKind::Gpl).training;
            let mut go = |_: &Progress| ControlFlow::Continue(());
            train(&Source::Embedded, &training, 1, &mut go).expect("the demo trains")
        })
        .clone()
}

/// A rating inside `scale`: either end, a half star, or any number between.
fn rating(scale: RatingScale) -> impl Strategy<Value = f64> {
    let (lo, hi) = (scale.min, scale.max);
    let halves = ((hi - lo) * 2.0) as u32;
    prop_oneof![
        Just(lo),
        Just(hi),
        (0..=halves).prop_map(move |h| lo + f64::from(h) / 2.0),
        lo..=hi,
    ]
}

/// A valid request to either route: a profile of known items (up to the whole catalogue, so
/// some rate everything), and `n`, `exclude` or `items`.
#[derive(Debug, Clone)]
struct Valid {
    gpl: bool,
    ratings: BTreeMap<usize, f64>,
    n: i64,
    exclude: Vec<usize>,
    only: Option<Vec<usize>>,
}

fn valid_requests() -> impl Strategy<Value = Valid> {
    let model = demo_model();
    let d = model.catalogue().n_items();
    let scale = model.scale();
    let rated = prop_oneof![4 => 0..12usize, 1 => 0..=d]
        .prop_flat_map(move |len| subsequence((0..d).collect::<Vec<_>>(), len))
        .prop_flat_map(move |items| {
            let n = items.len();
            (Just(items), vec(rating(scale), n))
        })
        .prop_map(|(items, xs)| items.into_iter().zip(xs).collect::<BTreeMap<_, _>>());
    (
        any::<bool>(),
        rated,
        1..=100i64,
        vec(0..d, 0..30),
        option::of(vec(0..d, 0..30)),
    )
        .prop_map(|(gpl, ratings, n, exclude, only)| Valid {
            gpl,
            ratings,
            n,
            exclude,
            only,
        })
}

/// Every number in `v` is a finite JSON number; a `null` (serde_json's NaN) fails.
fn all_finite(v: &Value, path: &str) -> Result<(), TestCaseError> {
    match v {
        Value::Null => prop_assert!(false, "null at {path}"),
        Value::Number(x) => prop_assert!(x.as_f64().is_some_and(f64::is_finite), "{x} at {path}"),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                all_finite(x, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                all_finite(x, &format!("{path}.{k}"))?;
            }
        }
        Value::Bool(_) | Value::String(_) => {}
    }
    Ok(())
}

/// The answer's own checks: all finite, predictions in the scale, a posterior that sums to 1;
/// returns how many items it held.
fn sane(v: &Value, model: &ServedModel) -> Result<usize, TestCaseError> {
    all_finite(v, "")?;
    let scale = model.scale();
    let items = v["items"].as_array().expect("items");
    for p in items {
        let (x, spread) = (p["rating"].as_f64().unwrap(), p["spread"].as_f64().unwrap());
        prop_assert!(scale.contains(x), "prediction {x} outside {scale:?}");
        prop_assert!(spread >= 0.0, "spread {spread}");
    }
    let post: Vec<f64> = v["posterior"]
        .as_array()
        .expect("posterior")
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect();
    prop_assert_eq!(post.len(), model.info().k);
    prop_assert!(post.iter().all(|p| (0.0..=1.0).contains(p)), "{post:?}");
    prop_assert!((post.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{post:?}");
    Ok(items.len())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Over random valid profiles against both model kinds, `/v1/complete` and `/v1/recommend`
    /// answer 200 with every number finite and every prediction inside the scale.
    #[test]
    fn valid_profiles_get_finite_answers_inside_the_scale(req in valid_requests()) {
        let model = if req.gpl { demo_gpl() } else { demo_model() };
        let d = model.catalogue().n_items();
        let id = |l: &usize| model.catalogue().item_id(*l as u32).into_owned();
        let ratings: serde_json::Map<String, Value> =
            req.ratings.iter().map(|(l, x)| (id(l), json!(x))).collect();
        let exclude: Vec<String> = req.exclude.iter().map(id).collect();
        let mut complete = json!({"ratings": ratings});
        if let Some(only) = &req.only {
            complete["items"] = json!(only.iter().map(id).collect::<Vec<_>>());
        }
        let recommend = json!({"ratings": ratings, "n": req.n, "exclude": exclude});
        let app = router(AppState::with_model(service_settings(|_| {}), model.clone()).expect("state"));
        let ask = |uri: &str, body: &Value| {
            let row = post(uri, uri).json(body.to_string());
            runtime().block_on(send(&app, &row))
        };

        let reply = ask("/v1/complete", &complete);
        prop_assert_eq!(reply.status, StatusCode::OK);
        let got = sane(&serde_json::from_slice(&reply.body).unwrap(), &model)?;
        let want = req.only.as_ref().map_or(d - req.ratings.len(), Vec::len);
        prop_assert_eq!(got, want);

        let reply = ask("/v1/recommend", &recommend);
        prop_assert_eq!(reply.status, StatusCode::OK);
        let got = sane(&serde_json::from_slice(&reply.body).unwrap(), &model)?;
        let skipped: BTreeSet<usize> =
            req.ratings.keys().chain(&req.exclude).copied().collect();
        prop_assert_eq!(got, (req.n as usize).min(d - skipped.len()));
    }
}

/// `POST /admin/retrain {"k": 1099511627776, "model": "gpl"}` used to abort the whole process
/// (a failed (users × K) allocation on the training thread); now the training refuses it, so
/// the job fails and the old model keeps serving.
#[test]
fn an_absurd_k_fails_the_training_not_the_process() {
    for model in [ModelKind::Mixture, ModelKind::Gpl] {
        let mut t = service_settings(|_| {}).training;
        (t.model, t.k) = (model, mixrec::config::Auto::Is(1 << 40));
        let mut go = |_: &Progress| ControlFlow::Continue(());
        let err = train(&Source::Embedded, &t, 2, &mut go).unwrap_err();
        assert!(
            err.to_string()
                .contains("k = 1099511627776 needs at least 1099511627776 users"),
            "{model:?}: {err}"
        );
    }
}
