//! The fit policy: which model the service trains on a snapshot. The model kind the settings
//! ask for; for mixtures, K as configured or chosen on a held-out split (`k_auto`), the
//! held-out RMSE measured first when `holdout > 0`, and more restarts when a fit leaves a type
//! empty. One function, [`fit`]: a snapshot, the training settings and a progress callback in;
//! the trained [`Predictor`] and a [`FitSummary`] of its figures out.
//!
//! Blocking and CPU-bound. Must not import: the registry, jobs, stores, web or async types.

use std::ops::ControlFlow;

use crate::config::TrainingSettings;
use crate::data::{self, Snapshot};
use crate::eval;
use crate::mixture::{self, Progress};
use crate::plsa;
use crate::predictor::{ModelKind, Predictor};

use super::check::check;
use super::error::TrainError;
use super::info::KSelection;

/// Trains the model kind `settings` ask for; for mixtures with `k_auto`, K is chosen first on a
/// held-out 10 % of the snapshot (the smallest K within 0.1 % of the best held-out RMSE).
pub fn fit(
    snapshot: &Snapshot,
    settings: &TrainingSettings,
    log: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Predictor, FitSummary), TrainError> {
    let (r, scale) = (&snapshot.ratings, snapshot.scale);
    if settings.model == ModelKind::Gpl {
        let p = settings.plsa_params();
        let fit = plsa::fit_with(r, scale, &p, log)?;
        let summary = FitSummary {
            log_likelihood: None,
            cost: None,
            iterations: fit.iterations,
            converged: fit.iterations < p.max_iter,
            k_selection: KSelection::Configured,
            heldout_rmse: Some(fit.validation_rmse[fit.best_iteration - 1]),
        };
        return Ok((Predictor::Gpl(fit.model), summary));
    }
    let (k, k_selection, heldout_rmse) = if settings.k_auto {
        let split = data::holdout(r, settings.holdout, settings.seed);
        let ks: Vec<usize> = (settings.k_range[0]..=settings.k_range[1]).collect();
        let n = split.train.n_users();
        let curve = eval::k_curve(&split, scale, &ks, |k| {
            TrainingSettings {
                k,
                ..settings.clone()
            }
            .fit_params()
            .check(n)
        })
        .map_err(|e| match e {
            eval::SelectError::Params(p) => TrainError::Params(p),
            eval::SelectError::Fit(f) => TrainError::Fit(f),
        })?;
        let picked = eval::pick(&curve, eval::Criterion::Heldout).expect("a non-empty range");
        // A K whose fit on all the ratings leaves a type empty has a type too many: take the
        // next smaller K of the curve instead (an empty type is refused, see `check`).
        let mut ks: Vec<usize> = curve.iter().map(|p| p.k).filter(|&k| k <= picked).collect();
        ks.sort_unstable_by(|a, b| b.cmp(a));
        let mut last = None;
        for k in ks {
            let valid = TrainingSettings {
                k,
                ..settings.clone()
            }
            .fit_params()
            .check(r.n_users())?;
            let (fit, model) = mixture::train(r, scale, &valid, log)?;
            let model = Predictor::Mixture(model);
            match check(&model, r.n_users()) {
                Err(e @ TrainError::EmptyType { .. }) => {
                    tracing::info!(k, reason = %e, "k_auto: trying a smaller K");
                    last = Some(e);
                }
                _ => {
                    let rmse = curve.iter().find(|p| p.k == k).map(|p| p.heldout_rmse);
                    let summary = FitSummary::of(&fit, KSelection::Heldout, rmse);
                    return Ok((model, summary));
                }
            }
        }
        return Err(last.expect("at least the picked K was tried"));
    } else if settings.holdout > 0.0 {
        // Measure first: the same settings on all but the held-out share.
        let split = data::holdout(r, settings.holdout, settings.seed);
        let valid = settings.fit_params().check(split.train.n_users())?;
        let (_, measured) = mixture::train(&split.train, scale, &valid, log)?;
        let rmse = eval::score_model(&split, &Predictor::Mixture(measured)).rmse;
        (settings.k, KSelection::Configured, Some(rmse))
    } else {
        (settings.k, KSelection::Configured, None)
    };
    // A fit that leaves a type empty found a poor local optimum for K types: more restarts
    // (the same ones plus new ones) usually find a better one; past MAX_RESTARTS the model is
    // refused by `check` and K is too large for the snapshot.
    let mut n_init = settings.n_init;
    loop {
        let valid = TrainingSettings {
            k,
            n_init,
            ..settings.clone()
        }
        .fit_params()
        .check(r.n_users())?;
        let (fit, model) = mixture::train(r, scale, &valid, log)?;
        let model = Predictor::Mixture(model);
        if let Err(e @ TrainError::EmptyType { .. }) = check(&model, r.n_users())
            && n_init < MAX_RESTARTS
        {
            n_init = (n_init * 2).min(MAX_RESTARTS);
            tracing::info!(n_init, reason = %e, "retrying with more restarts");
            continue;
        }
        return Ok((model, FitSummary::of(&fit, k_selection, heldout_rmse)));
    }
}

/// Restarts a mixture fit may grow to when its best restart leaves a type empty.
const MAX_RESTARTS: usize = 16;

/// The figures of a fit that outlive its mixture (which moves into the model): what
/// `GET /v1/model` reports about training.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSummary {
    /// EM: log-likelihood at the last E-step.
    pub log_likelihood: Option<f64>,
    /// k-means: cost.
    pub cost: Option<f64>,
    /// Iterations of the best restart.
    pub iterations: usize,
    /// Whether the stopping rule fired before the cap.
    pub converged: bool,
    /// How K was chosen.
    pub k_selection: KSelection,
    /// RMSE on held-out ratings, when the policy measured one.
    pub heldout_rmse: Option<f64>,
}

impl FitSummary {
    fn of(fit: &mixture::Fit, k_selection: KSelection, heldout_rmse: Option<f64>) -> Self {
        Self {
            log_likelihood: fit.log_likelihood,
            cost: fit.cost,
            iterations: fit.iterations,
            converged: fit.converged,
            k_selection,
            heldout_rmse,
        }
    }
}
