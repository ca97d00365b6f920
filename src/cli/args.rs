//! The flags the training commands share (`fit`, `complete`, `recommend`, `eval`), and the one
//! conversion from them to a [`Spec`] for [`crate::select`].
//!
//! Imports nothing of the CLI's other files.

use std::path::PathBuf;

use clap::Args;

use crate::data::{Columns, Format, RatingScale};
use crate::mixture::{Algorithm, FitParams, Init, Ridge};
use crate::plsa::PlsaParams;
pub use crate::predictor::ModelKind;
use crate::select::Criterion;
use crate::select::Spec;

/// Share of the ratings held out to choose what the flags leave open: the service's
/// `training.holdout` default, so the CLI chooses as the service does.
pub const SELECT_SHARE: f64 = 0.1;

/// Which snapshot to read.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The ratings snapshot.
    #[arg(long)]
    pub data: PathBuf,
    /// Snapshot format.
    #[arg(long, default_value = "auto")]
    pub format: Format,
    /// Valid ratings as MIN:MAX (default: the observed range); ratings outside are an error.
    #[arg(long)]
    pub scale: Option<RatingScale>,
    /// The user, item, rating and optional timestamp columns of a Parquet snapshot.
    #[arg(long, default_value = "user_id,item_id,rating,timestamp")]
    pub columns: Columns,
}

/// `--k`: a number of types or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KArg {
    /// This many types.
    Fixed(usize),
    /// Chosen over `--k-range`.
    Auto,
}

impl std::str::FromStr for KArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            _ => s
                .parse()
                .map(Self::Fixed)
                .map_err(|_| format!("expected a number or `auto`, got {s:?}")),
        }
    }
}

/// `--k-range MIN:MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KRange(pub usize, pub usize);

impl std::str::FromStr for KRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = s
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        match parsed {
            Some((lo, hi)) if 1 <= lo && lo <= hi => Ok(Self(lo, hi)),
            _ => Err(format!("expected MIN:MAX with 1 ≤ MIN ≤ MAX, got {s:?}")),
        }
    }
}

/// `--ridge ITEM:USER`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RidgeArg(pub Ridge);

impl std::str::FromStr for RidgeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
        };
        match s.split_once(':').map(|(a, b)| (parse(a), parse(b))) {
            Some((Some(item), Some(user))) => Ok(Self(Ridge { item, user })),
            _ => Err(format!("expected ITEM:USER, two numbers ≥ 0, got {s:?}")),
        }
    }
}

/// `--select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectBy {
    /// Lowest held-out RMSE.
    Heldout,
    /// Highest BIC.
    Bic,
}

/// An on/off flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Training flags shared by `fit`, `complete`, `recommend` and `eval`.
#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    /// Snapshot.
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of user types K, or `auto` (the default, as in the service): chosen over
    /// `--k-range` on a held-out 10 % of the ratings, by `--select`.
    #[arg(long)]
    pub k: Option<KArg>,
    /// The range an automatic K is chosen from, as MIN:MAX.
    #[arg(long, default_value = "1:32")]
    pub k_range: KRange,
    /// How an automatic K is chosen: held-out RMSE (`heldout`) or BIC (`bic`).
    #[arg(long, default_value = "heldout")]
    pub select: SelectBy,
    /// The model kind: a mixture of user types (`mixture`), a mixture of low-rank types
    /// (`mfa`), or Hofmann's Gaussian pLSA (`gpl`).
    #[arg(long, default_value = "mixture")]
    pub model: ModelKind,
    /// `em` or `kmeans` (mixture only).
    #[arg(long, default_value = "em")]
    pub algorithm: Algorithm,
    /// `seed`: the seed-compatible configuration (rows as stored, numpy's choice of rows).
    #[arg(long, value_parser = ["seed"])]
    pub preset: Option<String>,
    /// Data rows (0-based) to take as the initial means, as the seed does: `3,17,...`.
    #[arg(long, value_delimiter = ',')]
    pub init_rows: Option<Vec<usize>>,
    /// Seed of every random choice (and of the split the open settings are chosen on).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Restarts (k-means++ initialisation only); the best log-likelihood wins.
    #[arg(long)]
    pub n_init: Option<usize>,
    /// Floor of every variance.
    #[arg(long)]
    pub min_variance: Option<f64>,
    /// Stopping tolerance (EM: relative log-likelihood change; k-means: cost change); 0 runs
    /// exactly --max-iter iterations.
    #[arg(long)]
    pub tol: Option<f64>,
    /// Iteration cap.
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// Pull λ of each type mean toward the baseline (pLSA: α, toward the item's moments);
    /// default: chosen on the held-out share (mixtures), 4 (pLSA).
    #[arg(long)]
    pub prior_strength: Option<f64>,
    /// The baseline's ridge strengths as ITEM:USER; default: chosen on the held-out share.
    #[arg(long)]
    pub ridge: Option<RidgeArg>,
    /// Rank r of each type's variation (`--model mfa`); default: chosen on the held-out share.
    #[arg(long)]
    pub rank: Option<usize>,
    /// Model what a global + user + item baseline leaves (`on`/`off`; default: the preset's).
    #[arg(long)]
    pub baseline: Option<Switch>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Log every iteration on standard error.
    #[arg(long, short)]
    pub verbose: bool,
}

impl FitArgs {
    /// Whether `--preset seed` was given.
    pub fn seed_preset(&self) -> bool {
        self.preset.as_deref() == Some("seed")
    }

    /// What the flags ask [`crate::select::train`] for. The seed preset fixes everything it
    /// reproduces (λ = 0, no baseline) and holds nothing out; elsewhere whatever the flags
    /// leave open is chosen on [`SELECT_SHARE`] of the ratings, split with `--seed`.
    pub fn spec(&self) -> Spec {
        let mut spec = Spec::new(self.model);
        spec.mixture = self.mixture_params();
        spec.plsa = self.plsa_params();
        spec.k = match self.k {
            Some(KArg::Fixed(k)) => Some(k),
            Some(KArg::Auto) | None => None,
        };
        spec.k_range = (self.k_range.0, self.k_range.1);
        spec.criterion = match self.select {
            SelectBy::Heldout => Criterion::Heldout,
            SelectBy::Bic => Criterion::Bic,
        };
        spec.prior_strength = self.prior_strength.or(self.seed_preset().then_some(0.0));
        spec.ridge = self.ridge.map(|r| r.0);
        spec.rank = self.rank;
        spec.split_seed = self.seed;
        spec.holdout = if spec.chooses() { SELECT_SHARE } else { 0.0 };
        spec
    }

    /// Gaussian pLSA's parameters (K and α are the selection's).
    fn plsa_params(&self) -> PlsaParams {
        let mut p = PlsaParams::new(1);
        p.seed = self.seed;
        if let Some(n) = self.max_iter {
            p.max_iter = n;
        }
        if let Some(v) = self.min_variance {
            p.min_variance = v;
        }
        p
    }

    /// The mixture's parameters (K, λ and the ridge are the selection's).
    fn mixture_params(&self) -> FitParams {
        let mut p = if self.seed_preset() {
            FitParams::seed_preset(1)
        } else {
            FitParams::new(1)
        };
        p = p.algorithm(self.algorithm).seed(self.seed);
        if let Some(rows) = &self.init_rows {
            p = p.init(Init::Rows(rows.clone()));
        }
        if let Some(n) = self.n_init {
            p = p.n_init(n);
        }
        if let Some(v) = self.min_variance {
            p = p.min_variance(v);
        }
        if let Some(t) = self.tol {
            p = p.tol(t);
        }
        if let Some(n) = self.max_iter {
            p = p.max_iter(n);
        }
        if let Some(b) = self.baseline {
            p = p.baseline(b == Switch::On);
        }
        p
    }
}

/// Flags of `eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Training flags.
    #[command(flatten)]
    pub fit: FitArgs,
    /// Share of the observed ratings hidden from training.
    #[arg(long, default_value_t = 0.1)]
    pub holdout: f64,
    /// Seed of the split (independent of `--seed`, which seeds training).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// k-fold cross-validation instead of one split: mean ± standard deviation over folds.
    #[arg(long)]
    pub folds: Option<usize>,
    /// Leave out the ALS matrix-factorisation row (the slowest baseline).
    #[arg(long)]
    pub no_als: bool,
    /// Simulate new users instead: hold out `--holdout` of the *users*, interview each with
    /// three strategies (popular, random, informative) for up to N answers and score their
    /// other ratings after 0, 1, 3, 5 and N answers.
    #[arg(long, value_name = "N")]
    pub cold_start: Option<usize>,
}
