//! Held-out evaluation: RMSE and MAE on ratings hidden from training, for a mixture and for
//! simple baselines on the same split. Predictions are clipped to the rating scale.

use std::ops::ControlFlow;
use std::time::Instant;

use crate::data::{Held, RatingScale, Ratings, Split};
use crate::mixture::{self, Biases, FitError, Model, ValidParams};

/// Error of one method on one split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scores {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Ratings scored.
    pub n: usize,
}

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
}

/// Scores `predict` on `test`, clipping each prediction into `scale`.
pub fn score(test: &[Held], scale: RatingScale, mut predict: impl FnMut(&Held) -> f64) -> Scores {
    let (mut sq, mut abs) = (0.0, 0.0);
    for h in test {
        let err = scale.clip(predict(h)) - f64::from(h.rating);
        sq += err * err;
        abs += err.abs();
    }
    let n = test.len().max(1) as f64;
    Scores {
        rmse: (sq / n).sqrt(),
        mae: abs / n,
        n: test.len(),
    }
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
            let b = Biases::fit(train);
            Box::new(move |h| b.predict(h.user as usize, h.item))
        }),
    ]
}

/// Scores `model` on `split`: each user's posterior comes from their training ratings.
pub fn score_model(split: &Split, model: &Model) -> Scores {
    let mut preds = Vec::with_capacity(split.test.len());
    for group in split.test.chunk_by(|a, b| a.user == b.user) {
        let (items, values) = split.train.row(group[0].user as usize);
        let profile: Vec<(u32, f64)> = items
            .iter()
            .zip(values)
            .map(|(&l, &x)| (l, f64::from(x)))
            .collect();
        let post = model
            .posterior(&profile)
            .expect("training items are in the model");
        preds.extend(group.iter().map(|h| model.predict(&post, h.item).rating));
    }
    let mut next = preds.into_iter();
    score(&split.test, model.scale, |_| {
        next.next().expect("one prediction per rating")
    })
}

/// Trains a mixture on the split's training ratings and scores it.
pub fn mixture(
    split: &Split,
    scale: RatingScale,
    params: &ValidParams,
) -> Result<MethodScore, FitError> {
    let started = Instant::now();
    let (_, model) = mixture::train(&split.train, scale, params, &mut |_| {
        ControlFlow::Continue(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(MethodScore {
        method: "mixture".into(),
        scores: score_model(split, &model),
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_clipped_rmse_and_mae() {
        let test = [
            Held {
                user: 0,
                item: 0,
                rating: 1.0,
            },
            Held {
                user: 0,
                item: 1,
                rating: 4.0,
            },
        ];
        let scale = RatingScale { min: 1.0, max: 5.0 };
        // predictions 0 → clipped to 1 (error 0) and 5 (error 1)
        let mut preds = [0.0, 5.0].into_iter();
        let s = score(&test, scale, |_| preds.next().unwrap());
        assert_eq!(
            s,
            Scores {
                rmse: 0.5f64.sqrt(),
                mae: 0.5,
                n: 2
            }
        );
    }
}
