//! What a trained model says about itself: the metadata `GET /v1/model` reports (and model
//! files keep), how K was chosen, and a summary of each type.
//!
//! Must not import: the rest of `src/serving` (everything there imports this), web or async
//! types.

use serde::{Deserialize, Serialize};

use crate::data::{Duplicates, Fingerprint, Format};
use crate::mixture::Algorithm;
use crate::predictor::ModelKind;

/// What `GET /v1/model` reports about a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// 1 for the model trained at start-up, +1 for each successful retrain.
    pub version: u64,
    /// When training finished (RFC 3339, UTC).
    pub trained_at: String,
    /// `mixture`, `mfa` (the low-rank mixture) or `gpl` (Gaussian pLSA).
    pub model: ModelKind,
    /// EM or k-means (pLSA and the low-rank mixture train by EM).
    pub algorithm: Algorithm,
    /// Whether the model measures what a user + item baseline leaves.
    pub baseline: bool,
    /// Number of types K.
    pub k: usize,
    /// How K was chosen.
    pub k_selection: KSelection,
    /// RMSE on ratings held out from training (`training.holdout`) of the chosen
    /// configuration, or pLSA's validation share; absent when training held nothing out.
    pub heldout_rmse: Option<f64>,
    /// What training chose on held-out ratings (absent from model files older than the choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// Users in the snapshot.
    pub n_users: usize,
    /// Items in the snapshot.
    pub n_items: usize,
    /// Observed ratings.
    pub n_ratings: usize,
    /// EM: log-likelihood at the last E-step.
    pub log_likelihood: Option<f64>,
    /// k-means: cost.
    pub cost: Option<f64>,
    /// EM: Bayesian information criterion (higher is better).
    pub bic: Option<f64>,
    /// Iterations of the best restart.
    pub iterations: usize,
    /// Whether the stopping rule fired before the cap.
    pub converged: bool,
    /// Wall-clock seconds of fitting (loading excluded).
    pub training_seconds: f64,
    /// The snapshot trained on.
    pub snapshot: SnapshotInfo,
}

/// What training chose on held-out ratings, for `GET /v1/model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// λ, the pull of each type's mean toward the baseline (pLSA: α).
    pub prior_strength: f64,
    /// The baseline's ridge strengths, when the model has a baseline.
    pub ridge: Option<crate::mixture::Ridge>,
    /// The low-rank mixture's rank.
    pub rank: Option<usize>,
    /// The baseline's RMSE on the same held-out ratings: what the model must beat.
    pub baseline_rmse: Option<f64>,
    /// Configurations tried.
    pub trials: usize,
}

/// How a model's K was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KSelection {
    /// `training.k` as configured.
    Configured,
    /// The smallest K of `training.k_range` within 0.1 % of the best held-out RMSE.
    Heldout,
}

/// Which snapshot a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// File path (or `embedded:...`, or the database URL without its password).
    pub path: String,
    /// Format it was read as.
    pub format: Format,
    /// What identifies the ratings trained on: the SHA-256 of a file's bytes, or of the rows
    /// a database sent (the name is the API's and the model files').
    pub sha256: Fingerprint,
    /// What a re-rating gave (model files older than the setting: `error`).
    #[serde(default)]
    pub duplicates: Duplicates,
    /// Ratings replaced by a later re-rating of the same pair (`latest`).
    #[serde(default)]
    pub replaced: usize,
}

/// One type of the model, for `GET /v1/model/types`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSummary {
    /// Share of users.
    pub weight: f64,
    /// Variance.
    pub variance: f64,
    /// Most characteristic items: (item index, the type's mean, lift over the overall mean).
    pub items: Vec<(u32, f64, f64)>,
}
