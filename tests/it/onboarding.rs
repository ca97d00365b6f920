//! `POST /v1/onboarding` in-process: the questions for an empty and a partial profile, on every
//! model kind, and the bounds and problems it shares with `POST /v1/recommend`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mixrec::config::Settings;
use mixrec::http::{AppState, router};
use mixrec::predictor::ModelKind;
use serde_json::{Value, json};

use crate::http::{Reply, send};
use crate::support::{demo_model, service_settings};

fn app_with(edit: impl FnOnce(&mut Settings)) -> Router {
    router(AppState::with_model(service_settings(edit), demo_model()).expect("state"))
}

async fn post(app: &Router, body: &str) -> Reply {
    let req = Request::post("/v1/onboarding")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(app, req).await
}

/// The ids asked, and checks every question's shape: best score first, `score = gain × known`.
#[track_caller]
fn questions(v: &Value) -> Vec<String> {
    let items = v["items"].as_array().unwrap();
    let scores: Vec<f64> = items.iter().map(|q| q["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    for q in items {
        let (gain, known) = (q["gain"].as_f64().unwrap(), q["known"].as_f64().unwrap());
        assert!(gain >= 0.0 && (0.0..=1.0).contains(&known), "{q}");
        assert!(
            (q["score"].as_f64().unwrap() - gain * known).abs() < 1e-12,
            "{q}"
        );
        assert!(q["title"].as_str().unwrap().contains('('), "{q}");
    }
    let sum: f64 = v["posterior"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-9);
    items
        .iter()
        .map(|q| q["item"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_user_gets_five_questions_and_an_answer_changes_them() {
    let app = app_with(|_| {});
    let first = post(&app, "{}").await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    let asked = questions(&first);
    assert_eq!(asked.len(), 5);
    // The prior: three types, none certain; the best question tells a real share of a nat.
    assert_eq!(first["posterior"].as_array().unwrap().len(), 3);
    assert!(
        first["items"][0]["gain"].as_f64().unwrap() > 0.05,
        "{first}"
    );
    // A rating of the best question: it is not asked again, and the posterior moves.
    let body = json!({"ratings": {asked[0].clone(): 5}, "n": 3, "exclude": [asked[1]]});
    let next = post(&app, &body.to_string()).await.json();
    let again = questions(&next);
    assert_eq!(again.len(), 3);
    assert!(
        !again.contains(&asked[0]) && !again.contains(&asked[1]),
        "{again:?}"
    );
    assert_ne!(next["posterior"], first["posterior"]);
}

#[tokio::test]
async fn onboarding_is_bounded_like_recommend() {
    let app = app_with(|s| {
        s.server.max_n = 20;
        s.server.max_profile_ratings = 3;
    });
    for n in [json!(0), json!(21), json!(-1), json!("5")] {
        post(&app, &json!({ "n": n }).to_string())
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        questions(&post(&app, r#"{"n": 20}"#).await.json()).len(),
        20
    );
    let big = json!({"ratings": {"m001": 1, "m002": 2, "m003": 3, "m004": 4}});
    let d = post(&app, &big.to_string())
        .await
        .problem(StatusCode::BAD_REQUEST);
    assert!(d.contains("server.max_profile_ratings"), "{d}");
    for bad in [
        r#"{"ratings": {"nope": 3}}"#,
        r#"{"ratings": {"m001": 9}}"#,
        r#"{"exclude": ["nope"]}"#,
        r#"{"ratings": {"m001": 3, "m001": 4}}"#,
        r#"{"items": []}"#,
        r#"{"ratings": "#,
    ] {
        post(&app, bad).await.problem(StatusCode::BAD_REQUEST);
    }
    let req = Request::post("/v1/onboarding")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    send(&app, req)
        .await
        .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn every_model_kind_asks() {
    for kind in [ModelKind::Mixture, ModelKind::Gpl, ModelKind::Mfa] {
        let mut settings = service_settings(|s| s.training.model = kind);
        settings.training.holdout = 0.0;
        let mut go = |_: &mixrec::mixture::Progress| std::ops::ControlFlow::Continue(());
        let model = tokio::task::spawn_blocking(move || {
            let t = &settings.training;
            mixrec::serving::train(&mixrec::data::Source::Embedded, t, 1, &mut go).unwrap()
        })
        .await
        .unwrap();
        let app = router(AppState::with_model(service_settings(|_| {}), model).unwrap());
        for body in ["{}", r#"{"ratings": {"m001": 5, "m002": 1}, "n": 8}"#] {
            let v = post(&app, body).await.json();
            let asked = questions(&v);
            assert!(asked.len() >= 5, "{kind}: {v}");
            assert!(v["items"][0]["gain"].as_f64().unwrap() > 0.0, "{kind}: {v}");
        }
    }
}
