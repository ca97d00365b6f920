//! The fit policy: which model the service trains on a snapshot. It is the one path every CLI
//! command takes too, [`crate::select::train`], with the `[training]` settings turned into its
//! [`crate::select::Spec`] by [`TrainingSettings::spec`]: what is `"auto"` is chosen on a
//! held-out share, the chosen configuration trains on all the ratings, and a fit that leaves a
//! type empty gets more restarts, then a smaller K.
//!
//! Blocking and CPU-bound. Must not import: the registry, jobs, stores, web or async types.

use std::ops::ControlFlow;

use crate::config::TrainingSettings;
use crate::data::Snapshot;
use crate::mixture::Progress;
use crate::predictor::{ModelKind, Predictor};
use crate::select::{self, SelectError};

use super::error::TrainError;
use super::info::{KSelection, Selection};

/// Trains what `settings` ask for on `snapshot` (see the module docs).
pub fn fit(
    snapshot: &Snapshot,
    settings: &TrainingSettings,
    log: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<(Predictor, FitSummary), TrainError> {
    let trained = select::train(&snapshot.ratings, snapshot.scale, &settings.spec(), log)
        .map_err(TrainError::from)?;
    let (f, c) = (&trained.figures, &trained.chosen);
    let heldout_predictions = c.heldout_predictions.clone();
    let summary = FitSummary {
        log_likelihood: f.log_likelihood,
        cost: f.cost,
        iterations: f.iterations,
        converged: f.converged,
        k_selection: if c.k_chosen {
            KSelection::Heldout
        } else {
            KSelection::Configured
        },
        heldout_rmse: c.heldout_rmse,
        selection: Selection {
            prior_strength: c.prior_strength,
            ridge: c.ridge,
            rank: (settings.model == ModelKind::Mfa).then_some(c.rank),
            baseline_rmse: c.baseline_rmse,
            trials: c.trials.len(),
        },
        heldout_predictions,
    };
    Ok((trained.predictor, summary))
}

impl From<SelectError> for TrainError {
    fn from(e: SelectError) -> Self {
        match e {
            SelectError::Params(p) => Self::Params(p),
            SelectError::Fit(f) => Self::Fit(f),
            SelectError::EmptyType {
                index,
                weight,
                users,
                ..
            } => Self::EmptyType {
                index,
                weight,
                users,
            },
        }
    }
}

/// The figures of a fit that outlive it: what `GET /v1/model` reports about training.
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
    /// RMSE on held-out ratings of the chosen configuration, when some were held out.
    pub heldout_rmse: Option<f64>,
    /// What was chosen.
    pub selection: Selection,
    /// The chosen configuration's predictions of the held-out ratings, in split order (see
    /// [`crate::select::Chosen::heldout_predictions`]); empty when nothing was held out.
    pub heldout_predictions: Vec<f64>,
}
