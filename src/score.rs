//! Held-out scoring: RMSE and MAE of predictions on ratings hidden from training, each clipped
//! to the rating scale; a model is scored exactly as the service answers a posted profile.
//!
//! No web or async types here; imports no selection or evaluation code.

use crate::data::{Held, RatingScale, Split};
use rayon::prelude::*;

use crate::mixture::Prediction;
use crate::predictor::Predictor;

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

/// Scores `model` on `split`: each user's belief comes from their training ratings, as a
/// posted profile's would ([`predictions`]).
pub fn score_model(split: &Split, model: &Predictor) -> Scores {
    let mut next = predictions(split, model).into_iter();
    score(&split.test, model.scale(), |_| {
        next.next().expect("one prediction per rating").rating
    })
}

/// The prediction and spread of every rating of `split.test`, in its order: for each user, the
/// posterior of their training ratings posted as a profile, then the predictions from it: the
/// path `POST /v1/complete` takes (`tests/it/oneway.rs` checks the two agree).
pub fn predictions(split: &Split, model: &Predictor) -> Vec<Prediction> {
    let blank = Prediction {
        item: 0,
        rating: 0.0,
        spread: 0.0,
    };
    held_out(split, model, blank, |p| p)
}

/// The predicted ratings of [`predictions`] alone, made without the full predictions in
/// between: 8 bytes a held-out rating, not 24 (what a model search keeps of each trial).
pub fn predicted_ratings(split: &Split, model: &Predictor) -> Vec<f64> {
    held_out(split, model, 0.0, |p| p.rating)
}

/// `keep` of the prediction of every rating of `split.test`, in its order (see
/// [`predictions`]).
fn held_out<T: Copy + Send>(
    split: &Split,
    model: &Predictor,
    blank: T,
    keep: impl Fn(Prediction) -> T + Sync,
) -> Vec<T> {
    let mut preds = vec![blank; split.test.len()];
    // Users in parallel (each user's belief is independent), each writing its own stretch of
    // the answers: one array of them, not one a user joined after (at 10 M held-out ratings
    // that was 240 MB more at the search's peak).
    let mut jobs: Vec<(&[Held], &mut [T])> = Vec::new();
    let mut rest = preds.as_mut_slice();
    for group in split.test.chunk_by(|a, b| a.user == b.user) {
        let (head, tail) = rest.split_at_mut(group.len());
        jobs.push((group, head));
        rest = tail;
    }
    jobs.into_par_iter().for_each(|(group, out)| {
        let (items, values) = split.train.row(group[0].user as usize);
        let profile: Vec<(u32, f64)> = items
            .iter()
            .zip(values)
            .map(|(&l, &x)| (l, f64::from(x)))
            .collect();
        let belief = model
            .posterior(&profile)
            .expect("training items are in the model");
        for (o, h) in out.iter_mut().zip(group) {
            *o = keep(model.predict(&belief, h.item));
        }
    });
    preds
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
