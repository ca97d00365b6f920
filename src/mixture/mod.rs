//! The numeric engine: Gaussian mixtures over sparse rating profiles.
//!
//! Each user's ratings are a draw from one of K types; type j has a weight `p_j`, a mean rating
//! per item `mu_jl` and one variance `var_j`. Only observed ratings enter the likelihood:
//!
//! ```text
//! log p(x_u) = logsumexp_j [ ln p_j + Σ_{l ∈ C_u} ln N(x_ul; mu_jl, var_j) ]
//! ```
//!
//! Nothing here knows about HTTP or async runtimes; every function takes its inputs as views and
//! is deterministic for a given seed, whatever the number of threads.

mod bias;
mod dense;
mod em;
mod init;
mod kernels;
mod model;
mod numpy;
mod params;
mod pass;
mod select;
mod train;

pub use bias::{Biases, RIDGE_GRID, Ridge};
pub use em::{FitError, Progress, Stepper, fit};
pub use init::{item_means, plus_plus, rows_as_stored};
pub use model::{Baseline, ItemScore, Model, Posterior, Prediction, ProfileError, ScoreTable};
pub(crate) use model::{SkipWalk, best_scores, top_n, unskipped};
pub use numpy::legacy_choice_without_replacement;
pub use params::{Algorithm, FitParams, Init, ParamsError, ValidParams};
pub(crate) use pass::log_sum_exp;
pub use pass::{Estep, PassTimes, estep};
pub use select::{bic, free_parameters};
pub use train::{Residuals, train, train_with};

use ndarray::{Array1, Array2};

/// A mixture of K spherical Gaussians over d items.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// Means, item-major: `means[[l, j]]` is type j's mean rating of item l. (n_items, k)
    ///
    /// Item-major because every pass walks a user's ratings and needs the K means of one item
    /// at a time: they sit in one cache line or two.
    pub means: Array2<f64>,
    /// Variance of each type. (k,)
    pub variances: Array1<f64>,
    /// Weight of each type; they sum to 1. (k,)
    pub weights: Array1<f64>,
}

impl Mixture {
    /// Number of types K.
    pub fn k(&self) -> usize {
        self.weights.len()
    }

    /// Number of items d.
    pub fn n_items(&self) -> usize {
        self.means.nrows()
    }

    /// Means as K rows of d items (the JSON and seed order). (k, n_items)
    pub fn means_by_type(&self) -> Vec<Vec<f64>> {
        self.means
            .t()
            .outer_iter()
            .map(|row| row.to_vec())
            .collect()
    }
}

/// The result of one training run.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The trained mixture (after the last M-step).
    pub mixture: Mixture,
    /// EM or k-means.
    pub algorithm: Algorithm,
    /// Log-likelihood of the data at the last E-step (EM); for k-means, that of the returned
    /// mixture read as a Gaussian mixture is not computed and this is `None`.
    pub log_likelihood: Option<f64>,
    /// k-means cost (sum of squared distances to the assigned means), `None` for EM.
    pub cost: Option<f64>,
    /// Iterations (E-steps) of the best run.
    pub iterations: usize,
    /// Whether the stopping rule fired before `max_iter`.
    pub converged: bool,
    /// Log-likelihood (EM) or cost (k-means) after each iteration of the best run.
    pub history: Vec<f64>,
    /// Which restart won (0-based), out of `n_init`.
    pub best_init: usize,
    /// Posteriors of the last E-step of the best run, user-major. (n_users, k)
    pub posteriors: Array2<f64>,
}
