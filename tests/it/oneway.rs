//! One prediction path: what `eval` scores for a training user is what the service answers when
//! that user's training ratings are posted to `POST /v1/complete` (the real binary, a real
//! socket), on every model kind.

use std::ops::ControlFlow;

use figment::providers::Format as _;
use serde_json::{Value, json};

use mixrec::data::{self, Held, LoadOptions, Split};
use mixrec::predictor::ModelKind;

use crate::process::Server;
use crate::support::shared_data;

/// Starts the service on `data` with `env`, trains the same settings (`edit` says them again
/// for the in-process side) and checks that `/v1/complete` for a few training users equals
/// [`mixrec::score::predictions`].
async fn agree(
    data: &std::path::Path,
    kind: ModelKind,
    env: &[(&str, &str)],
    edit: impl FnOnce(&mut mixrec::config::TrainingSettings),
) {
    let path = data.to_str().unwrap();
    let server = Server::start(&["--data", path], env);
    server.wait_ready();
    let base = format!("http://{}", server.addr);
    let mut settings = shipped_settings();
    edit(&mut settings.training);
    assert_eq!(settings.training.model, kind);
    let snap = data::load(data, LoadOptions::default()).unwrap();
    let spec = settings.training.spec();
    let trained = mixrec::select::train(&snap.ratings, snap.scale, &spec, &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    // Five users, each asked for four items they did not rate.
    let users = [0usize, 7, 19, 101, 555];
    let mut test = Vec::new();
    for &u in &users {
        let rated = snap.ratings.row(u).0;
        let unrated = (0..snap.ratings.n_items() as u32).filter(|l| !rated.contains(l));
        test.extend(unrated.step_by(97).take(4).map(|item| Held {
            user: u as u32,
            item,
            rating: 3.0,
        }));
    }
    let split = Split {
        train: snap.ratings.clone(),
        test,
    };
    let offline = mixrec::score::predictions(&split, &trained.predictor);
    // What a model search keeps of each trial is the same ratings, made on their own.
    let ratings: Vec<f64> = offline.iter().map(|p| p.rating).collect();
    assert_eq!(
        mixrec::score::predicted_ratings(&split, &trained.predictor),
        ratings
    );
    let http = reqwest::Client::new();
    for (group, answers) in split
        .test
        .chunk_by(|a, b| a.user == b.user)
        .zip(offline.chunks(4))
    {
        let u = group[0].user as usize;
        let (items, values) = snap.ratings.row(u);
        let ratings: serde_json::Map<String, Value> = items
            .iter()
            .zip(values)
            .map(|(&l, &x)| (snap.items.name(l as usize).into_owned(), json!(x)))
            .collect();
        let asked: Vec<String> = group
            .iter()
            .map(|h| snap.items.name(h.item as usize).into_owned())
            .collect();
        let reply: Value = http
            .post(format!("{base}/v1/complete"))
            .json(&json!({"ratings": ratings, "items": asked}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let predictions = reply["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{reply}"));
        assert_eq!(predictions.len(), 4, "{reply}");
        for (p, want) in predictions.iter().zip(answers) {
            assert_eq!(p["item"], snap.items.name(want.item as usize).as_ref());
            let (rating, spread) = (p["rating"].as_f64().unwrap(), p["spread"].as_f64().unwrap());
            assert!(
                (rating - want.rating).abs() <= 1e-9 && (spread - want.spread).abs() <= 1e-9,
                "{kind}, user {u}: the service says {rating} ± {spread}, eval {} ± {}",
                want.rating,
                want.spread
            );
        }
    }
    server.signal("TERM");
    let (status, _) = server.exit();
    assert!(status.success());
}

/// The shipped defaults, as the binary reads them with no configuration.
fn shipped_settings() -> mixrec::config::Settings {
    let figment = figment::Figment::from(figment::providers::Toml::string(
        mixrec::config::DEFAULT_TOML,
    ));
    mixrec::config::Settings::from_figment(figment, &Default::default()).unwrap()
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[tokio::test]
async fn the_service_answers_a_training_user_as_eval_scores_them_mixture() {
    let Some(dir) = shared_data() else { return };
    agree(
        &dir.join("netflix_longtail.csv"),
        ModelKind::Mixture,
        &[("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0")],
        |_| {},
    )
    .await;
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[tokio::test]
async fn the_service_answers_a_training_user_as_eval_scores_them_gpl() {
    let Some(dir) = shared_data() else { return };
    agree(
        &dir.join("netflix_longtail.csv"),
        ModelKind::Gpl,
        &[
            ("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0"),
            ("MIXREC__TRAINING__MODEL", "gpl"),
            ("MIXREC__TRAINING__K", "4"),
        ],
        |t| {
            t.model = ModelKind::Gpl;
            t.k = mixrec::config::Auto::Is(4);
        },
    )
    .await;
}

#[cfg_attr(not(mixrec_shared_data), ignore = "needs ../shared/data")]
#[tokio::test]
async fn the_service_answers_a_training_user_as_eval_scores_them_mfa() {
    let Some(dir) = shared_data() else { return };
    agree(
        &dir.join("netflix_longtail.csv"),
        ModelKind::Mfa,
        &[
            ("MIXREC__SERVER__SHUTDOWN_DELAY_MS", "0"),
            ("MIXREC__TRAINING__MODEL", "mfa"),
            ("MIXREC__TRAINING__K", "2"),
            ("MIXREC__TRAINING__RANK", "3"),
        ],
        |t| {
            t.model = ModelKind::Mfa;
            t.k = mixrec::config::Auto::Is(2);
            t.rank = mixrec::config::Auto::Is(3);
        },
    )
    .await;
}
