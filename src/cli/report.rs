//! What `mixrec fit` prints: a summary, or with `--json` one object.
//!
//! Imports nothing of the CLI's other files.

use std::io::Write;

use crate::data::Snapshot;
use crate::mixture::{self, Algorithm};
use crate::predictor::{ModelKind, Predictor};
use crate::select::{Chosen, Trained};

/// What `fit --json` prints.
#[derive(Debug, serde::Serialize)]
pub struct FitReport {
    /// `mixture` or `gpl`.
    pub model: ModelKind,
    /// K.
    pub k: usize,
    /// em or kmeans (pLSA: em).
    pub algorithm: Algorithm,
    /// Users in the snapshot.
    pub n_users: usize,
    /// Items in the snapshot.
    pub n_items: usize,
    /// Observed ratings.
    pub n_ratings: usize,
    /// Iterations of the best run.
    pub iterations: usize,
    /// Whether the stopping rule fired.
    pub converged: bool,
    /// EM mixtures: log-likelihood at the last E-step (of the residuals, with a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood: Option<f64>,
    /// k-means: cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// EM mixtures: BIC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bic: Option<f64>,
    /// Type weights. [K]
    pub weights: Vec<f64>,
    /// Type variances (pLSA: averaged over items, in rating units). [K]
    pub variances: Vec<f64>,
    /// Each type's mean rating of each item, on the rating scale (with a baseline: for a user
    /// of average offset), items in snapshot order. [K][d]
    pub means: Vec<Vec<f64>>,
    /// Mixtures: the objective per iteration of the best run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<f64>,
    /// Mixtures: which restart won.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_init: Option<usize>,
    /// Wall-clock seconds of loading the snapshot (parse or decode, ids, checks).
    pub load_seconds: f64,
    /// Wall-clock seconds of training, selection included (loading excluded).
    pub training_seconds: f64,
    /// What was chosen on held-out ratings, and every configuration tried.
    pub chosen: Chosen,
}

impl FitReport {
    /// The report of `trained` on `snapshot`.
    pub fn new(snapshot: &Snapshot, trained: &Trained, load_seconds: f64, seconds: f64) -> Self {
        let (r, p, f) = (&snapshot.ratings, &trained.predictor, &trained.figures);
        let k = p.k();
        let fit = trained.fit.as_ref();
        Self {
            model: p.kind(),
            k,
            algorithm: match p {
                Predictor::Mixture(m) => m.algorithm,
                Predictor::Gpl(_) | Predictor::Mfa(_) => Algorithm::Em,
            },
            n_users: r.n_users(),
            n_items: r.n_items(),
            n_ratings: r.nnz(),
            iterations: f.iterations,
            converged: f.converged,
            log_likelihood: f.log_likelihood,
            cost: f.cost,
            bic: f
                .log_likelihood
                .map(|ll| mixture::bic(ll, k, r.n_items(), r.n_users())),
            weights: (0..k).map(|j| p.type_weight(j)).collect(),
            variances: (0..k).map(|j| p.type_variance(j)).collect(),
            means: (0..k)
                .map(|j| (0..p.n_items()).map(|l| p.type_mean(l, j)).collect())
                .collect(),
            history: fit.map(|f| f.history.clone()).unwrap_or_default(),
            best_init: fit.map(|f| f.best_init),
            load_seconds,
            training_seconds: seconds,
            chosen: trained.chosen.clone(),
        }
    }

    /// The human-readable summary.
    pub fn write_summary(&self, out: &mut impl Write) -> std::io::Result<()> {
        let kind = match self.model {
            ModelKind::Mixture => self.algorithm.to_string(),
            ModelKind::Gpl => "Gaussian pLSA".to_owned(),
            ModelKind::Mfa => "low-rank mixture".to_owned(),
        };
        writeln!(
            out,
            "{} users × {} items, {} ratings; {kind} with K = {}",
            self.n_users, self.n_items, self.n_ratings, self.k
        )?;
        let state = if self.converged {
            "converged"
        } else {
            "stopped at --max-iter"
        };
        writeln!(
            out,
            "{} iterations ({state}) in {:.3} s",
            self.iterations, self.training_seconds
        )?;
        if let (Some(ll), Some(bic)) = (self.log_likelihood, self.bic) {
            writeln!(out, "log-likelihood {ll:.6}   BIC {bic:.6}")?;
        }
        if let Some(cost) = self.cost {
            writeln!(out, "cost {cost:.6}")?;
        }
        if let Some(rmse) = self.chosen.heldout_rmse {
            writeln!(out, "held-out RMSE {rmse:.4}")?;
        }
        writeln!(out, "type  weight    variance")?;
        for j in 0..self.k {
            writeln!(
                out,
                "{j:>4}  {:.6}  {:.6}",
                self.weights[j], self.variances[j]
            )?;
        }
        Ok(())
    }
}
