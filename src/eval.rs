//! Held-out evaluation: RMSE and MAE on ratings hidden from training, for a mixture and for
//! simple baselines on the same split. Predictions are clipped to the rating scale.

use std::ops::ControlFlow;
use std::time::Instant;

use crate::data::{Held, RatingScale, Ratings, Split};
use crate::mixture::{self, Biases, FitError, ParamsError, ValidParams};
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

/// Scores `model` on `split`: each user's belief comes from their training ratings, as a
/// posted profile's would.
pub fn score_model(split: &Split, model: &Predictor) -> Scores {
    let mut preds = Vec::with_capacity(split.test.len());
    for group in split.test.chunk_by(|a, b| a.user == b.user) {
        let (items, values) = split.train.row(group[0].user as usize);
        let profile: Vec<(u32, f64)> = items
            .iter()
            .zip(values)
            .map(|(&l, &x)| (l, f64::from(x)))
            .collect();
        let belief = model
            .posterior(&profile)
            .expect("training items are in the model");
        preds.extend(group.iter().map(|h| model.predict(&belief, h.item).rating));
    }
    let mut next = preds.into_iter();
    score(&split.test, model.scale(), |_| {
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
        scores: score_model(split, &Predictor::Mixture(model)),
        seconds,
    })
}

/// Trains Gaussian pLSA on the split's training ratings and scores it.
pub fn gpl(split: &Split, scale: RatingScale, params: &crate::plsa::PlsaParams) -> MethodScore {
    let started = Instant::now();
    let fit = crate::plsa::fit(&split.train, scale, params);
    let seconds = started.elapsed().as_secs_f64();
    let scores = score_model(split, &Predictor::Gpl(fit.model));
    MethodScore {
        method: "gaussian pLSA".into(),
        scores,
        seconds,
    }
}

/// One point of a K-selection curve.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KPoint {
    /// Number of types.
    pub k: usize,
    /// Log-likelihood of the training ratings (EM only).
    pub log_likelihood: Option<f64>,
    /// BIC of that fit (EM only).
    pub bic: Option<f64>,
    /// RMSE on the held-out ratings.
    pub heldout_rmse: f64,
}

/// How `--k auto` picks K from the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Highest BIC.
    Bic,
    /// Lowest held-out RMSE.
    Heldout,
}

/// Trains one model per K in `ks` on `split.train` (parameters from `params_for`) and
/// records its log-likelihood, BIC and held-out RMSE.
pub fn k_curve(
    split: &Split,
    scale: RatingScale,
    ks: &[usize],
    params_for: impl Fn(usize) -> Result<ValidParams, ParamsError>,
) -> Result<Vec<KPoint>, SelectError> {
    let (n, d) = (split.train.n_users(), split.train.n_items());
    ks.iter()
        .map(|&k| {
            let params = params_for(k)?;
            let (fit, model) = mixture::train(&split.train, scale, &params, &mut |_| {
                ControlFlow::Continue(())
            })?;
            let log_likelihood = fit.log_likelihood;
            Ok(KPoint {
                k,
                log_likelihood,
                bic: log_likelihood.map(|ll| mixture::bic(ll, k, d, n)),
                heldout_rmse: score_model(split, &Predictor::Mixture(model)).rmse,
            })
        })
        .collect()
}

/// Held-out RMSEs within this relative distance of the best count as a tie, and the smallest
/// K among them wins: past a dozen types the curve is flat to the split's noise, and a smaller
/// model is cheaper and steadier.
pub const HELDOUT_TIE: f64 = 1e-3;

/// The K the criterion prefers: the highest BIC, or the smallest K whose held-out RMSE is
/// within [`HELDOUT_TIE`] of the lowest.
pub fn pick(curve: &[KPoint], criterion: Criterion) -> Option<usize> {
    match criterion {
        Criterion::Bic => {
            let bic = |p: &KPoint| p.bic.unwrap_or(f64::NEG_INFINITY);
            curve
                .iter()
                .max_by(|a, b| bic(a).total_cmp(&bic(b)).then(b.k.cmp(&a.k)))
                .map(|p| p.k)
        }
        Criterion::Heldout => {
            let best = curve
                .iter()
                .map(|p| p.heldout_rmse)
                .fold(f64::INFINITY, f64::min);
            let near = curve
                .iter()
                .filter(|p| p.heldout_rmse <= best * (1.0 + HELDOUT_TIE));
            near.map(|p| p.k).min()
        }
    }
}

/// Why a K-selection curve could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// Bad parameters for one K.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Training failed for one K.
    #[error(transparent)]
    Fit(#[from] FitError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_prefers_the_smallest_k_within_the_tie_band() {
        let point = |k, rmse, bic| KPoint {
            k,
            log_likelihood: None,
            bic: Some(bic),
            heldout_rmse: rmse,
        };
        let curve = [
            point(2, 0.84, -10.0),
            point(4, 0.8149, -12.0),
            point(8, 0.8142, -20.0),
        ];
        assert_eq!(pick(&curve, Criterion::Heldout), Some(4));
        assert_eq!(pick(&curve, Criterion::Bic), Some(2));
        assert_eq!(pick(&[], Criterion::Heldout), None);
    }

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
