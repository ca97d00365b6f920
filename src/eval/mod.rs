//! Held-out evaluation: RMSE and MAE on ratings hidden from training, for the models and for
//! the baselines on the same split (global, item and user means, the user+item bias with its
//! ridge tuned, ALS matrix factorisation). Predictions are clipped to the rating scale.
//! [`coldstart`] simulates new users answering questions.

pub mod als;
pub mod coldstart;

use std::ops::ControlFlow;
use std::time::Instant;

use crate::data::{Held, RatingScale, Ratings, Split};
use crate::mixture::{Biases, Ridge};
pub use crate::score::{Scores, score, score_model};

/// A method's scores and how long it trained.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MethodScore {
    /// `global mean`, `item mean`, `user mean`, `user+item bias` or `mixture`.
    pub method: String,
    /// Its errors.
    #[serde(flatten)]
    pub scores: Scores,
    /// Training seconds.
    pub seconds: f64,
    /// What was chosen inside training (ALS: rank and λ), if anything.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Mean of each row (or the fallback for empty rows). `ratings` may be transposed for items.
fn row_means(ratings: &Ratings, fallback: f64) -> Vec<f64> {
    (0..ratings.n_users())
        .map(|u| {
            let (_, values) = ratings.row(u);
            if values.is_empty() {
                fallback
            } else {
                values.iter().map(|&x| f64::from(x)).sum::<f64>() / values.len() as f64
            }
        })
        .collect()
}

/// The four baselines on `split`.
pub fn baselines(split: &Split, scale: RatingScale) -> Vec<MethodScore> {
    let train = &split.train;
    let timed = |method: &str, f: &dyn Fn() -> Box<dyn Fn(&Held) -> f64>| {
        let started = Instant::now();
        let predict = f();
        let seconds = started.elapsed().as_secs_f64();
        MethodScore {
            method: method.into(),
            scores: score(&split.test, scale, predict),
            seconds,
            detail: String::new(),
        }
    };
    let global =
        train.iter().map(|(_, _, x)| f64::from(x)).sum::<f64>() / train.nnz().max(1) as f64;
    vec![
        timed("global mean", &|| Box::new(move |_| global)),
        timed("item mean", &|| {
            let m = row_means(&train.transposed(), global);
            Box::new(move |h| m[h.item as usize])
        }),
        timed("user mean", &|| {
            let m = row_means(train, global);
            Box::new(move |h| m[h.user as usize])
        }),
        timed("user+item bias", &|| {
            // Its ridge chosen on a held-out share of the training ratings, as the models'
            // baseline is: the strongest version of the baseline, not the constants' one.
            let inner = crate::data::holdout(train, 0.1, 0);
            let (ridge, _) = Ridge::tune(&inner, scale);
            let b = Biases::fit(train, ridge);
            Box::new(move |h| b.predict(h.user as usize, h.item))
        }),
    ]
}

/// ALS matrix factorisation on `split`, its rank and λ chosen on a held-out share of the
/// training ratings; the method name carries the choice.
pub fn als(split: &Split, scale: RatingScale, seed: u64) -> MethodScore {
    let started = Instant::now();
    let params = als::tune(&split.train, scale, seed);
    let model = als::Als::fit(&split.train, params);
    let seconds = started.elapsed().as_secs_f64();
    MethodScore {
        method: "ALS MF".into(),
        scores: score(&split.test, scale, |h| {
            model.predict(h.user as usize, h.item)
        }),
        seconds,
        detail: format!("rank {}, λ {}", params.rank, params.lambda),
    }
}

/// Trains what `spec` asks for on the split's training ratings, choosing what it leaves open on
/// a share of them (the test ratings stay unseen), and scores it under `name`.
pub fn model(
    split: &Split,
    scale: RatingScale,
    spec: &crate::select::Spec,
    name: &str,
) -> Result<(MethodScore, crate::select::Trained), crate::select::SelectError> {
    let started = Instant::now();
    let trained =
        crate::select::train(
            &split.train,
            scale,
            spec,
            &mut |_| ControlFlow::Continue(()),
        )?;
    let seconds = started.elapsed().as_secs_f64();
    let score = MethodScore {
        method: name.into(),
        scores: score_model(split, &trained.predictor),
        seconds,
        detail: String::new(),
    };
    Ok((score, trained))
}
