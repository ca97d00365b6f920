//! From ratings to a model that answers: optionally fit a baseline and train the mixture on
//! what it leaves, then package the mixture with how to read it.

use std::ops::ControlFlow;

use super::model::Baseline;
use super::{Fit, FitError, Model, Progress, ValidParams, em, fit};
use crate::data::{RatingScale, Ratings};

/// Trains on `ratings` (whose valid ratings are `scale`) and returns the fit and its model.
pub fn train(
    ratings: &Ratings,
    scale: RatingScale,
    params: &ValidParams,
    on_iter: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Fit, Model), FitError> {
    let (fit, baseline) = if params.baseline() {
        let (baseline, residuals, by_item) = Baseline::fit_both(ratings, params.ridge());
        let fit = em::fit_transposed(&residuals, by_item, params, on_iter)?;
        (fit, Some(baseline))
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
