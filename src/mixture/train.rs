//! From ratings to a model that answers: optionally fit a baseline and train the mixture on
//! what it leaves, then package the mixture with how to read it.

use std::borrow::Cow;
use std::ops::ControlFlow;

use super::model::Baseline;
use super::{Fit, FitError, Model, Progress, Ridge, ValidParams, em, fit};
use crate::data::{RatingScale, Ratings};

/// A baseline fitted with one ridge and the residuals it leaves, by user and by item: what
/// every mixture over that baseline trains on. The model search fits many (K, λ) on one
/// training share with one ridge, and a final fit may restart with more restarts: they share
/// one of these instead of fitting the baseline and transposing the residuals each time (at
/// 100 M ratings, seconds a fit).
///
/// The residuals by item are made only for a mixture whose pass walks items
/// ([`super::pass::scatters`] says which); at 100 M ratings the pass scatters, and not holding
/// them is 800 MB less.
#[derive(Debug, Default)]
pub struct Residuals {
    made: Option<(Ridge, Baseline, Ratings, Option<Ratings>)>,
}

impl Residuals {
    /// Nothing worked out yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The baseline of `ratings` with `ridge` and its residuals by user, and by item where a
    /// mixture of `k` types walks items, worked out unless the last call had the same ridge
    /// (the residuals by item: unless an earlier call made them). The caller passes the same
    /// `ratings` every time.
    fn get(
        &mut self,
        ratings: &Ratings,
        ridge: Ridge,
        k: usize,
    ) -> (&Baseline, &Ratings, Option<&Ratings>) {
        let walks_items = !super::pass::scatters(ratings, k);
        if self.made.as_ref().is_none_or(|m| m.0 != ridge) {
            // The old arrays go first: two sets of residuals never live at once.
            self.made = None;
            self.made = Some(if walks_items {
                let (baseline, by_user, by_item) = Baseline::fit_both(ratings, ridge);
                (ridge, baseline, by_user, Some(by_item))
            } else {
                let (baseline, by_user) = Baseline::fit(ratings, ridge);
                (ridge, baseline, by_user, None)
            });
        }
        let (_, baseline, by_user, by_item) = self.made.as_mut().expect("made above");
        if walks_items && by_item.is_none() {
            // The same residuals in the same order as `fit_both`'s (each is a function of its
            // user, item and rating alone).
            *by_item = Some(by_user.transposed());
        }
        (baseline, by_user, by_item.as_ref())
    }
}

/// Trains on `ratings` (whose valid ratings are `scale`) and returns the fit and its model.
pub fn train(
    ratings: &Ratings,
    scale: RatingScale,
    params: &ValidParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Fit, Model), FitError> {
    train_with(ratings, scale, params, &mut Residuals::new(), on_iter)
}

/// [`train`], the baseline and its residuals taken from `residuals` (worked out there first
/// when it holds none for this ridge). Every call with one `residuals` passes the same
/// `ratings`.
pub fn train_with(
    ratings: &Ratings,
    scale: RatingScale,
    params: &ValidParams,
    residuals: &mut Residuals,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Fit, Model), FitError> {
    let (fit, baseline) = if params.baseline() {
        let (baseline, by_user, by_item) = residuals.get(ratings, params.ridge(), params.k());
        let fit = em::fit_transposed(by_user, by_item.map(Cow::Borrowed), params, on_iter)?;
        (fit, Some(baseline.clone()))
    } else {
        (fit(ratings, params, on_iter)?, None)
    };
    let model = Model {
        mixture: fit.mixture.clone(),
        algorithm: fit.algorithm,
        scale,
        clip: params.clip_predictions(),
        baseline,
    };
    Ok((fit, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixture::FitParams;

    #[test]
    fn shared_residuals_train_the_models_fresh_ones_do() {
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|u| {
                (0..25)
                    .map(|l| {
                        if (u * 5 + l * 7) % 4 == 0 {
                            0.0
                        } else {
                            1.0 + ((u / 50 + l) % 5) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        let r = Ratings::from_dense_rows(&rows);
        let scale = RatingScale { min: 1.0, max: 5.0 };
        let quiet = &mut |_: &Progress| ControlFlow::Continue(());
        let params = |k: usize, item: f64| {
            FitParams::new(k)
                .ridge(Ridge { item, user: 5.0 })
                .check(r.n_users())
                .unwrap()
        };
        let mut shared = Residuals::new();
        // K = 3 and 4 share one baseline, then another ridge, then the first again.
        for (k, item) in [(3, 10.0), (4, 10.0), (3, 2.0), (4, 10.0)] {
            let p = params(k, item);
            let fresh = train(&r, scale, &p, quiet).unwrap().1;
            let reused = train_with(&r, scale, &p, &mut shared, quiet).unwrap().1;
            let what = format!("K = {k}, λ_item = {item}");
            assert_eq!(reused.mixture, fresh.mixture, "{what}");
            assert_eq!(reused.baseline, fresh.baseline, "{what}");
            let (ridge, _, by_user, _) = shared.made.as_ref().unwrap();
            assert_eq!(ridge.item, item);
            // The residuals by user hold the ratings' own index, not a copy of it.
            assert!(by_user.shares_index(&r));
        }
    }
}
